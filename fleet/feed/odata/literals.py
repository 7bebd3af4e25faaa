"""Reading and writing the text form of date, time and duration literals."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta, timezone

from .errors import ODataError

DATETIME_RE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,12}))?)?"
    r"(Z|[+-]\d{2}:\d{2})?"
)
DATE_RE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
TIME_RE = re.compile(r"(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,12}))?)?")
DURATION_RE = re.compile(
    r"(-)?P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)(?:\.(\d{1,12}))?S)?)?"
)


def _micro(fraction: str | None) -> int:
    return int((fraction or "").ljust(6, "0")[:6])


def read_datetime(match: re.Match[str], pos: int) -> datetime:
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    if zone is None:
        raise ODataError(
            "expected a time zone ('Z' or '+hh:mm') at the end of the date-time",
            pos + match.end() - match.start(),
        )
    if zone == "Z":
        tz = UTC
    else:
        sign = -1 if zone[0] == "-" else 1
        hours, minutes = int(zone[1:3]), int(zone[4:6])
        if hours > 23 or minutes > 59:
            raise ODataError(f"invalid time zone offset {zone!r}", pos)
        tz = timezone(sign * timedelta(hours=hours, minutes=minutes))
    try:
        return datetime(
            int(year),
            int(month),
            int(day),
            int(hour),
            int(minute),
            int(second or 0),
            _micro(fraction),
            tzinfo=tz,
        )
    except ValueError as exc:
        raise ODataError(f"invalid date-time {match.group(0)!r}: {exc}", pos) from exc


def read_date(match: re.Match[str], pos: int) -> date:
    year, month, day = match.groups()
    try:
        return date(int(year), int(month), int(day))
    except ValueError as exc:
        raise ODataError(f"invalid date {match.group(0)!r}: {exc}", pos) from exc


def read_time(match: re.Match[str], pos: int) -> time:
    hour, minute, second, fraction = match.groups()
    try:
        return time(int(hour), int(minute), int(second or 0), _micro(fraction))
    except ValueError as exc:
        raise ODataError(f"invalid time of day {match.group(0)!r}: {exc}", pos) from exc


def read_duration(text: str, pos: int) -> timedelta:
    match = DURATION_RE.fullmatch(text)
    if match is None or not any(match.groups()[1:]) or text.endswith("T"):
        raise ODataError(f"invalid duration {text!r}; expected ISO 8601 such as 'P1DT2H30M'", pos)
    negative, days, hours, minutes, seconds, fraction = match.groups()
    value = timedelta(
        days=int(days or 0),
        hours=int(hours or 0),
        minutes=int(minutes or 0),
        seconds=int(seconds or 0),
        microseconds=_micro(fraction),
    )
    return -value if negative else value


def _fraction(microsecond: int) -> str:
    return f".{microsecond:06d}".rstrip("0") if microsecond else ""


def write_datetime(value: datetime) -> str:
    offset = value.utcoffset() or timedelta(0)
    text = (
        f"{write_date(value)}T{value.hour:02d}:{value.minute:02d}:{value.second:02d}"
        + _fraction(value.microsecond)
    )
    if offset == timedelta(0):
        return text + "Z"
    sign = "-" if offset < timedelta(0) else "+"
    minutes = abs(int(offset.total_seconds())) // 60
    return f"{text}{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def write_date(value: date) -> str:
    return f"{value.year:04d}-{value.month:02d}-{value.day:02d}"


def write_time(value: time) -> str:
    return f"{value.hour:02d}:{value.minute:02d}:{value.second:02d}" + _fraction(value.microsecond)


def write_duration(value: timedelta) -> str:
    negative = value < timedelta(0)
    total = abs(value)
    micros = total.microseconds
    seconds = total.seconds
    text = "-P" if negative else "P"
    if total.days:
        text += f"{total.days}D"
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    clock = ""
    if hours:
        clock += f"{hours}H"
    if minutes:
        clock += f"{minutes}M"
    if secs or micros or (not total.days and not clock):
        clock += f"{secs}{_fraction(micros)}S"
    if clock:
        text += "T" + clock
    return text
