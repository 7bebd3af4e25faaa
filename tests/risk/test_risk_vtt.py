import itertools
import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fleet.risk import vtt
from fleet.risk.vtt import MouldState, Sensitivity


def _days_per_unit(t: float, rh: float) -> float:
    """7·exp(-0.68 ln T - 13.9 ln RH + 66.02): days per unit of index when k1 = k2 = 1."""
    return 7.0 * math.exp(-0.68 * math.log(t) - 13.9 * math.log(rh) + 66.02)


def test_critical_rh_uses_minus_3_13_t() -> None:
    # -0.00267·125 + 0.160·25 - 3.13·5 + 100 = 88.01625 (a +3.13T slip gives ~119)
    assert vtt.critical_rh(5.0) == pytest.approx(88.01625)
    assert vtt.critical_rh(20.0) == pytest.approx(80.04)
    assert vtt.critical_rh(30.0) == 80.0  # polynomial below RHmin
    assert vtt.critical_rh(30.0, Sensitivity.RESISTANT) == 85.0


def test_max_index_reference() -> None:
    x = (80.04 - 95.0) / (80.04 - 100.0)
    assert vtt.max_index(20.0, 95.0, Sensitivity.VERY_SENSITIVE) == pytest.approx(
        1 + 7 * x - 2 * x * x
    )
    assert vtt.max_index(20.0, 100.0, Sensitivity.VERY_SENSITIVE) == pytest.approx(6.0)
    assert vtt.max_index(20.0, 100.0, Sensitivity.RESISTANT) == pytest.approx(2.0)


def test_first_hour_of_growth_matches_formula() -> None:
    state = vtt.step(MouldState(), 20.0, 95.0, sensitivity=Sensitivity.VERY_SENSITIVE)
    m_max = vtt.max_index(20.0, 95.0, Sensitivity.VERY_SENSITIVE)
    k2 = 1 - math.exp(2.3 * (0 - m_max))
    assert state.m == pytest.approx(1.0 * k2 / _days_per_unit(20.0, 95.0) / 24.0, rel=1e-12)
    assert state.dry_hours == 0


def test_growth_trajectory_20c_95pc_very_sensitive() -> None:
    result = vtt.run_series([(20.0, 95.0)] * (24 * 120), sensitivity=Sensitivity.VERY_SENSITIVE)
    hours_to_1 = next(i + 1 for i, m in enumerate(result.indices) if m >= 1.0)
    # k2 is just below 1 far from M_max, so M = 1 after ~D days.
    expected = _days_per_unit(20.0, 95.0) * 24.0
    assert expected <= hours_to_1 <= expected * 1.01 + 1
    hours_to_3 = next(i + 1 for i, m in enumerate(result.indices) if m >= vtt.VISIBLE_MOULD)
    assert 20 * 24 < hours_to_3 < 40 * 24
    # Approaches, never exceeds, M_max.
    m_max = vtt.max_index(20.0, 95.0, Sensitivity.VERY_SENSITIVE)
    assert result.final.m == pytest.approx(m_max, abs=0.01)
    assert result.peak <= m_max + 1e-9


def test_sensitivity_order_at_20c_95pc() -> None:
    finals = [
        vtt.run_series([(20.0, 95.0)] * (24 * 90), sensitivity=s).final.m for s in Sensitivity
    ]
    assert finals == sorted(finals, reverse=True)
    assert finals[-1] < 1.0  # resistant: barely started after 90 days


def test_no_growth_at_20c_70pc() -> None:
    for s in Sensitivity:
        result = vtt.run_series([(20.0, 70.0)] * (24 * 60), sensitivity=s)
        assert result.final.m == 0.0
        assert result.final.dry_hours == 24 * 60


def test_no_growth_below_freezing_or_above_50c() -> None:
    assert vtt.step(MouldState(), 0.0, 100.0).m == 0.0
    assert vtt.step(MouldState(), 50.0, 100.0).m == 0.0


def test_decline_after_drying() -> None:
    start = MouldState(m=2.0)
    dry = vtt.run_series([(20.0, 50.0)] * 72, initial=start)
    first6 = 2.0 - 6 * 0.032 / 24
    assert dry.indices[5] == pytest.approx(first6)
    assert dry.indices[23] == pytest.approx(first6)  # no change from 6 h to 24 h
    assert dry.indices[71] == pytest.approx(first6 - 48 * 0.016 / 24)
    assert dry.final.dry_hours == 72


def test_decline_factor_scales_decline() -> None:
    half = vtt.step(MouldState(m=2.0), 20.0, 50.0, decline_factor=0.5)
    assert half.m == pytest.approx(2.0 - 0.5 * 0.032 / 24)


def test_wet_hour_resets_dry_spell() -> None:
    state = vtt.run_series([(20.0, 50.0)] * 30, initial=MouldState(m=1.0)).final
    assert state.dry_hours == 30
    assert vtt.step(state, 20.0, 97.0).dry_hours == 0


def test_state_round_trips_through_json() -> None:
    state = vtt.run_series([(18.0, 92.0)] * 500).final
    restored = MouldState.from_dict(json.loads(json.dumps(state.to_dict())))
    assert restored == state


def test_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        vtt.step(MouldState(), 20.0, 101.0)
    with pytest.raises(ValueError):
        vtt.step(MouldState(), math.nan, 90.0)
    with pytest.raises(ValueError):
        MouldState.from_dict({"m": 7.0, "dry_hours": 0})


hour = st.tuples(
    st.floats(min_value=-20.0, max_value=60.0), st.floats(min_value=0.0, max_value=100.0)
)
sens = st.sampled_from(list(Sensitivity))


@settings(max_examples=60)
@given(hours=st.lists(hour, max_size=400), s=sens, m0=st.floats(min_value=0.0, max_value=6.0))
def test_index_stays_within_0_and_6(
    hours: list[tuple[float, float]], s: Sensitivity, m0: float
) -> None:
    result = vtt.run_series(hours, sensitivity=s, initial=MouldState(m=m0))
    assert all(0.0 <= m <= 6.0 for m in result.indices)


@settings(max_examples=60)
@given(
    t=st.floats(min_value=0.5, max_value=49.5),
    rh_frac=st.floats(min_value=0.0, max_value=1.0),
    s=sens,
    m0=st.floats(min_value=0.0, max_value=6.0),
)
def test_monotone_under_constant_favourable_conditions(
    t: float, rh_frac: float, s: Sensitivity, m0: float
) -> None:
    rh_crit = vtt.critical_rh(t, s)
    rh = rh_crit + rh_frac * (100.0 - rh_crit)
    result = vtt.run_series([(t, rh)] * 300, sensitivity=s, initial=MouldState(m=m0))
    seq = [m0, *result.indices]
    assert all(b >= a for a, b in itertools.pairwise(seq))


@settings(max_examples=40)
@given(hours=st.lists(hour, max_size=200), s=sens, split=st.integers(min_value=0, max_value=200))
def test_incremental_equals_series(
    hours: list[tuple[float, float]], s: Sensitivity, split: int
) -> None:
    batch = vtt.run_series(hours, sensitivity=s)
    first = vtt.run_series(hours[:split], sensitivity=s).final
    stored = MouldState.from_dict(json.loads(json.dumps(first.to_dict())))
    rest = vtt.run_series(hours[split:], sensitivity=s, initial=stored)
    assert rest.final == batch.final
