"""Chart-sized reading series: bucketed averages computed in the database.

A year of 15-minute data is 35,000 points per metric; a chart needs a few hundred.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Integer, cast, func, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from fleet.models import Device, Reading

MIN_BUCKET_S = 60


@dataclass(frozen=True)
class SeriesPoint:
    ts: datetime
    mean: float
    low: float
    high: float
    count: int


def _epoch(session: Session) -> ColumnElement[int]:
    if session.get_bind().dialect.name == "postgresql":
        return cast(func.extract("epoch", Reading.ts), Integer)
    return cast(func.strftime("%s", Reading.ts), Integer)


def bucket_seconds(since: datetime, until: datetime, max_points: int) -> int:
    span = max((until - since).total_seconds(), 1.0)
    return max(MIN_BUCKET_S, math.ceil(span / max(max_points, 1)))


def reading_series(
    session: Session,
    *,
    device: Device,
    metric: str,
    since: datetime,
    until: datetime,
    max_points: int = 500,
) -> list[SeriesPoint]:
    bucket = bucket_seconds(since, until, max_points)
    epoch = _epoch(session)
    slot = func.floor(epoch / bucket)
    stmt = (
        select(
            slot.label("slot"),
            # A point sits at the mean time of its readings: a wide bucket's middle can lie
            # days after the last reading, in the future for today's.
            func.avg(epoch),
            func.avg(Reading.value),
            func.min(Reading.value),
            func.max(Reading.value),
            func.count(),
        )
        .where(
            Reading.device_pk == device.id,
            Reading.metric == metric,
            Reading.ts >= since,
            Reading.ts < until,
        )
        .group_by("slot")
        .order_by("slot")
    )
    return [
        SeriesPoint(
            ts=datetime.fromtimestamp(round(float(at)), UTC),
            mean=float(mean),
            low=float(low),
            high=float(high),
            count=int(n),
        )
        for _, at, mean, low, high, n in session.execute(stmt)
    ]
