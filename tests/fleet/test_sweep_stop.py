"""The health sweep and the history purge end between batches when told to stop (shutdown,
or the lease lost to another replica): committed batches stay, nothing past them is written,
and the next pass finishes the work as if the first had never been cut short."""

from __future__ import annotations

from sqlalchemy import func, select

from fleet.core.context import FleetContext
from fleet.health.retention import purge_history
from fleet.health.sweep import HealthSweeper, sweep
from fleet.loadgen.harness import wait_for
from fleet.models import Alert, Device, HealthSnapshot, RejectedMessage, StateChange
from tests.conftest import DEADLINE_SCALE
from tests.fleet.stopping import stop_after
from tests.fleet.test_retention import RETENTION, _ages, _history
from tests.fleet.test_sweep_statements import EXPECTED, check_details, outcome, prepare

DEVICES = 96
BATCH = 32


def _states(ctx: FleetContext) -> list[str]:
    """Each device's state, in the order the sweep takes them."""
    with ctx.sessions() as s:
        return list(s.scalars(select(Device.state).order_by(Device.id)))


def _count(ctx: FleetContext, model: object) -> int:
    with ctx.sessions() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)  # type: ignore[arg-type]


def _check_first_batch_only(ctx: FleetContext) -> None:
    states = _states(ctx)
    assert "unknown" not in states[:BATCH]
    assert set(states[BATCH:]) == {"unknown"}
    assert _count(ctx, StateChange) == BATCH
    with ctx.sessions() as s:
        # Kind 5's stale offline alert is resolved only where the sweep got to.
        open_offline = s.scalars(
            select(Alert.device_pk).where(Alert.rule == "offline", Alert.state == "open")
        ).all()
        first = set(s.scalars(select(Device.id).order_by(Device.id).limit(BATCH)))
        beyond = set(s.scalars(select(Device.id).order_by(Device.id).offset(BATCH)))
        kind5_beyond = {
            pk
            for pk, device_id in s.execute(select(Device.id, Device.device_id))
            if pk in beyond and int(device_id.rsplit("-", 1)[1]) % 6 == 5
        }
    # Offline alerts opened in the first batch (kind 1) are there; none beyond it but kind 5's.
    assert {pk for pk in open_offline if pk in beyond} == kind5_beyond
    assert {pk for pk in open_offline if pk in first}


def test_a_stopped_sweep_keeps_its_first_batch_and_the_next_finishes(
    fleet_ctx: FleetContext,
) -> None:
    prepare(fleet_ctx, DEVICES)
    with stop_after(fleet_ctx.engine, commits=1) as stop:
        result = sweep(fleet_ctx.sessions, batch=BATCH, should_continue=stop)
    assert stop.tripped
    assert result.devices == BATCH and result.state_changes == BATCH
    assert result.devices_left == DEVICES - BATCH and result.devices_skipped == 0
    _check_first_batch_only(fleet_ctx)

    again = sweep(fleet_ctx.sessions, batch=BATCH)
    assert again.devices == DEVICES and again.devices_left == 0
    assert again.state_changes == DEVICES - BATCH
    # As after one pass never interrupted (tests/fleet/test_sweep_statements.py).
    assert outcome(fleet_ctx) == EXPECTED
    check_details(fleet_ctx, DEVICES)


def test_the_sweeper_stops_its_pass_when_the_lease_is_lost(fleet_ctx: FleetContext) -> None:
    prepare(fleet_ctx, DEVICES)
    # The lease goes to another replica while the first batch writes its state changes.
    with stop_after(fleet_ctx.engine, marker="INSERT INTO device_state_changes") as lease:
        sweeper = HealthSweeper(fleet_ctx.sessions, interval_s=0.02, gate=lease, batch=BATCH)
        sweeper.start()
        try:
            # The worker has finished its pass and gone back to waiting for the lease.
            assert wait_for(lambda: lease.asked_after >= 3, 30 * DEADLINE_SCALE, 0.02)
        finally:
            sweeper.stop()
    _check_first_batch_only(fleet_ctx)


def test_a_stopped_purge_keeps_its_first_chunk_and_the_next_finishes(
    fleet_ctx: FleetContext,
) -> None:
    _history(fleet_ctx)
    with stop_after(fleet_ctx.engine, commits=1) as stop:
        deleted = purge_history(fleet_ctx.sessions, RETENTION, chunk=2, should_continue=stop)
    assert stop.tripped
    assert deleted == {"health_snapshots": 2}
    # The two oldest expired rows by id (11 and 12 days); every other table untouched.
    assert _ages(fleet_ctx, HealthSnapshot.at) == [0, 2, 4, 9, 20, 40, 400]
    assert _ages(fleet_ctx, StateChange.at) == [0, 2, 4, 9, 11, 12, 20, 40, 400]
    assert len(_ages(fleet_ctx, RejectedMessage.received_at)) == 9

    rest = purge_history(fleet_ctx.sessions, RETENTION, chunk=2)
    assert rest == {
        "health_snapshots": 3,
        "device_state_changes": 5,
        "device_commands": 5,
        "rejected_messages": 7,
    }
    # As after one purge never interrupted (tests/fleet/test_retention.py).
    assert _ages(fleet_ctx, HealthSnapshot.at) == [0, 2, 4, 9]
    assert _ages(fleet_ctx, StateChange.at) == [0, 2, 4, 9]
    assert _ages(fleet_ctx, RejectedMessage.received_at) == [0, 2]
    assert purge_history(fleet_ctx.sessions, RETENTION) == {}
