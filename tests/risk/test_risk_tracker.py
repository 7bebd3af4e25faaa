import json
from datetime import UTC, datetime, timedelta

import pytest

from fleet.risk import rules, vtt
from fleet.risk.hourly import DerivedHour
from fleet.risk.level import RiskLevel
from fleet.risk.rolling import OutOfOrderSample
from fleet.risk.tracker import PlacementTracker

T0 = datetime(2025, 11, 3, tzinfo=UTC)


def hour(i: int, rh: float, srh: float, co2: float | None = None) -> DerivedHour:
    return DerivedHour(T0 + timedelta(hours=i), 18.0, rh, 12.0, 10.0, 14.0, srh, True, co2, 4)


def series(n: int) -> list[DerivedHour]:
    return [
        hour(i, 75.0 + 20.0 * (i % 24 in (7, 8)), 88.0, 1600.0 if i % 24 > 20 else 600.0)
        for i in range(n)
    ]


def test_incremental_with_persisted_state_equals_one_pass() -> None:
    hours = series(24 * 12)
    one = PlacementTracker()
    for h in hours:
        one.step(h)
    split = PlacementTracker()
    for i, h in enumerate(hours):
        if i % 17 == 0:  # stored and reloaded, as between two risk updates
            split = PlacementTracker.from_dict(json.loads(json.dumps(split.to_dict())))
        split.step(h)
    assert split.mould == one.mould
    assert split.assess() == one.assess()
    ids = {v.rule_id for v in one.violations()}
    assert {rules.ADF_RH70, rules.ADF_RH90, rules.BS5250_SURFACE_RH80, rules.CO2_ABOVE_1500} <= ids
    assert one.lim_fraction() == 1.0
    assert one.assess().level is RiskLevel.SEVERE


def test_mould_index_follows_vtt_on_surface_conditions() -> None:
    tracker = PlacementTracker(sensitivity=vtt.Sensitivity.MEDIUM_RESISTANT)
    expected = vtt.run_series([(14.0, 88.0)] * 48, sensitivity=vtt.Sensitivity.MEDIUM_RESISTANT)
    for i in range(48):
        tracker.step(hour(i, 60.0, 88.0))
    assert tracker.mould == expected.final


def test_out_of_order_hours_are_refused_and_bad_state_rejected() -> None:
    tracker = PlacementTracker()
    tracker.step(hour(5, 60.0, 70.0))
    with pytest.raises(OutOfOrderSample, match="recompute"):
        tracker.step(hour(5, 60.0, 70.0))
    with pytest.raises(ValueError, match="version"):
        PlacementTracker.from_dict({**tracker.to_dict(), "v": 99})


def test_old_episodes_are_forgotten_after_two_weeks() -> None:
    tracker = PlacementTracker()
    for i in range(24):
        tracker.step(hour(i, 95.0, 70.0))
    for i in range(24, 24 * 17):
        tracker.step(hour(i, 50.0, 60.0))
    assert tracker.recent == []
    assert tracker.assess().level is RiskLevel.LOW
