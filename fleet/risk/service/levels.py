"""A property's level from its placements' states: worst room, evidence, trend, history.

Shared by the one-property update (:func:`refresh_property`) and the batched one
(:mod:`.batch`), which loads the same inputs for many properties at once and hands them to
:func:`apply_level`, so both write identical rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from fleet.models import (
    Borough,
    Placement,
    PlacementRisk,
    Property,
    PropertyRisk,
    RiskHour,
    RiskLevelChange,
)
from fleet.risk.hourly import HOUR
from fleet.risk.level import RiskLevel
from fleet.risk.service.settings import RiskSettings

TREND_SRH_POINTS = 2.0
TREND_MOULD = 0.001
TREND_SPAN = timedelta(hours=48)


def processed(rows: Iterable[PlacementRisk]) -> list[PlacementRisk]:
    """The placements with at least one processed hour, in placement order (which decides
    the worst room when two tie)."""
    return sorted((r for r in rows if r.last_hour is not None), key=lambda r: r.placement_id)


def data_until(rows: Sequence[PlacementRisk]) -> datetime:
    """End of the newest processed hour of any placement."""
    return max(r.last_hour for r in rows if r.last_hour is not None) + HOUR


def trend_select(
    placement_ids: Sequence[int], *, since: datetime, until: datetime
) -> Select[int, datetime, float, float]:
    """``(placement, hour, surface RH, mould index)`` rows for :func:`trend_of`."""
    return (
        select(RiskHour.placement_id, RiskHour.hour, RiskHour.surface_rh, RiskHour.mould_index)
        .where(
            RiskHour.placement_id.in_(placement_ids),
            RiskHour.hour >= since,
            RiskHour.hour < until,
        )
        # Placement order within an hour keeps the float sums identical however rows are read.
        .order_by(RiskHour.hour, RiskHour.placement_id)
    )


def trend_of(rows: Iterable[tuple[int, datetime, float, float]], until: datetime) -> str:
    """Rising, falling or steady: the last 24 h against the 24 h before, from rows in
    :func:`trend_select` order (rows outside ``until`` - 48 h .. ``until`` are ignored)."""
    since = until - TREND_SPAN
    split = until - timedelta(hours=24)
    recent: list[float] = []
    earlier: list[float] = []
    first_m: dict[int, float] = {}
    last_m: dict[int, float] = {}
    for pid, hour, srh, m in rows:
        if hour < since or hour >= until:
            continue
        (recent if hour >= split else earlier).append(srh)
        first_m.setdefault(pid, m)
        last_m[pid] = m
    d_mould = sum(last_m[p] - first_m[p] for p in last_m)
    d_srh = (sum(recent) / len(recent) - sum(earlier) / len(earlier)) if recent and earlier else 0.0
    if d_mould > TREND_MOULD or d_srh >= TREND_SRH_POINTS:
        return "rising"
    if d_mould < -TREND_MOULD or d_srh <= -TREND_SRH_POINTS:
        return "falling"
    return "steady"


def apply_level(
    session: Session,
    prop: Property,
    rows: Sequence[PlacementRisk],
    *,
    rooms: Mapping[int, str | None],
    current: PropertyRisk | None,
    trend: str,
    now: datetime,
) -> PropertyRisk:
    """Set the property's level from its worst placement (``rows`` from :func:`processed`,
    not empty); record a level change."""
    worst = max(rows, key=lambda r: (r.score, r.mould_index))
    evidence = []
    for r in sorted(rows, key=lambda r: (-r.score, r.placement_id)):
        for e in r.evidence or []:
            # Points count only for the worst room: the level is that room's level.
            points = e.get("points", 0) if r is worst else 0
            evidence.append({**e, "points": points, "room": rooms.get(r.placement_id)})
    until = data_until(rows)
    level = RiskLevel(worst.level)
    if current is None:
        current = PropertyRisk(property_id=prop.id, borough_id=prop.borough_id)
        session.add(current)
    if current.level_since is None or current.level != level.value:
        session.add(
            RiskLevelChange(
                property_id=prop.id,
                borough_id=prop.borough_id,
                at=until,
                from_level=None if current.level_since is None else current.level,
                to_level=level.value,
                score=worst.score,
            )
        )
        current.level_since = until
    current.level = level.value
    current.rank = level.rank
    current.score = worst.score
    current.mould_index = max(r.mould_index for r in rows)
    current.trend = trend
    current.data_until = until
    current.evidence = evidence
    current.updated_at = now
    return current


def refresh_property(session: Session, prop: Property, *, now: datetime) -> PropertyRisk | None:
    """Set the property's level from its worst placement; record level changes."""
    rows = processed(
        session.scalars(select(PlacementRisk).where(PlacementRisk.property_id == prop.id))
    )
    if not rows:
        return None
    rooms = dict(
        session.execute(
            select(Placement.id, Placement.room).where(Placement.property_id == prop.id)
        ).all()
    )
    until = data_until(rows)
    ids = [r.placement_id for r in rows]
    trend = trend_of(
        session.execute(trend_select(ids, since=until - TREND_SPAN, until=until)), until
    )
    current = session.get(PropertyRisk, prop.id)
    return apply_level(session, prop, rows, rooms=rooms, current=current, trend=trend, now=now)


def case_threshold(borough: Borough | None, settings: RiskSettings) -> RiskLevel:
    """The borough's ``risk_case_level`` if it set a valid one, else the settings'."""
    wanted = (borough.alert_settings or {}).get("risk_case_level") if borough else None
    try:
        return RiskLevel(wanted) if wanted else RiskLevel(settings.case_level)
    except ValueError:
        return RiskLevel(settings.case_level)
