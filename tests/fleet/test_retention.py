"""Health history, state changes and rejects are deleted after their retention, nothing sooner."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, insert, select

from fleet.core.context import FleetContext
from fleet.health.retention import Retention, purge_history
from fleet.health.sweep import HealthSweeper
from fleet.ingest.store import reject_row
from fleet.loadgen.harness import wait_for
from fleet.models import Device, DeviceCommand, HealthSnapshot, RejectedMessage, StateChange
from fleet.models.base import utcnow
from fleet.registry.devices import register_device

DEV = "cs-keep-0001"
RETENTION = Retention(health_days=10, rejects_days=3)
AGES_DAYS = [0, 2, 4, 9, 11, 12, 20, 40, 400]  # five past ten days, two more past three


def _history(ctx: FleetContext) -> None:
    now = utcnow()
    with ctx.sessions.begin() as s:
        pk = register_device(s, device_id=DEV).id
        for i, days in enumerate(AGES_DAYS):
            at = now - timedelta(days=days, minutes=1)
            s.execute(
                insert(HealthSnapshot),
                [{"device_pk": pk, "at": at, "sampled_at": at, "data": {"uptime": i}}],
            )
            s.add(
                StateChange(
                    device_pk=pk, at=at, from_state="online", to_state="offline", reason="x"
                )
            )
            s.add(
                DeviceCommand(
                    device_pk=pk, command_id=f"c{i}", op="identify", sent_by="system", sent_at=at
                )
            )
            s.execute(
                insert(RejectedMessage),
                [
                    reject_row(
                        topic=f"cs/v1/d/{DEV}/up",
                        device_id=DEV,
                        reason="malformed_json",
                        detail="x",
                        payload=b"{",
                        received_at=at,
                    )
                ],
            )


def _ages(ctx: FleetContext, column: object) -> list[int]:
    now = utcnow()
    with ctx.sessions() as s:
        return sorted((now - at).days for at in s.scalars(select(column)))  # type: ignore[call-overload]


def test_purge_deletes_only_what_is_past_its_retention(fleet_ctx: FleetContext) -> None:
    _history(fleet_ctx)
    # A chunk smaller than the backlog: the purge goes on until nothing expired is left.
    deleted = purge_history(fleet_ctx.sessions, RETENTION, chunk=2)
    assert deleted == {
        "health_snapshots": 5,
        "device_state_changes": 5,
        "device_commands": 5,
        "rejected_messages": 7,
    }
    assert _ages(fleet_ctx, HealthSnapshot.at) == [0, 2, 4, 9]
    assert _ages(fleet_ctx, DeviceCommand.sent_at) == [0, 2, 4, 9]
    assert _ages(fleet_ctx, StateChange.at) == [0, 2, 4, 9]
    assert _ages(fleet_ctx, RejectedMessage.received_at) == [0, 2]
    assert purge_history(fleet_ctx.sessions, RETENTION) == {}
    with fleet_ctx.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Device)) == 1


def test_the_health_sweeper_purges_on_its_own(fleet_ctx: FleetContext) -> None:
    _history(fleet_ctx)
    sweeper = HealthSweeper(fleet_ctx.sessions, interval_s=0.05, retention=RETENTION)
    sweeper.start()
    try:
        purged = wait_for(lambda: len(_ages(fleet_ctx, RejectedMessage.received_at)) == 2, 30, 0.05)
    finally:
        sweeper.stop()
    assert purged
    assert _ages(fleet_ctx, HealthSnapshot.at) == [0, 2, 4, 9]
    assert _ages(fleet_ctx, RejectedMessage.received_at) == [0, 2]
    assert _ages(fleet_ctx, HealthSnapshot.at) == [0, 2, 4, 9]
