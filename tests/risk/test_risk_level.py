from datetime import UTC, datetime, timedelta

from fleet.risk import rules
from fleet.risk.level import Indicators, RiskLevel, assess, level_for_score
from fleet.risk.rules import Violation

T0 = datetime(2025, 11, 3, tzinfo=UTC)


def violation(rule_id: str, day: int = 0) -> Violation:
    since = T0 + timedelta(days=day)
    return Violation(rule_id, "room_rh", 70.0, since, since, None, since, 91.0)


def test_nothing_is_low() -> None:
    result = assess(Indicators())
    assert (result.level, result.score, result.evidence) == (RiskLevel.LOW, 0, ())


def test_visible_mould_alone_is_severe() -> None:
    result = assess(Indicators(mould_index=3.2))
    assert result.level is RiskLevel.SEVERE
    assert [e.code for e in result.evidence] == ["vtt.visible"]


def test_points_add_up_and_are_explained() -> None:
    result = assess(
        Indicators(
            violations=[violation(rules.BS5250_SURFACE_RH80), violation(rules.ADF_RH90)],
            mould_index=0.2,
        )
    )
    assert result.score == 5
    assert result.level is RiskLevel.HIGH
    assert sum(e.points for e in result.evidence) == result.score


def test_repeated_episodes_count_once() -> None:
    result = assess(Indicators(violations=[violation(rules.ADF_RH70, d) for d in range(5)]))
    assert result.score == 1
    assert result.level is RiskLevel.LOW
    assert len(result.evidence) == 5


def test_lim_and_co2() -> None:
    result = assess(
        Indicators(violations=[violation(rules.CO2_ABOVE_1500)], lim_fraction=0.6, mould_index=1.5)
    )
    assert result.score == 1 + 1 + 3
    assert result.level is RiskLevel.HIGH
    assert assess(Indicators(lim_fraction=0.4)).score == 0


def test_cut_offs_and_order() -> None:
    assert [level_for_score(s) for s in range(8)] == [
        RiskLevel.LOW,
        RiskLevel.LOW,
        RiskLevel.ELEVATED,
        RiskLevel.ELEVATED,
        RiskLevel.HIGH,
        RiskLevel.HIGH,
        RiskLevel.SEVERE,
        RiskLevel.SEVERE,
    ]
    assert RiskLevel.SEVERE.rank > RiskLevel.HIGH.rank > RiskLevel.ELEVATED.rank


def test_custom_points() -> None:
    result = assess(Indicators(violations=[violation(rules.ADF_RH70)]), points={"adf2006.rh70": 4})
    assert result.level is RiskLevel.HIGH
