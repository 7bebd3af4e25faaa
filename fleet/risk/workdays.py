"""Working days in England and Wales, and Awaab's Law deadlines.

Awaab's Law (Hazards in Social Housing (Prescribed Requirements) (England) Regulations 2025)
counts most periods in working days: not Saturday, Sunday or a bank holiday in England and
Wales. Bank holidays are data, not code: the packaged calendar
(``data/bank_holidays_england_wales.json``, 2024-2028) can be replaced by any file of the same
shape, including GOV.UK's ``bank-holidays.json``, via :func:`load_calendar`. Asking about a
date outside the loaded years raises :class:`CalendarRangeError` rather than silently treating
an unknown holiday as a working day.

How days are counted (the convention every function here follows):

- Dates are calendar dates in UK local time (Europe/London). An aware datetime is converted
  first, so an event at 23:30 UTC on 31 March 2025 (00:30 BST on 1 April) happened on 1 April.
  A naive datetime is taken to be UK local time already.
- The day of the event (awareness, end of investigation) is day 0 and never counts, even if
  it is a working day and even if the event happened at 00:01. The period starts the day after.
- "Within N working days" means by the end (midnight, UK time) of the N-th working day
  after the event's date. ``Deadline.due_before`` is that midnight, exclusive.
- Hour-based periods (emergency: 24 hours) run from the exact instant.
- Weeks are calendar weeks: 12 weeks after an event's date is 84 days later, due by the end
  of that day.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

UK = ZoneInfo("Europe/London")
DATA_FILE = "bank_holidays_england_wales.json"
DIVISION = "england-and-wales"


class CalendarRangeError(ValueError):
    """A date falls outside the years the bank holiday calendar covers."""


@dataclass(frozen=True)
class HolidayCalendar:
    """Bank holidays for the inclusive year range ``first_year``..``last_year``."""

    holidays: frozenset[date]
    first_year: int
    last_year: int

    def _check(self, d: date) -> None:
        if not self.first_year <= d.year <= self.last_year:
            raise CalendarRangeError(
                f"{d.isoformat()} is outside the bank holiday calendar "
                f"({self.first_year}-{self.last_year}); load an updated calendar file with "
                "fleet.risk.workdays.load_calendar(path) and pass it as calendar="
            )

    def is_working_day(self, d: date) -> bool:
        self._check(d)
        return d.weekday() < 5 and d not in self.holidays

    def add(self, d: date, n: int) -> date:
        """The n-th working day after ``d`` (``d`` itself never counts); n=0 returns ``d``."""
        if n < 0:
            raise ValueError(f"n must be zero or positive, got {n}")
        while n:
            d += timedelta(days=1)
            if self.is_working_day(d):
                n -= 1
        return d

    def between(self, start: date, end: date) -> int:
        """Working days d with start < d <= end; negative when ``end`` is before ``start``."""
        if end < start:
            return -self.between(end, start)
        count = 0
        d = start
        while d < end:
            d += timedelta(days=1)
            if self.is_working_day(d):
                count += 1
        return count


def _parse(data: Any, source: str) -> HolidayCalendar:
    if isinstance(data, dict) and DIVISION in data and "events" not in data:
        data = data[DIVISION]  # GOV.UK's file holds several divisions
    if not isinstance(data, dict) or not isinstance(data.get("events"), list):
        raise ValueError(f"{source}: expected an object with an 'events' list of dated holidays")
    try:
        days = frozenset(date.fromisoformat(e["date"]) for e in data["events"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{source}: every event needs a 'date' as YYYY-MM-DD") from exc
    if not days:
        raise ValueError(f"{source}: the calendar has no holidays")
    first = int(data.get("first_year", min(days).year))
    last = int(data.get("last_year", max(days).year))
    return HolidayCalendar(holidays=days, first_year=first, last_year=last)


def load_calendar(path: str | Path | None = None) -> HolidayCalendar:
    """Load a calendar file; ``None`` loads the packaged England and Wales calendar.

    Accepts this project's file, GOV.UK's ``bank-holidays.json`` or its
    ``england-and-wales`` object. Without explicit ``first_year``/``last_year`` the covered
    range is the years of the first and last holiday.
    """
    if path is None:
        text = resources.files("fleet.risk").joinpath("data", DATA_FILE).read_text("utf-8")
        source = DATA_FILE
    else:
        source = str(path)
        try:
            text = Path(path).read_text("utf-8")
        except OSError as exc:
            raise ValueError(f"cannot read bank holiday calendar {source}: {exc}") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{source} is not valid JSON: {exc}") from exc
    return _parse(data, source)


@lru_cache(maxsize=1)
def default_calendar() -> HolidayCalendar:
    """The packaged calendar (immutable, loaded once)."""
    return load_calendar()


def uk_date(ts: datetime) -> date:
    """Calendar date of ``ts`` in UK local time (naive datetimes are taken as UK time)."""
    if ts.tzinfo is None or ts.utcoffset() is None:
        return ts.date()
    return ts.astimezone(UK).date()


def add_working_days(
    start: datetime, n: int, *, calendar: HolidayCalendar | None = None
) -> datetime:
    """The same UK wall-clock time on the n-th working day after ``start``'s UK date.

    The result is in Europe/London time for an aware ``start``, naive for a naive one.
    """
    cal = calendar or default_calendar()
    aware = start.tzinfo is not None and start.utcoffset() is not None
    local = start.astimezone(UK) if aware else start
    target = cal.add(local.date(), n)
    return datetime.combine(target, local.time(), tzinfo=UK if aware else None)


def working_days_between(
    start: datetime, end: datetime, *, calendar: HolidayCalendar | None = None
) -> int:
    """Working days after ``start``'s UK date up to and including ``end``'s.

    ``working_days_between(s, add_working_days(s, n)) == n``.
    """
    cal = calendar or default_calendar()
    return cal.between(uk_date(start), uk_date(end))


class Step(StrEnum):
    """Awaab's Law steps with a deadline."""

    EMERGENCY = "emergency_investigate_and_make_safe"
    INVESTIGATE = "investigate_significant_hazard"
    WRITTEN_SUMMARY = "written_summary"
    SAFETY_WORK = "safety_work"
    FURTHER_WORKS_BEGIN = "further_works_begin"
    FURTHER_WORKS_START = "further_works_physical_start"


@dataclass(frozen=True)
class Deadline:
    """When a step is due. ``due_date`` is the last UK day on which it is in time;
    ``due_before`` the exclusive instant (UK midnight after it, or +24 h for emergencies)."""

    step: Step
    counted_from: datetime
    due_date: date
    due_before: datetime
    basis: str

    def met_by(self, done_at: datetime) -> bool:
        return _aware(done_at, "done_at") < self.due_before

    @property
    def by_the_hour(self) -> bool:
        """Due at an instant (an emergency's 24 hours), not by the end of a UK day: a person
        must be shown the time, not only the day."""
        return self.due_before != _end_of(self.due_date)

    def to_dict(self) -> dict[str, str]:
        return {
            "step": str(self.step),
            "counted_from": self.counted_from.isoformat(),
            "due_date": self.due_date.isoformat(),
            "due_before": self.due_before.isoformat(),
            "basis": self.basis,
        }


def _aware(ts: datetime, name: str) -> datetime:
    if ts.tzinfo is None or ts.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime (evidence needs the instant)")
    return ts


def _end_of(d: date) -> datetime:
    return datetime.combine(d + timedelta(days=1), time(0), tzinfo=UK)


def _working_day_deadline(
    step: Step, event: datetime, n: int, calendar: HolidayCalendar | None
) -> Deadline:
    cal = calendar or default_calendar()
    due = cal.add(uk_date(_aware(event, "event time")), n)
    return Deadline(step, event, due, _end_of(due), f"{n} working days")


def emergency_deadline(aware_at: datetime) -> Deadline:
    """Emergency hazard: investigate and make safe within 24 hours of awareness."""
    due_before = _aware(aware_at, "aware_at") + timedelta(hours=24)
    return Deadline(Step.EMERGENCY, aware_at, uk_date(due_before), due_before, "24 hours")


def investigation_deadline(
    aware_at: datetime, *, calendar: HolidayCalendar | None = None
) -> Deadline:
    """Significant hazard: investigate within 10 working days of awareness."""
    return _working_day_deadline(Step.INVESTIGATE, aware_at, 10, calendar)


def written_summary_deadline(
    investigation_end: datetime, *, calendar: HolidayCalendar | None = None
) -> Deadline:
    """Written summary to the tenant within 3 working days of the investigation ending."""
    return _working_day_deadline(Step.WRITTEN_SUMMARY, investigation_end, 3, calendar)


def safety_work_deadline(
    investigation_end: datetime, *, calendar: HolidayCalendar | None = None
) -> Deadline:
    """Safety work within 5 working days (counted from the investigation ending)."""
    return _working_day_deadline(Step.SAFETY_WORK, investigation_end, 5, calendar)


def further_works_begin_deadline(
    investigation_end: datetime, *, calendar: HolidayCalendar | None = None
) -> Deadline:
    """Further works: begin within 5 working days (counted from the investigation ending)."""
    return _working_day_deadline(Step.FURTHER_WORKS_BEGIN, investigation_end, 5, calendar)


def further_works_start_deadline(investigation_end: datetime) -> Deadline:
    """Further works: physically start within 12 weeks (84 days after the end date).

    If this cannot be met the landlord must offer suitable alternative accommodation.
    """
    due = uk_date(_aware(investigation_end, "investigation_end")) + timedelta(weeks=12)
    return Deadline(Step.FURTHER_WORKS_START, investigation_end, due, _end_of(due), "12 weeks")


def significant_hazard_deadlines(
    aware_at: datetime,
    investigation_end: datetime | None = None,
    *,
    calendar: HolidayCalendar | None = None,
) -> list[Deadline]:
    """Every deadline known so far for a significant damp and mould hazard.

    Before the investigation has ended only the investigation deadline exists.
    """
    out = [investigation_deadline(aware_at, calendar=calendar)]
    if investigation_end is not None:
        if _aware(investigation_end, "investigation_end") < aware_at:
            raise ValueError("investigation_end is before aware_at; check the recorded dates")
        out += [
            written_summary_deadline(investigation_end, calendar=calendar),
            safety_work_deadline(investigation_end, calendar=calendar),
            further_works_begin_deadline(investigation_end, calendar=calendar),
            further_works_start_deadline(investigation_end),
        ]
    return out
