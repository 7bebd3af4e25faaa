"""Synthetic rooms for risk tests: a damp room with a cold wall and showers, and its fix."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import insert, select

from fleet.core.context import FleetContext
from fleet.models import Device, Reading
from fleet.models.base import utcnow


@dataclass(frozen=True)
class Room:
    """Air 18-20 °C; RH base level plus showers; the wall probe reads f_Rsi of the way
    from ``outdoor`` to the room temperature."""

    rh_base: float
    showers_per_day: int
    shower_rise: float = 25.0
    f_rsi: float = 0.55
    outdoor: float = 4.0

    def at(self, ts: datetime) -> tuple[float, float, float]:
        hour = ts.hour + ts.minute / 60.0
        t_air = 19.0 + math.sin(2 * math.pi * (hour - 9.0) / 24.0)
        rh = self.rh_base
        for k in range(self.showers_per_day):
            start = 7.0 + k * (14.0 / max(self.showers_per_day, 1))
            dt = hour - start
            if 0.0 <= dt < 3.0:
                rh += self.shower_rise * math.exp(-dt / 1.0)
        t_wall = self.outdoor + self.f_rsi * (t_air - self.outdoor)
        return t_air, min(rh, 99.0), t_wall


DAMP = Room(rh_base=72.0, showers_per_day=3)
FIXED = Room(rh_base=48.0, showers_per_day=3, shower_rise=10.0, f_rsi=0.8)


def samples(
    room: Room, start: datetime, hours: float, step: timedelta = timedelta(minutes=15)
) -> Iterator[tuple[datetime, float, float, float]]:
    n = int(hours * 3600 // step.total_seconds())
    for i in range(n):
        ts = start + step * i
        yield (ts, *room.at(ts))


def store(ctx: FleetContext, device_id: str, rows: list[tuple[datetime, float, float, float]]):
    """Insert readings as ingest would, and move the device's latest/last-seen markers."""
    with ctx.sessions.begin() as s:
        device = s.scalars(select(Device).where(Device.device_id == device_id)).one()
        params = []
        for ts, t, rh, tw in rows:
            params += [
                {
                    "device_pk": device.id,
                    "metric": "temperature",
                    "ts": ts,
                    "value": t,
                    "unit": "Cel",
                },
                {
                    "device_pk": device.id,
                    "metric": "humidity",
                    "ts": ts,
                    "value": rh,
                    "unit": "%RH",
                },
                {
                    "device_pk": device.id,
                    "metric": "surface_temperature",
                    "ts": ts,
                    "value": tw,
                    "unit": "Cel",
                },
            ]
        s.execute(insert(Reading), params)
        newest = max(r[0] for r in rows)
        if device.latest_at is None or newest > device.latest_at:
            device.latest_at = newest
        device.last_seen_at = utcnow()
        return device.placement_id
