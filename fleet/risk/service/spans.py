"""Which readings belong to a placement: its devices' readings while installed there.

Built from ``device_installations`` (:mod:`fleet.models.installation`), so a device moved to
another home brings none of its old home's readings, and a recompute after a swap still reads
the device that was there before.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, and_, false, or_, select
from sqlalchemy.orm import Session

from fleet.models import DeviceInstallation, Reading


@dataclass(frozen=True)
class Span:
    """One device at one placement over ``[since, until)``; ``None`` leaves that end open."""

    device_pk: int
    since: datetime | None
    until: datetime | None

    def overlaps(self, start: datetime | None, end: datetime) -> bool:
        return (self.since is None or self.since < end) and (
            self.until is None or start is None or self.until > start
        )

    def covers_window(self, start: datetime | None, end: datetime) -> bool:
        """Whether every reading of the device in ``[start, end)`` falls inside the span."""
        return (self.since is None or (start is not None and self.since <= start)) and (
            self.until is None or self.until >= end
        )

    def covers(self, ts: datetime) -> bool:
        return (self.since is None or ts >= self.since) and (self.until is None or ts < self.until)


def load_spans(session: Session, placement_ids: Iterable[int]) -> dict[int, list[Span]]:
    """Placement id -> the installations ever made there."""
    out: dict[int, list[Span]] = {}
    ids = sorted(set(placement_ids))
    for i in range(0, len(ids), 500):  # far below every backend's bind-parameter limit
        rows = session.execute(
            select(
                DeviceInstallation.placement_id,
                DeviceInstallation.device_pk,
                DeviceInstallation.installed_at,
                DeviceInstallation.removed_at,
            )
            .where(DeviceInstallation.placement_id.in_(ids[i : i + 500]))
            .order_by(DeviceInstallation.id)
        )
        for placement_id, device_pk, since, until in rows:
            out.setdefault(placement_id, []).append(Span(device_pk, since, until))
    return out


def within(spans: Iterable[Span], start: datetime | None, end: datetime) -> list[Span]:
    """The spans with readings possible in ``[start, end)``."""
    return [s for s in spans if s.overlaps(start, end)]


def reading_filter(
    spans: Sequence[Span], start: datetime | None, end: datetime
) -> ColumnElement[bool]:
    """Readings of the spans' devices taken inside the spans, for a query over
    ``[start, end)``. A span covering the whole window needs no time bound of its own, so
    the usual case (devices installed all along) stays a plain ``device_pk IN (...)``."""
    whole = sorted({s.device_pk for s in spans if s.covers_window(start, end)})
    terms: list[ColumnElement[bool]] = []
    if whole:
        terms.append(Reading.device_pk.in_(whole))
    for s in spans:
        if s.covers_window(start, end) or not s.overlaps(start, end):
            continue
        bounds = [Reading.device_pk == s.device_pk]
        if s.since is not None:
            bounds.append(Reading.ts >= s.since)
        if s.until is not None:
            bounds.append(Reading.ts < s.until)
        terms.append(and_(*bounds))
    if not terms:
        return false()
    return or_(*terms)


def clipped(spans: Iterable[Span], start: datetime, end: datetime) -> bool:
    """Whether a span begins or ends inside ``[start, end)`` (a move within the window)."""
    return any(s.overlaps(start, end) and not s.covers_window(start, end) for s in spans)
