import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fleet.risk import workdays
from fleet.risk.workdays import UK, CalendarRangeError, Step

CAL = workdays.load_calendar()


def uk(y: int, m: int, d: int, hh: int = 10, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=UK)


# --- the data file ---------------------------------------------------------------------------


def _easter(year: int) -> date:
    """Anonymous Gregorian computus."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = b // 4, b % 4
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = c // 4, c % 4
    el = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * el) // 451
    month = (h + el - 7 * m + 114) // 31
    day = (h + el - 7 * m + 114) % 31 + 1
    return date(year, month, day)


def _first_monday(year: int, month: int) -> date:
    d = date(year, month, 1)
    return d + timedelta(days=(7 - d.weekday()) % 7)


def _last_monday(year: int, month: int) -> date:
    d = date(year, month + 1, 1) - timedelta(days=1)
    return d - timedelta(days=d.weekday())


def _expected(year: int) -> set[date]:
    """England and Wales rules: fixed days move to the next free weekday."""
    out = {
        _easter(year) - timedelta(days=2),
        _easter(year) + timedelta(days=1),
        _first_monday(year, 5),
        _last_monday(year, 5),
        _last_monday(year, 8),
    }
    for fixed in (date(year, 1, 1), date(year, 12, 25), date(year, 12, 26)):
        d = fixed
        while d.weekday() >= 5 or d in out:
            d += timedelta(days=1)
        out.add(d)
    return out


@pytest.mark.parametrize("year", range(2024, 2029))
def test_packaged_calendar_matches_the_rules(year: int) -> None:
    listed = {d for d in CAL.holidays if d.year == year}
    assert listed == _expected(year)


def test_known_dates() -> None:
    for d in ["2024-03-29", "2025-04-21", "2026-12-28", "2027-12-27", "2027-12-28", "2028-01-03"]:
        assert date.fromisoformat(d) in CAL.holidays
    assert (CAL.first_year, CAL.last_year) == (2024, 2028)
    assert len(CAL.holidays) == 40


def test_loads_gov_uk_shape(tmp_path: Path) -> None:
    path = tmp_path / "bank-holidays.json"
    events = [{"title": "x", "date": "2030-01-01"}, {"title": "y", "date": "2030-12-25"}]
    path.write_text(json.dumps({"england-and-wales": {"division": "e", "events": events}}))
    cal = workdays.load_calendar(path)
    assert cal.first_year == cal.last_year == 2030
    assert not cal.is_working_day(date(2030, 1, 1))


def test_bad_calendar_file(tmp_path: Path) -> None:
    path = tmp_path / "cal.json"
    path.write_text('{"events": [{"when": "2030-01-01"}]}')
    with pytest.raises(ValueError, match="date"):
        workdays.load_calendar(path)


# --- working days ----------------------------------------------------------------------------


def test_day_of_awareness_does_not_count() -> None:
    monday = uk(2025, 6, 2)
    assert workdays.add_working_days(monday, 1) == uk(2025, 6, 3)
    assert workdays.add_working_days(monday, 0) == monday


def test_across_a_weekend() -> None:
    friday = uk(2025, 1, 10, 16, 30)
    assert workdays.add_working_days(friday, 3) == uk(2025, 1, 15, 16, 30)
    assert workdays.working_days_between(friday, uk(2025, 1, 13)) == 1
    saturday = uk(2025, 1, 11)
    assert workdays.add_working_days(saturday, 1) == uk(2025, 1, 13)


def test_thursday_before_easter() -> None:
    # Good Friday 18 Apr and Easter Monday 21 Apr 2025; Early May bank holiday 5 May.
    thursday = uk(2025, 4, 17, 15)
    assert workdays.add_working_days(thursday, 1) == uk(2025, 4, 22, 15)
    d = workdays.investigation_deadline(thursday)
    assert d.step is Step.INVESTIGATE
    assert d.due_date == date(2025, 5, 6)
    assert d.due_before == uk(2025, 5, 7, 0)
    assert d.met_by(uk(2025, 5, 6, 23, 59))
    assert not d.met_by(uk(2025, 5, 7, 0, 0))


def test_christmas_2027_substitute_days() -> None:
    aware = uk(2027, 12, 23)
    # 24 Dec, 29, 30, 31 Dec, then 3 Jan 2028 is a substitute day: 4 Jan.
    assert workdays.add_working_days(aware, 5).date() == date(2028, 1, 4)
    assert workdays.working_days_between(aware, uk(2028, 1, 4)) == 5


def test_uk_date_of_an_aware_time() -> None:
    # 23:30 UTC on 31 March 2025 is 00:30 BST on 1 April.
    late = datetime(2025, 3, 31, 23, 30, tzinfo=UTC)
    assert workdays.uk_date(late) == date(2025, 4, 1)
    assert workdays.written_summary_deadline(late).due_date == date(2025, 4, 4)


def test_naive_is_uk_local_time() -> None:
    assert workdays.add_working_days(datetime(2025, 1, 10, 9), 1) == datetime(2025, 1, 13, 9)


def test_outside_calendar_raises() -> None:
    with pytest.raises(CalendarRangeError, match="load_calendar"):
        workdays.add_working_days(uk(2028, 12, 20), 10)
    with pytest.raises(CalendarRangeError):
        workdays.working_days_between(uk(2023, 12, 1), uk(2024, 1, 5))


def test_negative_n_rejected() -> None:
    with pytest.raises(ValueError):
        workdays.add_working_days(uk(2025, 1, 10), -1)


@given(
    start=st.dates(min_value=date(2024, 1, 1), max_value=date(2028, 9, 30)),
    n=st.integers(min_value=0, max_value=60),
)
def test_between_inverts_add(start: date, n: int) -> None:
    s = datetime(start.year, start.month, start.day, 12, tzinfo=UK)
    end = workdays.add_working_days(s, n)
    assert workdays.working_days_between(s, end) == n
    assert workdays.working_days_between(end, s) == -n
    if n:
        assert CAL.is_working_day(end.date())


# --- Awaab's Law deadlines -------------------------------------------------------------------


def test_emergency_is_24_clock_hours() -> None:
    aware = datetime(2025, 12, 24, 18, 5, tzinfo=UTC)
    d = workdays.emergency_deadline(aware)
    assert d.due_before == aware + timedelta(hours=24)
    assert d.step is Step.EMERGENCY


def test_significant_hazard_timeline() -> None:
    aware = uk(2025, 11, 3, 9)  # Monday
    end = uk(2025, 11, 12, 14)  # Wednesday
    by_step = {d.step: d for d in workdays.significant_hazard_deadlines(aware, end)}
    assert by_step[Step.INVESTIGATE].due_date == date(2025, 11, 17)
    assert by_step[Step.WRITTEN_SUMMARY].due_date == date(2025, 11, 17)
    assert by_step[Step.SAFETY_WORK].due_date == date(2025, 11, 19)
    assert by_step[Step.FURTHER_WORKS_BEGIN].due_date == date(2025, 11, 19)
    assert by_step[Step.FURTHER_WORKS_START].due_date == date(2026, 2, 4)
    assert [d.step for d in workdays.significant_hazard_deadlines(aware)] == [Step.INVESTIGATE]
    assert json.dumps([d.to_dict() for d in by_step.values()])


def test_deadlines_need_an_instant() -> None:
    with pytest.raises(ValueError, match="timezone"):
        workdays.investigation_deadline(datetime(2025, 1, 6, 9))
    with pytest.raises(ValueError, match="before"):
        workdays.significant_hazard_deadlines(uk(2025, 1, 6), uk(2025, 1, 3))
