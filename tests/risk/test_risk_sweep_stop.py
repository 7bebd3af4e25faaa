"""The risk sweep ends between batches when told to stop (shutdown, or the lease lost to
another replica): committed batches stay, no other placement is touched, and the next pass
takes up the rest from each placement's stored state, ending exactly where one pass never
interrupted ends, recomputes included."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from fleet.core.context import FleetContext
from fleet.loadgen.harness import wait_for
from fleet.models import Borough, Device, PlacementRisk, Property
from fleet.registry import places
from fleet.registry.devices import register_device
from fleet.risk.service.queries import mark_recompute
from fleet.risk.service.settings import RiskSettings
from fleet.risk.service.sweep import RiskWorker, sweep
from tests.cases.rooms import DAMP, FIXED, samples, store
from tests.cases.test_batched_update import _reset, _snapshot
from tests.conftest import DEADLINE_SCALE
from tests.fleet.conftest import World, fleet_ctx, world  # noqa: F401  (fixtures)
from tests.fleet.stopping import stop_after

T0 = datetime(2026, 2, 2, tzinfo=UTC)
# One property per transaction; cases from "elevated" so a few days of damp open them.
SETTINGS = RiskSettings(batch=1, sweep_s=0.02, case_level="elevated")
DEVICES = ("cs-hackney-0001", "cs-camden-0001", "cs-hackney-0002")  # one property each
ROOMS = (DAMP, FIXED, DAMP)
DAYS = 5
Snapshot = dict[str, list[tuple[Any, ...]]]
Sweep = Callable[[datetime], None]


def _third_property(ctx: FleetContext) -> None:
    with ctx.sessions.begin() as s:
        hackney = s.scalars(select(Borough).where(Borough.code == "hackney")).one()
        prop = places.create_property(s, borough=hackney, reference="HACKNEY-0002")
        placement = places.create_placement(s, prop=prop, room="bedroom")
        register_device(
            s, device_id="cs-hackney-0002", borough_id=hackney.id
        ).placement_id = placement.id


def _states(ctx: FleetContext) -> dict[str, tuple[datetime | None, datetime | None]]:
    """Per device: its placement's (last processed hour, pending recompute)."""
    with ctx.sessions() as s:
        return {
            device_id: (last, late)
            for device_id, last, late in s.execute(
                select(Device.device_id, PlacementRisk.last_hour, PlacementRisk.recompute_from)
                .join(PlacementRisk, PlacementRisk.placement_id == Device.placement_id)
                .order_by(PlacementRisk.property_id)
            )
        }


def _scenario(ctx: FleetContext, run: Sweep) -> list[Snapshot]:
    """Five days of history (damp enough for cases), then six live hours with every placement
    flagged for recompute over a day (as after an engine upgrade)."""
    out = []
    for device_id, room in zip(DEVICES, ROOMS, strict=True):
        store(ctx, device_id, list(samples(room, T0, 24 * DAYS)))
    run(T0 + timedelta(days=DAYS))
    out.append(_snapshot(ctx))
    later = T0 + timedelta(days=DAYS)
    for device_id, room in zip(DEVICES, ROOMS, strict=True):
        store(ctx, device_id, list(samples(room, later, 6.25)))
    with ctx.sessions.begin() as s:
        for prop in s.scalars(select(Property)):
            mark_recompute(s, prop, days=1)
    run(later + timedelta(hours=6))
    out.append(_snapshot(ctx))
    return out


def test_a_stopped_sweep_keeps_its_first_batch_and_the_next_finishes(
    fleet_ctx: FleetContext,  # noqa: F811
    world: World,  # noqa: F811
) -> None:
    _third_property(fleet_ctx)

    def whole(now: datetime) -> None:
        result = sweep(fleet_ctx.sessions, SETTINGS, now=now)
        assert result.properties == 3 and result.properties_left == 0 and result.failed == 0

    expected = _scenario(fleet_ctx, whole)
    _reset(fleet_ctx)
    seen: list[dict[str, tuple[datetime | None, datetime | None]]] = []

    def cut_short(now: datetime) -> None:
        before = _states(fleet_ctx)
        with stop_after(fleet_ctx.engine, commits=1) as stop:
            result = sweep(fleet_ctx.sessions, SETTINGS, now=now, should_continue=stop)
        assert stop.tripped
        assert result.properties == 1 and result.properties_left == 2
        seen.append(_states(fleet_ctx))
        # Only the first property's placement moved; the others are as they were.
        first = DEVICES[0]
        assert seen[-1][first] != before.get(first)
        assert {d: v for d, v in seen[-1].items() if d != first} == {
            d: v for d, v in before.items() if d != first
        }
        rest = sweep(fleet_ctx.sessions, SETTINGS, now=now)
        assert rest.properties == 2 and rest.properties_left == 0 and rest.failed == 0

    got = _scenario(fleet_ctx, cut_short)
    # The first pass stopped before the second and third placements: none had a state yet;
    # then before their recomputes, still pending.
    assert list(seen[0]) == [DEVICES[0]]
    assert seen[1][DEVICES[0]][1] is None
    assert all(seen[1][d][1] is not None for d in DEVICES[1:])
    assert expected[0]["cases"] and expected[1]["changes"]  # levels and cases were written
    for want, have in zip(expected, got, strict=True):
        for table in want:
            assert have[table] == want[table], table


def test_the_worker_stops_its_pass_when_the_lease_is_lost(
    fleet_ctx: FleetContext,  # noqa: F811
    world: World,  # noqa: F811
) -> None:
    _third_property(fleet_ctx)
    for device_id in DEVICES:
        store(fleet_ctx, device_id, list(samples(DAMP, T0, 24)))
    # The lease goes to another replica while the first batch writes its hours.
    with stop_after(fleet_ctx.engine, marker="INSERT INTO risk_hours") as lease:
        worker = RiskWorker(fleet_ctx.sessions, SETTINGS, gate=lease)
        worker.start()
        try:
            # The worker has finished its pass and gone back to waiting for the lease.
            assert wait_for(lambda: lease.asked_after >= 3, 30 * DEADLINE_SCALE, 0.02)
        finally:
            worker.stop()
    assert list(_states(fleet_ctx)) == [DEVICES[0]]
