"""What the API, the dashboard and the evidence document show about a case or a property."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from fleet.cases import service
from fleet.cases.compare import DEFAULT_WINDOW, case_comparison
from fleet.cases.deadlines import (
    STEP_COLUMNS,
    STEP_LABELS,
    CaseStep,
    StepDeadline,
    case_deadlines,
    overdue,
)
from fleet.models import Case, CaseEvent, Property, PropertyRisk, RiskHour, RiskLevelChange
from fleet.risk.compare import Comparison
from fleet.risk.service import queries
from fleet.risk.workdays import uk_date

EVENT_LABELS = {
    "opened": "Case opened",
    "linked": "Report linked to this case",
    "risk_raised": "Sensor risk rose",
    "hazard_raised": "Hazard raised to emergency",
    "emergency_aware": "Landlord aware of the emergency",
    "closed": "Case closed",
}


def event_label(kind: str) -> str:
    try:
        return STEP_LABELS[CaseStep(kind)]
    except ValueError:
        return EVENT_LABELS.get(kind, kind)


@dataclass(frozen=True)
class CaseView:
    case: Case
    prop: Property
    deadlines: list[StepDeadline]
    overdue: list[StepDeadline]
    events: Sequence[CaseEvent]
    comparison: Comparison | None

    def to_dict(self) -> dict[str, Any]:
        c = self.case
        steps = {str(step): getattr(c, column) for step, column in STEP_COLUMNS.items()}
        return {
            "id": c.id,
            "property_id": c.property_id,
            "property_reference": self.prop.reference,
            "borough_id": c.borough_id,
            "status": c.status,
            "hazard": c.hazard,
            "source": c.source,
            "opened_at": c.opened_at,
            "opened_by": c.opened_by,
            "trigger": c.trigger,
            "emergency_at": c.emergency_at,
            "steps": steps,
            "closed_at": c.closed_at,
            "closed_level": c.closed_level,
            "deadlines": [d.to_dict() for d in self.deadlines],
            "overdue": [str(d.step) for d in self.overdue],
            "timeline": [
                {
                    "kind": e.kind,
                    "label": event_label(e.kind),
                    "at": e.at,
                    "recorded_at": e.recorded_at,
                    "actor": e.actor,
                    "note": e.note,
                }
                for e in self.events
            ],
            "comparison": None if self.comparison is None else self.comparison.to_dict(),
        }


def case_view(session: Session, case: Case, *, now: datetime) -> CaseView:
    prop = session.get(Property, case.property_id)
    if prop is None:  # the FK cascades, so only a concurrent delete gets here
        raise service.CaseNotFound(f"case {case.id} has no property")
    deadlines = case_deadlines(case, now=now)
    return CaseView(
        case=case,
        prop=prop,
        deadlines=deadlines,
        overdue=overdue(deadlines),
        events=service.timeline(session, case),
        comparison=case_comparison(session, case, window=DEFAULT_WINDOW),
    )


def level_history(session: Session, prop: Property, limit: int = 50) -> Sequence[RiskLevelChange]:
    stmt = (
        select(RiskLevelChange)
        .where(RiskLevelChange.property_id == prop.id)
        .order_by(RiskLevelChange.at.desc(), RiskLevelChange.id.desc())
        .limit(limit)
    )
    return session.scalars(stmt).all()


def daily_summary(
    session: Session, prop: Property, *, since: datetime | None, until: datetime | None
) -> list[dict[str, Any]]:
    """Daily means per room (the readings table of the evidence document), by UK calendar
    day: the day deadlines are counted in and the one a tenant lives. UK offsets are whole
    hours, so every stored UTC hour falls in exactly one UK day (23 or 25 of them when the
    clocks change)."""
    acc: dict[tuple[str, str], list[RiskHour]] = defaultdict(list)
    for room, h in queries.hours(session, prop, since=since, until=until):
        acc[(uk_date(h.hour).isoformat(), room)].append(h)
    out = []
    for (day, room), hours in sorted(acc.items()):
        n = len(hours)
        out.append(
            {
                "day": day,
                "room": room,
                "hours": n,
                "temperature": sum(h.temperature for h in hours) / n,
                "humidity": sum(h.humidity for h in hours) / n,
                "dew_point": sum(h.dew_point for h in hours) / n,
                "surface_rh": sum(h.surface_rh for h in hours) / n,
                "estimated": any(h.surface_estimated for h in hours),
                "mould_index": hours[-1].mould_index,
            }
        )
    return out


def property_risk(session: Session, prop: Property) -> PropertyRisk | None:
    return session.get(PropertyRisk, prop.id)
