"""Reading risk results for the API and the dashboard, always through borough scoping."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fleet.cases.deadlines import case_deadlines, overdue
from fleet.models import (
    Borough,
    Case,
    Estate,
    Placement,
    PlacementRisk,
    Property,
    PropertyRisk,
    RiskHour,
    RiskProfile,
)
from fleet.risk.hourly import HOUR


@dataclass(frozen=True)
class PropertyRow:
    """One line of a borough's risk list."""

    prop: Property
    estate: str | None
    risk: PropertyRisk | None
    open_case_id: int | None
    overdue_steps: tuple[str, ...]

    @property
    def level(self) -> str:
        return self.risk.level if self.risk is not None else "no data"

    def to_dict(self) -> dict[str, object]:
        r = self.risk
        return {
            "property_id": self.prop.id,
            "reference": self.prop.reference,
            "estate": self.estate,
            "housing_type": self.prop.housing_type,
            "construction_age_band": self.prop.construction_age_band,
            "level": self.level,
            "score": None if r is None else r.score,
            "mould_index": None if r is None else round(r.mould_index, 4),
            "trend": None if r is None else r.trend,
            "level_since": None if r is None or r.level_since is None else r.level_since,
            "data_until": None if r is None else r.data_until,
            "open_case_id": self.open_case_id,
            "overdue_steps": list(self.overdue_steps),
        }


def borough_rows(
    session: Session,
    borough: Borough,
    *,
    now: datetime,
    limit: int | None = None,
    offset: int = 0,
) -> list[PropertyRow]:
    """The borough's properties, highest risk first (then score, mould index, reference).
    The reference is unique in a borough and the id breaks any tie, so the order is total and
    an offset names the same rows on every read of unchanged data."""
    stmt = (
        select(Property, Estate.name, PropertyRisk)
        .outerjoin(Estate, Estate.id == Property.estate_id)
        .outerjoin(PropertyRisk, PropertyRisk.property_id == Property.id)
        .where(Property.borough_id == borough.id)
        .order_by(
            PropertyRisk.rank.desc().nulls_last(),
            PropertyRisk.score.desc().nulls_last(),
            PropertyRisk.mould_index.desc().nulls_last(),
            Property.reference,
            Property.id,
        )
    )
    if limit is not None:
        stmt = stmt.limit(limit)
    if offset:
        stmt = stmt.offset(offset)
    found = session.execute(stmt).all()
    # The borough itself was resolved through the caller's scope; only the rows shown.
    ids = [prop.id for prop, _, _ in found]
    open_cases = (
        {
            c.property_id: c
            for c in session.scalars(
                select(Case).where(
                    Case.borough_id == borough.id,
                    Case.status == "open",
                    Case.property_id.in_(ids),
                )
            )
        }
        if ids
        else {}
    )
    out = []
    for prop, estate, risk in found:
        case = open_cases.get(prop.id)
        late: tuple[str, ...] = ()
        if case is not None:
            late = tuple(str(d.step) for d in overdue(case_deadlines(case, now=now)))
        out.append(PropertyRow(prop, estate, risk, None if case is None else case.id, late))
    return out


def count_properties(session: Session, borough: Borough) -> int:
    stmt = select(func.count()).select_from(Property).where(Property.borough_id == borough.id)
    return int(session.scalar(stmt) or 0)


@dataclass(frozen=True)
class PlacementView:
    placement: Placement
    risk: PlacementRisk | None
    profile: RiskProfile | None


def placements(session: Session, prop: Property) -> list[PlacementView]:
    rows = session.execute(
        select(Placement, PlacementRisk)
        .outerjoin(PlacementRisk, PlacementRisk.placement_id == Placement.id)
        .where(Placement.property_id == prop.id)
        .order_by(Placement.room, Placement.id)
    ).all()
    profiles = {
        p.placement_id: p
        for p in session.scalars(select(RiskProfile).where(RiskProfile.property_id == prop.id))
    }
    # A state row made before the placement's first complete hour holds no assessment yet.
    return [
        PlacementView(pl, risk if risk and risk.last_hour else None, profiles.get(pl.id))
        for pl, risk in rows
    ]


def property_profile(session: Session, prop: Property) -> RiskProfile | None:
    return session.scalars(
        select(RiskProfile).where(
            RiskProfile.property_id == prop.id, RiskProfile.placement_id.is_(None)
        )
    ).first()


def hours(
    session: Session,
    prop: Property,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 24 * 400,
) -> Sequence[tuple[str, RiskHour]]:
    """(room, hour) rows of the property, oldest first."""
    stmt = (
        select(Placement.room, RiskHour)
        .join(Placement, Placement.id == RiskHour.placement_id)
        .where(Placement.property_id == prop.id)
    )
    if since is not None:
        stmt = stmt.where(RiskHour.hour >= since)
    if until is not None:
        stmt = stmt.where(RiskHour.hour < until)
    return session.execute(stmt.order_by(RiskHour.hour, Placement.room).limit(limit)).all()


def default_since(risk: PropertyRisk | None, span: timedelta) -> datetime | None:
    """Charts end at the newest processed hour, not at the wall clock (data may lag)."""
    if risk is None or risk.data_until is None:
        return None
    return risk.data_until - span


def mark_recompute(session: Session, prop: Property, *, days: int) -> int:
    """Flag every placement of the property for recompute over the last ``days``."""
    n = 0
    for row in session.scalars(select(PlacementRisk).where(PlacementRisk.property_id == prop.id)):
        if row.last_hour is None:
            continue
        row.recompute_from = row.last_hour + HOUR - timedelta(days=days)
        n += 1
    return n
