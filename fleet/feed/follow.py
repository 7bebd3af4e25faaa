"""Follow the readings table by id without losing rows that commit out of id order.

On PostgreSQL several ingest writers take ids from one sequence, so a transaction holding
lower ids can commit after one holding higher ids. A plain "id > highest seen" cursor would
step over those rows for good. The follower therefore remembers the ids it stepped over
(gaps) and looks in them again on every poll until they appear or a grace period passes:
ids of rolled-back transactions and of idempotent inserts that hit a duplicate never
appear, so a gap cannot be kept forever.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fleet.models import Reading

log = logging.getLogger(__name__)

BATCH_LIMIT = 2000
# Longer than any ingest transaction takes from taking its ids to committing.
GAP_GRACE_S = 120.0
# Bounds the size of the query; beyond it the oldest gaps are given up (and logged).
MAX_GAPS = 500


@dataclass(frozen=True)
class NewReading:
    id: int
    device_pk: int
    metric: str
    ts: datetime
    value: float


@dataclass(frozen=True)
class Gap:
    """Ids ``low..high`` (inclusive) not seen yet, first noticed at ``since``."""

    low: int
    high: int
    since: float


def _without(gap: Gap, found: Sequence[int]) -> list[Gap]:
    """What is left of ``gap`` once the sorted ids in ``found`` are taken out."""
    left: list[Gap] = []
    low = gap.low
    for reading_id in found:
        if reading_id > low:
            left.append(Gap(low, reading_id - 1, gap.since))
        low = reading_id + 1
    if low <= gap.high:
        left.append(Gap(low, gap.high, gap.since))
    return left


class ReadingFollower:
    """Yields each committed reading once, in batches, from a starting id on."""

    def __init__(
        self,
        *,
        grace_s: float = GAP_GRACE_S,
        batch_limit: int = BATCH_LIMIT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cursor = 0  # the highest id seen
        self.gaps: list[Gap] = []
        self._grace_s = grace_s
        self.batch_limit = batch_limit
        self._clock = clock

    def start_at_latest(self, session: Session) -> None:
        """Follow only what arrives from now on."""
        self.cursor = int(session.scalar(select(func.max(Reading.id))) or 0)
        self.gaps = []

    def poll(self, session: Session) -> list[NewReading]:
        """Readings committed since the last poll (late ones included), by id."""
        now = self._clock()
        self._expire(now)
        wanted = sa.or_(
            Reading.id > self.cursor, *(Reading.id.between(g.low, g.high) for g in self.gaps)
        )
        rows = session.execute(
            select(Reading.id, Reading.device_pk, Reading.metric, Reading.ts, Reading.value)
            .where(wanted)
            .order_by(Reading.id)
            .limit(self.batch_limit)
        ).all()
        readings = [NewReading(*row) for row in rows]
        ids = [r.id for r in readings]
        gaps: list[Gap] = []
        for gap in self.gaps:
            gaps += _without(gap, [i for i in ids if gap.low <= i <= gap.high])
        fresh = [i for i in ids if i > self.cursor]
        if fresh:
            gaps += _without(Gap(self.cursor + 1, fresh[-1], now), fresh)
            self.cursor = fresh[-1]
        self.gaps = gaps
        if len(self.gaps) > MAX_GAPS:
            dropped = self.gaps[: len(self.gaps) - MAX_GAPS]
            self.gaps = self.gaps[len(dropped) :]
            log.warning("live feed gave up waiting for reading ids %s", _ranges(dropped))
        return readings

    def _expire(self, now: float) -> None:
        # Usual on PostgreSQL: a rolled-back batch or a duplicate insert used up the ids.
        expired = [g for g in self.gaps if now - g.since >= self._grace_s]
        if expired:
            log.debug("reading ids %s never appeared", _ranges(expired))
            self.gaps = [g for g in self.gaps if now - g.since < self._grace_s]


def _ranges(gaps: Sequence[Gap]) -> str:
    return ", ".join(str(g.low) if g.low == g.high else f"{g.low}-{g.high}" for g in gaps)
