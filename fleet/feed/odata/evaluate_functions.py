"""Python implementations of the SensorThings built-in functions."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal
from typing import Any

from .errors import ODataError
from .functions import FUNCTIONS, T
from .values import as_date, as_datetime, as_time

MIN_DATETIME = datetime.min.replace(tzinfo=UTC)
MAX_DATETIME = datetime.max.replace(tzinfo=UTC)


def _substring(s: str, start: int, length: int | None = None) -> str:
    begin = max(int(start), 0)
    if length is None:
        return s[begin:]
    return s[begin : begin + max(int(length), 0)]


def _indexof(s: str, sub: str) -> int:
    return s.find(sub)


def _round_number(value: Any, mode: str) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, Decimal):
        return value.to_integral_value(rounding=mode)
    if isinstance(value, float):
        if not math.isfinite(value):
            return value
        return float(Decimal(repr(value)).to_integral_value(rounding=mode))
    return None


def _datetime_part(part: str) -> Callable[[Any], Any]:
    def get(value: Any) -> Any:
        source = as_date(value) if part in ("year", "month", "day") else as_time(value)
        return None if source is None else getattr(source, part)

    return get


def _fractional(value: Any) -> Any:
    moment = as_time(value)
    return None if moment is None else Decimal(moment.microsecond) / Decimal(1_000_000)


def _offset_minutes(value: Any) -> Any:
    moment = as_datetime(value)
    if moment is None:
        return None
    return int((moment.utcoffset() or timedelta(0)).total_seconds()) // 60


def _text(fn: Callable[..., Any], strings: int = 2) -> Callable[..., Any]:
    """Wrap ``fn`` so that non-string values in its first ``strings`` arguments give null."""

    def wrapped(*args: Any) -> Any:
        if not all(isinstance(arg, str) for arg in args[:strings]):
            return None
        return fn(*args)

    return wrapped


_IMPLEMENTATIONS: dict[str, Callable[..., Any]] = {
    "substringof": _text(lambda a, b: a in b),
    "contains": _text(lambda a, b: b in a),
    "endswith": _text(lambda a, b: a.endswith(b)),
    "startswith": _text(lambda a, b: a.startswith(b)),
    "length": _text(len),
    "indexof": _text(_indexof),
    "substring": _text(_substring, strings=1),
    "tolower": _text(str.lower),
    "toupper": _text(str.upper),
    "trim": _text(lambda s: s.strip(" ")),
    "concat": _text(lambda a, b: a + b),
    "year": _datetime_part("year"),
    "month": _datetime_part("month"),
    "day": _datetime_part("day"),
    "hour": _datetime_part("hour"),
    "minute": _datetime_part("minute"),
    "second": _datetime_part("second"),
    "fractionalseconds": _fractional,
    "date": as_date,
    "time": as_time,
    "totaloffsetminutes": _offset_minutes,
    "round": lambda v: _round_number(v, ROUND_HALF_UP),
    "floor": lambda v: _round_number(v, ROUND_FLOOR),
    "ceiling": lambda v: _round_number(v, ROUND_CEILING),
}


def call_function(name: str, args: Sequence[Any], *, now: datetime, pos: int = -1) -> Any:
    """Apply built-in ``name``; a null argument gives null (false for boolean functions)."""
    spec = FUNCTIONS.get(name)
    if spec is None:
        raise ODataError(f"unknown function {name!r}", pos)
    if spec.category == "geo":
        raise ODataError(f"geospatial function {name}() is not supported", pos)
    if name == "now":
        return now
    if name == "mindatetime":
        return MIN_DATETIME
    if name == "maxdatetime":
        return MAX_DATETIME
    if any(arg is None for arg in args):
        return False if spec.returns is T.BOOL else None  # boolean functions are never null
    try:
        return _IMPLEMENTATIONS[name](*args)
    except (TypeError, ValueError, ArithmeticError):
        return None  # data of the wrong type at run time behaves as null
