import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fleet.risk import rules
from fleet.risk.rules import MeanRule, Monitor, OutOfOrderSample, Quantity, Violation, WindowRule

T0 = datetime(2025, 11, 3, tzinfo=UTC)
RH70, RH90 = rules.adf_rules()


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def every_15_min(values: list[float]) -> list[tuple[datetime, float]]:
    return [(at(15 * i), v) for i, v in enumerate(values)]


# --- worked examples -------------------------------------------------------------------------


def test_rh70_breached_after_two_hours_above() -> None:
    # Above 70 % from 01:00 to 05:00, then 60 %.
    samples = every_15_min([75.0 if 4 <= i < 20 else 60.0 for i in range(80)])
    [v] = rules.evaluate(RH70, samples)
    assert v.rule_id == rules.ADF_RH70
    assert v.since == at(60)
    assert v.breached_at == at(180)  # 2 h above reached at 03:00, exceeded just after
    # Cleared when the 12 h window keeps only 2 h of the exposure: 15:00.
    assert v.until == at(15 * 60)
    assert v.duration == timedelta(hours=14)
    assert v.time_above == timedelta(hours=4)
    assert v.peak == 75.0
    assert not v.ongoing


def test_rh70_exactly_two_hours_is_not_more_than_two() -> None:
    samples = every_15_min([75.0 if 4 <= i < 12 else 60.0 for i in range(60)])
    assert rules.evaluate(RH70, samples) == []


def test_rh70_cumulative_within_12_hours() -> None:
    # 1 h 30 above at 00:00, 45 min above at 10:00: 2 h 15 within 12 h.
    values = [60.0] * 60
    for i in [*range(0, 6), *range(40, 43)]:
        values[i] = 80.0
    values[41] = 88.0
    [v] = rules.evaluate(RH70, every_15_min(values))
    assert v.since == at(0)
    assert v.breached_at == at(10 * 60 + 30)
    assert v.peak == 88.0
    # Same exposure spread over more than 12 h: no breach.
    values = [60.0] * 80
    for i in [*range(0, 6), *range(50, 53)]:
        values[i] = 80.0
    assert rules.evaluate(RH70, every_15_min(values)) == []


def test_rh90_more_than_one_hour() -> None:
    samples = every_15_min([95.0 if 2 <= i < 8 else 60.0 for i in range(20)])
    [v] = rules.evaluate(RH90, samples)
    assert v.breached_at == at(30 + 60)
    assert v.peak == 95.0
    assert v.ongoing  # the 12 h window still holds 1 h 30 above
    assert v.last_seen == at(19 * 15)


def test_gap_in_data_is_not_counted_as_exposure() -> None:
    # A reading above 90 %, then nothing for four hours: only max_gap (1 h) counts.
    samples = [(at(0), 95.0), (at(240), 50.0)]
    assert rules.evaluate(RH90, samples) == []
    # With a longer max_gap the same readings breach.
    lenient = WindowRule(
        "t", "room_rh", 90.0, timedelta(hours=1), timedelta(hours=12), max_gap=timedelta(hours=5)
    )
    assert len(rules.evaluate(lenient, samples)) == 1


def test_bs5250_surface_mean() -> None:
    rule = rules.bs5250_rule(days=2)
    hourly = [(T0 + timedelta(hours=h), 85.0 if h < 72 else 60.0) for h in range(24 * 6)]
    [v] = rules.evaluate(rule, hourly)
    assert v.rule_id == rules.BS5250_SURFACE_RH80
    # Needs 75 % of two days of data before the mean counts.
    assert v.breached_at == T0 + timedelta(hours=36)
    assert v.since == T0
    assert v.peak == 85.0
    # Mean over the last 48 h falls to 80 % when 48·(80-60)/(85-60) = 38.4 h are still wet.
    assert v.until == T0 + timedelta(hours=72 + 10)


def test_bs5250_not_breached_below_80() -> None:
    rule = rules.bs5250_rule(days=1)
    hourly = [(T0 + timedelta(hours=h), 79.9) for h in range(72)]
    assert rules.evaluate(rule, hourly) == []


def test_co2_bands() -> None:
    assert rules.co2_band(600) is rules.Co2Band.GOOD
    assert rules.co2_band(800) is rules.Co2Band.GOOD
    assert rules.co2_band(1200) is rules.Co2Band.MODERATE
    assert rules.co2_band(1600) is rules.Co2Band.POOR


def test_co2_rules() -> None:
    above_800, above_1500 = rules.co2_rules()
    night = [(T0 + timedelta(minutes=10 * i), 1700.0 if i < 48 else 600.0) for i in range(200)]
    assert [v.rule_id for v in rules.evaluate(above_1500, night)] == [rules.CO2_ABOVE_1500]
    assert rules.evaluate(above_800, night) == []  # exactly 8 h is not more than 8 h


def test_violation_serialises() -> None:
    [v] = rules.evaluate(RH70, every_15_min([75.0] * 12 + [60.0] * 60))
    data = json.loads(json.dumps(v.to_dict()))
    assert data["rule_id"] == "adf2006.rh70"
    assert data["duration_s"] == v.duration.total_seconds()


def test_rejects_out_of_order_and_naive_timestamps() -> None:
    state = RH70.new_state()
    state.update(at(10), 50.0)
    with pytest.raises(OutOfOrderSample):
        state.update(at(10), 50.0)
    with pytest.raises(ValueError, match="timezone"):
        state.update(datetime(2025, 1, 1), 50.0)
    with pytest.raises(ValueError):
        state.update(at(20), float("nan"))


def test_rule_validation() -> None:
    with pytest.raises(ValueError):
        WindowRule("x", "room_rh", 70.0, timedelta(hours=13), timedelta(hours=12))
    with pytest.raises(ValueError):
        MeanRule("x", "surface_rh", 80.0, timedelta(days=1), min_coverage=0.0)


def test_monitor_routes_quantities_and_restores() -> None:
    monitor = Monitor()
    for i in range(40):
        monitor.update(Quantity.ROOM_RH, at(15 * i), 95.0)
        monitor.update(Quantity.CO2, at(15 * i), 500.0)
    open_ids = sorted(v.rule_id for v in monitor.open_violations())
    assert open_ids == [rules.ADF_RH70, rules.ADF_RH90]
    restored = Monitor.from_dict(json.loads(json.dumps(monitor.to_dict())))
    assert restored.open_violations() == monitor.open_violations()


# --- properties ------------------------------------------------------------------------------

# Small windows so that short random series exercise breaches, clearing and gaps.
SMALL_WINDOW = WindowRule(
    "w", "x", 70.0, timedelta(minutes=20), timedelta(minutes=60), max_gap=timedelta(minutes=15)
)
SMALL_MEAN = MeanRule(
    "m", "x", 80.0, timedelta(minutes=90), min_coverage=0.5, max_gap=timedelta(minutes=15)
)

steps = st.lists(
    st.tuples(st.integers(min_value=1, max_value=30), st.sampled_from([50.0, 75.0, 85.0, 95.0])),
    min_size=1,
    max_size=120,
)


def series_from(pairs: list[tuple[int, float]]) -> list[tuple[datetime, float]]:
    out, minute = [], 0
    for gap, value in pairs:
        minute += gap
        out.append((at(minute), value))
    return out


def oracle_window(rule: WindowRule, samples: list[tuple[datetime, float]]) -> list[tuple]:
    """Brute force on a one-minute grid: (since, breached_at, until) of each episode."""
    start = samples[0][0]
    mins = [int((ts - start).total_seconds() // 60) for ts, _ in samples]
    end = mins[-1]
    above = [0] * end
    gap = int(rule.max_gap.total_seconds() // 60)
    for (m, (_, v)), m_next in zip(zip(mins, samples, strict=True), mins[1:], strict=False):
        if v > rule.threshold:
            for i in range(m, min(m_next, m + gap)):
                above[i] = 1
    w = int(rule.window.total_seconds() // 60)
    limit = int(rule.limit.total_seconds() // 60)
    episodes: list[tuple] = []
    current = None
    for t in range(end + 1):
        f = sum(above[max(0, t - w) : t])
        if current is None and f > limit:
            breached = t - 1  # f reached the limit one minute earlier
            since = next(i for i in range(max(0, breached - w), breached) if above[i])
            current = [since, breached]
        elif current is not None and f <= limit:
            episodes.append((current[0], current[1], t))
            current = None
    if current is not None:
        episodes.append((current[0], current[1], None))

    def dt(m: int | None) -> datetime | None:
        return None if m is None else start + timedelta(minutes=m)

    return [(dt(a), dt(b), dt(c)) for a, b, c in episodes]


@settings(max_examples=150)
@given(pairs=steps)
def test_window_rule_matches_brute_force(pairs: list[tuple[int, float]]) -> None:
    samples = series_from(pairs)
    got = [(v.since, v.breached_at, v.until) for v in rules.evaluate(SMALL_WINDOW, samples)]
    assert got == oracle_window(SMALL_WINDOW, samples)


def oracle_mean(rule: MeanRule, samples: list[tuple[datetime, float]]) -> list[tuple] | None:
    """Brute force at the documented evaluation points; None when a mean ties the threshold."""
    start = samples[0][0]
    mins = [int((ts - start).total_seconds() // 60) for ts, _ in samples]
    value: list[float | None] = [None] * mins[-1]
    gap = int(rule.max_gap.total_seconds() // 60)
    points = []
    for i in range(1, len(samples)):
        p, t = mins[i - 1], mins[i]
        q = min(t, p + gap)
        for m in range(p, q):
            value[m] = samples[i - 1][1]
        points.append(q)
        if q < t:
            points.append(t)
    w = int(rule.window.total_seconds() // 60)
    episodes: list[tuple] = []
    current = None
    for now in points:
        known = [(m, v) for m in range(max(0, now - w), now) if (v := value[m]) is not None]
        mean = sum(v for _, v in known) / len(known) if known else 0.0
        if known and abs(mean - rule.threshold) < 1e-6:
            return None
        breached = len(known) >= rule.min_coverage * w and mean > rule.threshold
        if breached and current is None:
            current = (known[0][0], now)
        elif not breached and current is not None:
            episodes.append((*current, now))
            current = None
    if current is not None:
        episodes.append((*current, None))

    def dt(m: int | None) -> datetime | None:
        return None if m is None else start + timedelta(minutes=m)

    return [(dt(a), dt(b), dt(c)) for a, b, c in episodes]


@settings(max_examples=150)
@given(pairs=steps)
def test_mean_rule_matches_brute_force(pairs: list[tuple[int, float]]) -> None:
    samples = series_from(pairs)
    expected = oracle_mean(SMALL_MEAN, samples)
    if expected is None:
        return
    got = [(v.since, v.breached_at, v.until) for v in rules.evaluate(SMALL_MEAN, samples)]
    assert got == expected


def incremental(
    rule: rules.Rule, samples: list[tuple[datetime, float]], splits: set[int]
) -> list[Violation]:
    """Feed samples one by one, persisting and restoring the state at each split."""
    state: rules.RuleState = rule.new_state()
    found: list[Violation] = []
    for i, (ts, value) in enumerate(samples):
        if i in splits:
            state = rule.state_from_dict(json.loads(json.dumps(state.to_dict())))
        found.extend(state.update(ts, value))
    current = state.open_violation()
    return [*found, *([current] if current else [])]


@settings(max_examples=150)
@given(
    pairs=steps,
    splits=st.sets(st.integers(min_value=0, max_value=120)),
    rule=st.sampled_from([SMALL_WINDOW, SMALL_MEAN, RH70, RH90]),
)
def test_incremental_equals_batch(
    pairs: list[tuple[int, float]], splits: set[int], rule: rules.Rule
) -> None:
    samples = series_from(pairs)
    assert incremental(rule, samples, splits) == rules.evaluate(rule, samples)


@settings(max_examples=50)
@given(pairs=steps, split=st.integers(min_value=0, max_value=120))
def test_monitor_incremental_equals_evaluate_all(
    pairs: list[tuple[int, float]], split: int
) -> None:
    samples = series_from([(g * 20, v) for g, v in pairs])  # hours-long series
    rule_set = (*rules.adf_rules(), rules.bs5250_rule(days=0.5))
    monitor = Monitor(rule_set)
    closed: list[Violation] = []
    for i, (ts, v) in enumerate(samples):
        if i == split:
            monitor = Monitor.from_dict(json.loads(json.dumps(monitor.to_dict())), rule_set)
        closed += monitor.update(Quantity.ROOM_RH, ts, v)
        closed += monitor.update(Quantity.SURFACE_RH, ts, v)
    got = sorted([*closed, *monitor.open_violations()], key=lambda v: (v.rule_id, v.since))
    expected = rules.evaluate_all(
        rule_set, {Quantity.ROOM_RH: samples, Quantity.SURFACE_RH: samples}
    )
    assert got == sorted(expected, key=lambda v: (v.rule_id, v.since))
