"""Case lifecycle: open (by risk or by staff), link, record steps, close. Borough-scoped.

Every change is written to the case timeline (``risk_case_events``, with when it happened and
when it was recorded) and to the audit log, in the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from fleet.access import audit
from fleet.access.principal import SYSTEM, Principal
from fleet.cases.deadlines import STEP_COLUMNS, STEP_LABELS, CaseStep, case_deadlines, overdue
from fleet.cases.errors import CaseConflict, CaseNotFound, InvalidStep
from fleet.cases.policy import check_further_works, new_after_close
from fleet.core.keyset import Cursor
from fleet.models import Case, CaseEvent, Property, PropertyRisk
from fleet.risk.level import RiskLevel
from fleet.risk.workdays import UK, default_calendar

#: Clock skew tolerated for a step time "now" sent from another machine.
FUTURE_TOLERANCE = timedelta(minutes=5)
HAZARDS = ("significant", "emergency")
#: A note on a case (a tenant's report, what was found) is kept up to this many characters.
NOTE_CHARS = 2000
#: Steps whose deadlines count from the investigation, so it must come first.
AFTER_INVESTIGATION = frozenset(
    {
        CaseStep.NO_FURTHER_WORKS,
        CaseStep.WRITTEN_SUMMARY,
        CaseStep.FURTHER_WORKS_BEGUN,
        CaseStep.FURTHER_WORKS_STARTED,
        CaseStep.WORKS_COMPLETED,
    }
)


def earliest_date() -> date:
    """The first day a case date may be: deadlines are counted on the holiday calendar."""
    return date(default_calendar().first_year, 1, 1)


def _aware(ts: datetime, what: str) -> datetime:
    if ts.tzinfo is None or ts.utcoffset() is None:
        raise InvalidStep(f"{what} needs a timezone, e.g. 2025-11-03T09:30:00+00:00")
    first = earliest_date()
    if ts < datetime.combine(first, time(), UK):  # year 1 converted to UK time would overflow
        # Deadlines count working days on the bank holiday calendar: before it they cannot
        # be counted, and a case whose deadlines are unknown is never flagged overdue.
        raise InvalidStep(
            f"{what} {ts.date().isoformat()} is before {first.isoformat()}, the first day "
            "deadlines can be counted from: check the year"
        )
    return ts


def get_case(session: Session, *, case_id: int, principal: Principal) -> Case:
    case = session.get(Case, case_id)
    if case is None or not principal.can_see(case.borough_id):
        raise CaseNotFound(f"no case {case_id}")
    return case


def list_cases(
    session: Session,
    *,
    principal: Principal,
    borough_id: int | None = None,
    property_id: int | None = None,
    status: str | None = None,
    limit: int = 500,
    after: Cursor | None = None,
) -> Sequence[Case]:
    """Newest first (the id breaks ties), from below ``after``."""
    stmt = select(Case).where(*_matching(principal, borough_id, property_id, status))
    if after is not None:
        stmt = stmt.where(after.below(Case.opened_at, Case.id))
    return session.scalars(stmt.order_by(Case.opened_at.desc(), Case.id.desc()).limit(limit)).all()


def count_cases(
    session: Session,
    *,
    principal: Principal,
    borough_id: int | None = None,
    status: str | None = None,
    newer_than: Cursor | None = None,
) -> int:
    """How many match; with ``newer_than``, how many come before that cursor."""
    where = _matching(principal, borough_id, None, status)
    if newer_than is not None:
        where.append(newer_than.above(Case.opened_at, Case.id))
    return int(session.scalar(select(func.count()).select_from(Case).where(*where)) or 0)


def newer_cases(
    session: Session,
    *,
    principal: Principal,
    status: str | None = None,
    before: Cursor,
    limit: int,
) -> Sequence[Case]:
    """The cases just newer than ``before``, nearest first (to page back)."""
    stmt = select(Case).where(
        *_matching(principal, None, None, status), before.above(Case.opened_at, Case.id)
    )
    return session.scalars(stmt.order_by(Case.opened_at, Case.id).limit(limit)).all()


def overdue_cases(session: Session, *, principal: Principal, now: datetime) -> list[Case]:
    """Open cases with a step past its deadline, newest first. Deadlines count working days
    on the holiday calendar, so they are judged here rather than in SQL; open cases are few
    beside all cases."""
    stmt = select(Case).where(*_matching(principal, None, None, "open"))
    found = session.scalars(stmt.order_by(Case.opened_at.desc(), Case.id.desc()))
    return [c for c in found if overdue(case_deadlines(c, now=now))]


def case_cursor(case: Case) -> Cursor:
    return Cursor(case.opened_at, case.id)


def _matching(
    principal: Principal, borough_id: int | None, property_id: int | None, status: str | None
) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if principal.borough_ids is not None:
        where.append(Case.borough_id.in_(principal.borough_ids))
    if borough_id is not None:
        where.append(Case.borough_id == borough_id)
    if property_id is not None:
        where.append(Case.property_id == property_id)
    if status is not None:
        where.append(Case.status == status)
    return where


def cases_for_property(session: Session, property_id: int) -> Sequence[Case]:
    """Every case of a property already resolved through the caller's scope, newest first."""
    stmt = select(Case).where(Case.property_id == property_id)
    return session.scalars(stmt.order_by(Case.opened_at.desc(), Case.id.desc())).all()


def open_case_for(session: Session, property_id: int) -> Case | None:
    stmt = select(Case).where(Case.property_id == property_id, Case.status == "open")
    return session.scalars(stmt).first()


def timeline(session: Session, case: Case) -> Sequence[CaseEvent]:
    stmt = select(CaseEvent).where(CaseEvent.case_id == case.id)
    return session.scalars(stmt.order_by(CaseEvent.at, CaseEvent.id)).all()


def _event(
    session: Session,
    case: Case,
    principal: Principal,
    kind: str,
    *,
    at: datetime,
    now: datetime,
    note: str | None = None,
    detail: dict[str, Any] | None = None,
) -> CaseEvent:
    event = CaseEvent(
        case_id=case.id,
        kind=kind,
        at=at,
        recorded_at=now,
        actor=principal.actor,
        note=note,
        detail=detail,
    )
    session.add(event)
    audit.record(
        session,
        principal,
        f"case.{kind}",
        target_type="case",
        target_id=case.id,
        borough_id=case.borough_id,
        detail={"at": at.isoformat(), "note": note, **(detail or {})},
    )
    return event


@dataclass(frozen=True)
class Report:
    """What a report did: opened ``case``, or was linked to it with these ``changes``."""

    case: Case
    created: bool
    changes: list[str] = field(default_factory=list)


def report(
    session: Session,
    *,
    prop: Property,
    principal: Principal,
    now: datetime,
    aware_at: datetime | None = None,
    hazard: str = "significant",
    note: str | None = None,
) -> Report:
    """Open a case for the property (staff, for a tenant's report), or link the report to its
    open case: an emergency raises the case to emergency, and an earlier awareness moves the
    case's awareness back, so nothing the report says is lost."""
    if hazard not in HAZARDS:
        raise InvalidStep(f"hazard must be one of {', '.join(HAZARDS)}, not {hazard!r}")
    aware = _aware(aware_at, "aware_at") if aware_at is not None else now
    if aware > now + FUTURE_TOLERANCE:
        raise InvalidStep("aware_at is in the future")
    existing = open_case_for(session, prop.id)
    if existing is not None:
        _event(session, existing, principal, "linked", at=aware, now=now, note=note)
        changes = _link(session, existing, principal, aware=aware, hazard=hazard, now=now)
        return Report(existing, False, changes)
    case = Case(
        property_id=prop.id,
        borough_id=prop.borough_id,
        status="open",
        hazard=hazard,
        source="manual",
        opened_at=now,
        opened_by=principal.actor,
        aware_at=aware,
    )
    session.add(case)
    session.flush()
    _event(session, case, principal, "opened", at=aware, now=now, note=note)
    return Report(case, True)


def open_case(
    session: Session,
    *,
    prop: Property,
    principal: Principal,
    now: datetime,
    aware_at: datetime | None = None,
    hazard: str = "significant",
    note: str | None = None,
) -> tuple[Case, bool]:
    """:func:`report`, answering ``(case, created)``."""
    done = report(
        session,
        prop=prop,
        principal=principal,
        now=now,
        aware_at=aware_at,
        hazard=hazard,
        note=note,
    )
    return done.case, done.created


def _shown(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _link(
    session: Session,
    case: Case,
    principal: Principal,
    *,
    aware: datetime,
    hazard: str,
    now: datetime,
) -> list[str]:
    """Apply a linked report's hazard and awareness to the open case; returns what changed.
    Times only ever move earlier: a later one would push deadlines back."""
    changes: list[str] = []
    if hazard == "emergency" and case.hazard != "emergency":
        case.hazard = "emergency"
        case.emergency_at = aware
        detail = {"from": "significant", "to": "emergency", "emergency_at": aware.isoformat()}
        note = "an emergency was reported: investigate and make safe within 24 hours"
        _event(
            session, case, principal, "hazard_raised", at=aware, now=now, note=note, detail=detail
        )
        changes.append(f"hazard raised to emergency: 24 hours from {_shown(aware)}")
    elif hazard == "emergency" and case.emergency_at is not None and aware < case.emergency_at:
        previous = case.emergency_at
        case.emergency_at = aware
        detail = {"previous": previous.isoformat()}
        _event(session, case, principal, "emergency_aware", at=aware, now=now, detail=detail)
        changes.append(f"emergency awareness moved from {_shown(previous)} to {_shown(aware)}")
    if aware < case.aware_at:
        if case.hazard == "emergency" and case.emergency_at is None and hazard != "emergency":
            # A significant report does not move an emergency's 24 hours: pin them.
            case.emergency_at = case.aware_at
        previous = case.aware_at
        case.aware_at = aware
        detail = {"previous": previous.isoformat()}
        note = "earlier awareness from a linked report"
        _event(session, case, principal, "aware", at=aware, now=now, note=note, detail=detail)
        changes.append(f"awareness moved from {_shown(previous)} to {_shown(aware)}")
    return changes


def on_property_risk(
    session: Session, *, prop: Property, risk: PropertyRisk, threshold: RiskLevel, now: datetime
) -> tuple[Case, bool] | None:
    """Open a case when the property's level reaches ``threshold``, or note a higher level on
    the open one. Returns ``(case, created)``, or ``None`` below the threshold or while the
    risk a case was closed at goes on (:func:`.policy.new_after_close`)."""
    level = RiskLevel(risk.level)
    if level.rank < threshold.rank:
        return None
    trigger = {
        "level": level.value,
        "rank": level.rank,
        "score": risk.score,
        "data_until": None if risk.data_until is None else risk.data_until.isoformat(),
        "evidence": [e.get("detail") for e in risk.evidence or []][:20],
    }
    existing = open_case_for(session, prop.id)
    if existing is not None:
        known = max(
            (
                int((e.detail or {}).get("rank", -1))
                for e in timeline(session, existing)
                if e.kind in ("opened", "risk_raised")
            ),
            default=-1,
        )
        if level.rank > known:
            _event(
                session,
                existing,
                SYSTEM,
                "risk_raised",
                at=now,
                now=now,
                note=f"risk rose to {level.value}",
                detail=trigger,
            )
        return existing, False
    if not new_after_close(session, prop.id, level, threshold):
        return None
    case = Case(
        property_id=prop.id,
        borough_id=prop.borough_id,
        status="open",
        hazard="significant",
        source="risk",
        opened_at=now,
        opened_by=SYSTEM.actor,
        trigger=trigger,
        # The sensors made the landlord aware when the risk engine flagged it.
        aware_at=now,
    )
    session.add(case)
    session.flush()
    _event(
        session,
        case,
        SYSTEM,
        "opened",
        at=now,
        now=now,
        note=f"sensor risk reached {level.value} (score {risk.score})",
        detail=trigger,
    )
    return case, True


def record_step(
    session: Session,
    *,
    case: Case,
    step: CaseStep,
    at: datetime | None,
    principal: Principal,
    now: datetime,
    note: str | None = None,
) -> CaseEvent:
    """Record that a step happened at ``at`` (default: now)."""
    if case.status != "open":
        raise CaseConflict(f"case {case.id} is closed; reopen by opening a new case")
    when = _aware(at, "at") if at is not None else now
    if when > now + FUTURE_TOLERANCE:
        raise InvalidStep(f"{step.value} at {when.isoformat()} is in the future")
    if step is CaseStep.NOTE:
        if not note:
            raise InvalidStep("a note needs text")
        return _event(session, case, principal, "note", at=when, now=now, note=note)
    column = STEP_COLUMNS[step]
    previous = getattr(case, column)
    check_further_works(case, step)
    if step is CaseStep.AWARE:
        # The only correctable date: a tenant may have reported before the sensors flagged it.
        # Later would push every deadline back and could hide one already missed.
        if when > case.aware_at:
            raise InvalidStep(
                f"awareness can only be corrected to an earlier time than "
                f"{case.aware_at.isoformat()}; add a note to explain a mistake"
            )
    else:
        if previous is not None:
            raise CaseConflict(
                f"{STEP_LABELS[step].lower()} was already recorded for "
                f"{previous.isoformat()}; add a note to explain a correction"
            )
        if when < case.aware_at:
            raise InvalidStep(
                f"{step.value} at {when.isoformat()} is before the landlord became aware "
                f"({case.aware_at.isoformat()})"
            )
        needs_investigation = step in AFTER_INVESTIGATION or (
            step is CaseStep.SAFETY_WORK and case.hazard != "emergency"
        )
        if needs_investigation:
            if case.investigation_at is None:
                raise InvalidStep(f"record the investigation before {step.value}")
            if when < case.investigation_at:
                raise InvalidStep(f"{step.value} cannot be before the investigation ended")
    setattr(case, column, when)
    detail = {"previous": previous.isoformat()} if step is CaseStep.AWARE and previous else None
    return _event(session, case, principal, step.value, at=when, now=now, note=note, detail=detail)


def close_case(
    session: Session, *, case: Case, principal: Principal, now: datetime, note: str | None = None
) -> CaseEvent:
    if case.status != "open":
        raise CaseConflict(f"case {case.id} is already closed")
    if case.investigation_at is None:
        raise InvalidStep("record the investigation before closing the case")
    risk = session.get(PropertyRisk, case.property_id)
    case.status = "closed"
    case.closed_at = now
    case.closed_by = principal.actor
    case.closed_level = None if risk is None else risk.level
    detail = {"risk_level": case.closed_level}
    return _event(session, case, principal, "closed", at=now, now=now, note=note, detail=detail)
