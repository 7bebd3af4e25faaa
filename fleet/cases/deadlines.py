"""Each case step's statutory deadline and whether it is pending, done, late or overdue."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from fleet.models import Case
from fleet.risk import workdays
from fleet.risk.workdays import CalendarRangeError, Deadline, HolidayCalendar


class CaseStep(StrEnum):
    """Steps a case records. ``note`` adds to the timeline without being a step."""

    AWARE = "aware"
    INVESTIGATION = "investigation"
    NO_FURTHER_WORKS = "no_further_works"
    WRITTEN_SUMMARY = "written_summary"
    SAFETY_WORK = "safety_work"
    FURTHER_WORKS_BEGUN = "further_works_begun"
    FURTHER_WORKS_STARTED = "further_works_started"
    WORKS_COMPLETED = "works_completed"
    NOTE = "note"


#: Step -> Case column holding when it happened.
STEP_COLUMNS: dict[CaseStep, str] = {
    CaseStep.AWARE: "aware_at",
    CaseStep.INVESTIGATION: "investigation_at",
    CaseStep.NO_FURTHER_WORKS: "no_further_works_at",
    CaseStep.WRITTEN_SUMMARY: "written_summary_at",
    CaseStep.SAFETY_WORK: "safety_work_at",
    CaseStep.FURTHER_WORKS_BEGUN: "further_works_begun_at",
    CaseStep.FURTHER_WORKS_STARTED: "further_works_started_at",
    CaseStep.WORKS_COMPLETED: "works_completed_at",
}

STEP_LABELS: dict[CaseStep, str] = {
    CaseStep.AWARE: "Landlord aware",
    CaseStep.INVESTIGATION: "Investigation",
    CaseStep.NO_FURTHER_WORKS: "No further works needed",
    CaseStep.WRITTEN_SUMMARY: "Written summary to tenant",
    CaseStep.SAFETY_WORK: "Safety work",
    CaseStep.FURTHER_WORKS_BEGUN: "Further works begun",
    CaseStep.FURTHER_WORKS_STARTED: "Further works physically started",
    CaseStep.WORKS_COMPLETED: "Works completed",
    CaseStep.NOTE: "Note",
}


class DeadlineState(StrEnum):
    DONE = "done"  # recorded in time
    LATE = "late"  # recorded after its deadline
    PENDING = "pending"  # not yet recorded, still in time
    OVERDUE = "overdue"  # not recorded and past its deadline
    WAITING = "waiting"  # its deadline counts from a step not yet recorded
    NOT_DONE = "not_done"  # the case was closed without it
    NOT_REQUIRED = "not_required"  # the investigation found no further works needed
    UNKNOWN = "unknown"  # outside the bank holiday calendar


@dataclass(frozen=True)
class StepDeadline:
    step: CaseStep
    label: str
    deadline: Deadline | None
    done_at: datetime | None
    state: DeadlineState
    note: str = ""

    def to_dict(self) -> dict[str, object]:
        return {
            "step": str(self.step),
            "label": self.label,
            "due_date": None if self.deadline is None else self.deadline.due_date.isoformat(),
            "due_before": None if self.deadline is None else self.deadline.due_before.isoformat(),
            "basis": None if self.deadline is None else self.deadline.basis,
            "done_at": None if self.done_at is None else self.done_at.isoformat(),
            "state": str(self.state),
            "note": self.note,
        }


def _state(
    deadline: Deadline, done_at: datetime | None, *, now: datetime, open_case: bool
) -> DeadlineState:
    if done_at is not None:
        return DeadlineState.DONE if deadline.met_by(done_at) else DeadlineState.LATE
    if not open_case:
        return DeadlineState.NOT_DONE
    return DeadlineState.OVERDUE if now >= deadline.due_before else DeadlineState.PENDING


#: The deadlines an investigation finding "no further works needed" takes away.
FURTHER_WORKS = (CaseStep.FURTHER_WORKS_BEGUN, CaseStep.FURTHER_WORKS_STARTED)


def _not_required(step: CaseStep) -> StepDeadline:
    note = "the investigation found no further works needed"
    return StepDeadline(step, STEP_LABELS[step], None, None, DeadlineState.NOT_REQUIRED, note)


def _investigation(case: Case, *, now: datetime, calendar: HolidayCalendar | None) -> StepDeadline:
    """The significant hazard's investigation, 10 working days from awareness."""
    try:
        d = workdays.investigation_deadline(case.aware_at, calendar=calendar)
    except CalendarRangeError as exc:
        return StepDeadline(
            CaseStep.INVESTIGATION, "Investigation", None, None, DeadlineState.UNKNOWN, str(exc)
        )
    inv = case.investigation_at
    state = _state(d, inv, now=now, open_case=case.status == "open")
    return StepDeadline(CaseStep.INVESTIGATION, STEP_LABELS[CaseStep.INVESTIGATION], d, inv, state)


def _emergency(
    case: Case, *, now: datetime, calendar: HolidayCalendar | None
) -> list[StepDeadline]:
    out: list[StepDeadline] = []
    start = case.emergency_at or case.aware_at
    if start > case.aware_at:
        # Raised to emergency by a later report: the significant investigation deadline was
        # already running and stays, so one missed before the report is not hidden.
        out.append(_investigation(case, now=now, calendar=calendar))
    done = None
    if case.investigation_at is not None and case.safety_work_at is not None:
        done = max(case.investigation_at, case.safety_work_at)
    d = workdays.emergency_deadline(start)
    out.append(
        StepDeadline(
            CaseStep.SAFETY_WORK,
            "Investigate and make safe (emergency)",
            d,
            done,
            _state(d, done, now=now, open_case=case.status == "open"),
        )
    )
    return out


def case_deadlines(
    case: Case, *, now: datetime, calendar: HolidayCalendar | None = None
) -> list[StepDeadline]:
    """Every deadline of the case as of ``now``, in the order the law lists them."""
    if case.hazard == "emergency":
        return _emergency(case, now=now, calendar=calendar)
    open_case = case.status == "open"
    first = _investigation(case, now=now, calendar=calendar)
    if first.state is DeadlineState.UNKNOWN:
        return [first]
    out = [first]
    inv = case.investigation_at
    later = (
        (CaseStep.WRITTEN_SUMMARY, workdays.written_summary_deadline),
        (CaseStep.SAFETY_WORK, workdays.safety_work_deadline),
        (CaseStep.FURTHER_WORKS_BEGUN, workdays.further_works_begin_deadline),
    )
    for step, fn in later:
        done = getattr(case, STEP_COLUMNS[step])
        if step in FURTHER_WORKS and case.no_further_works_at is not None:
            out.append(_not_required(step))
            continue
        if inv is None:
            out.append(StepDeadline(step, STEP_LABELS[step], None, done, DeadlineState.WAITING))
            continue
        try:
            dl = fn(inv, calendar=calendar)
        except CalendarRangeError as exc:
            out.append(
                StepDeadline(step, STEP_LABELS[step], None, done, DeadlineState.UNKNOWN, str(exc))
            )
            continue
        out.append(
            StepDeadline(
                step, STEP_LABELS[step], dl, done, _state(dl, done, now=now, open_case=open_case)
            )
        )
    step = CaseStep.FURTHER_WORKS_STARTED
    done = case.further_works_started_at
    if case.no_further_works_at is not None:
        out.append(_not_required(step))
    elif inv is None:
        out.append(StepDeadline(step, STEP_LABELS[step], None, done, DeadlineState.WAITING))
    else:
        dl = workdays.further_works_start_deadline(inv)
        out.append(
            StepDeadline(
                step,
                STEP_LABELS[step],
                dl,
                done,
                _state(dl, done, now=now, open_case=open_case),
                "if this cannot be met, offer suitable alternative accommodation",
            )
        )
    return out


def overdue(items: list[StepDeadline]) -> list[StepDeadline]:
    return [i for i in items if i.state is DeadlineState.OVERDUE]
