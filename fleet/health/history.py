"""What the health sweep reads for a batch of devices: their rows and the history the alert
rules need, each in one set-based query for the whole batch, never one per device."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fleet.models import Device, HealthSnapshot, Reading
from fleet.models.health import SAMPLED_ORDER

BATTERY_WINDOW = timedelta(days=7)
REBOOT_WINDOW = timedelta(hours=1)
EVICTION_WINDOW = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class DeviceFacts:
    """The device columns liveness and the alert rules read (plain values, no ORM object)."""

    id: int
    borough_id: int | None
    power_mode: str
    report_interval_s: int
    status: str
    state: str
    last_seen_at: datetime | None
    fw_version: str | None
    health: dict[str, Any] | None
    health_at: datetime | None
    latest: dict[str, Any] | None
    latest_at: datetime | None


FACT_COLUMNS = (
    Device.id,
    Device.borough_id,
    Device.power_mode,
    Device.report_interval_s,
    Device.status,
    Device.state,
    Device.last_seen_at,
    Device.fw_version,
    Device.health,
    Device.health_at,
    Device.latest,
    Device.latest_at,
)


@dataclass
class History:
    battery: list[tuple[datetime, float]] = field(default_factory=list)  # 7 days, oldest first
    last_hour: list[dict[str, Any]] = field(default_factory=list)  # snapshots, sampling order
    day_first: dict[str, Any] | None = None  # the first snapshot of the last 24 h
    day_count: int = 0  # snapshots in the last 24 h


def needs_battery_history(device: DeviceFacts) -> bool:
    return "battery" in (device.latest or {})


def needs_reboot_history(health: dict[str, Any]) -> bool:
    """Up for an hour: no loop, and no history to load."""
    uptime = health.get("uptime")
    return isinstance(uptime, int | float) and uptime < 3600


def needs_eviction_history(health: dict[str, Any]) -> bool:
    evicted = health.get("evicted")
    return isinstance(evicted, int | float) and evicted > 0


def load_devices(session: Session, pks: Sequence[int]) -> list[DeviceFacts]:
    stmt = select(*FACT_COLUMNS).where(Device.id.in_(pks)).order_by(Device.id)
    return [DeviceFacts(*row) for row in session.execute(stmt)]


def load_histories(
    session: Session, devices: Sequence[DeviceFacts], now: datetime
) -> dict[int, History]:
    """Each device's history, at most three queries whatever the number of devices."""
    histories = {d.id: History() for d in devices}
    battery = [d.id for d in devices if needs_battery_history(d)]
    if battery:
        rows = session.execute(
            select(Reading.device_pk, Reading.ts, Reading.value)
            .where(
                Reading.device_pk.in_(battery),
                Reading.metric == "battery",
                Reading.ts >= now - BATTERY_WINDOW,
            )
            .order_by(Reading.device_pk, Reading.ts)
        )
        for pk, ts, value in rows:
            histories[pk].battery.append((ts, value))
    rebooting = [d.id for d in devices if needs_reboot_history(d.health or {})]
    if rebooting:
        snapshots = session.execute(
            select(HealthSnapshot.device_pk, HealthSnapshot.data)
            .where(
                HealthSnapshot.device_pk.in_(rebooting),
                HealthSnapshot.at >= now - REBOOT_WINDOW,
            )
            .order_by(HealthSnapshot.device_pk, SAMPLED_ORDER, HealthSnapshot.id)
        )
        for pk, data in snapshots:
            histories[pk].last_hour.append(data)
    evicting = [d.id for d in devices if needs_eviction_history(d.health or {})]
    if evicting:
        # Only the window's first snapshot and its size matter: the database picks them,
        # rather than sending a day of snapshots per device.
        window = select(
            HealthSnapshot.device_pk,
            HealthSnapshot.data,
            func.row_number()
            .over(
                partition_by=HealthSnapshot.device_pk,
                order_by=(SAMPLED_ORDER, HealthSnapshot.id),
            )
            .label("n"),
            func.count().over(partition_by=HealthSnapshot.device_pk).label("total"),
        ).where(
            HealthSnapshot.device_pk.in_(evicting),
            HealthSnapshot.at >= now - EVICTION_WINDOW,
        )
        sub = window.subquery()
        for pk, data, total in session.execute(
            select(sub.c.device_pk, sub.c.data, sub.c.total).where(sub.c.n == 1)
        ):
            histories[pk].day_first = data
            histories[pk].day_count = total
    return histories
