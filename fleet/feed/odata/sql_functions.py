"""SQL forms of the SensorThings built-in functions for SQLite and PostgreSQL.

SQLite has no ``extract``, ``strpos`` or (in older builds) ``floor``; it
stores SQLAlchemy ``DateTime`` values as ``YYYY-MM-DD HH:MM:SS.ffffff`` text
in UTC, which ``strftime`` reads. Each function therefore has a SQLite form
and a PostgreSQL form.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import BindParameter, ColumnElement

from .errors import ODataError

SQLITE = "sqlite"
POSTGRESQL = "postgresql"
DIALECTS = (SQLITE, POSTGRESQL)

Col = ColumnElement[Any]
SqlFunction = Callable[[str, Sequence[Col]], Col]

_STRFTIME = {
    "year": "%Y",
    "month": "%m",
    "day": "%d",
    "hour": "%H",
    "minute": "%M",
    "second": "%S",
}
MIN_DATETIME = datetime.min.replace(tzinfo=UTC)
MAX_DATETIME = datetime.max.replace(tzinfo=UTC)


def int_op(left: Col, symbol: str, right: Col | int) -> Col:
    precedence = 7 if symbol in "+-" else 8
    return left.op(symbol, precedence=precedence)(right)


def datetime_literal(value: datetime, dialect: str) -> Col:
    """A bound date-time in UTC; naive on SQLite, which stores naive UTC text."""
    utc = value.astimezone(UTC)
    if dialect == SQLITE:
        return sa.literal(utc.replace(tzinfo=None), sa.DateTime())
    return sa.literal(utc, sa.DateTime(timezone=True))


def _find(dialect: str, haystack: Col, needle: Col) -> Col:
    """1-based position of ``needle`` in ``haystack``, 0 when absent."""
    name = "instr" if dialect == SQLITE else "strpos"
    return getattr(sa.func, name)(haystack, needle, type_=sa.Integer())


def _constant(col: Col) -> int | None:
    value = getattr(col, "value", None) if isinstance(col, BindParameter) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


# PostgreSQL's substr takes int4 positions. No string is that long, so clamping a 64-bit
# start or length to int4 gives the same substring.
INT4_MIN, INT4_MAX = -(2**31), 2**31 - 1


def _position(dialect: str, value: Col | int) -> Col | int:
    """A substr argument the database accepts: int4 on PostgreSQL."""
    if isinstance(value, int):
        return min(max(value, INT4_MIN), INT4_MAX)
    if dialect == SQLITE:
        return value
    clamped = sa.func.least(sa.func.greatest(value, INT4_MIN), INT4_MAX)
    return sa.cast(clamped, sa.Integer())


def _substring(dialect: str, args: Sequence[Col]) -> Col:
    """Zero-based ``substring``; a negative start counts as 0, a negative length as 0."""
    text, start = args[0], args[1]
    fixed_start = _constant(start)
    begin: Col | int = (
        max(fixed_start, 0) + 1
        if fixed_start is not None
        else sa.case((start < 0, 1), else_=int_op(start, "+", 1))
    )
    if len(args) == 2:
        return sa.func.substr(text, _position(dialect, begin), type_=sa.String())
    fixed_length = _constant(args[2])
    length: Col | int = (
        max(fixed_length, 0)
        if fixed_length is not None
        else sa.case((args[2] < 0, 0), else_=args[2])
    )
    return sa.func.substr(
        text, _position(dialect, begin), _position(dialect, length), type_=sa.String()
    )


def _endswith(dialect: str, args: Sequence[Col]) -> Col:
    text, suffix = args
    text_len = sa.func.length(text, type_=sa.Integer())
    suffix_len = sa.func.length(suffix, type_=sa.Integer())
    start = int_op(int_op(text_len, "-", suffix_len), "+", 1)
    return sa.and_(text_len >= suffix_len, sa.func.substr(text, start, type_=sa.String()) == suffix)


def _startswith(dialect: str, args: Sequence[Col]) -> Col:
    text, prefix = args
    head = sa.func.substr(text, 1, sa.func.length(prefix), type_=sa.String())
    return head == prefix


def _datetime_part(part: str) -> SqlFunction:
    def build(dialect: str, args: Sequence[Col]) -> Col:
        if dialect == SQLITE:
            return sa.cast(sa.func.strftime(_STRFTIME[part], args[0]), sa.Integer())
        return sa.cast(sa.func.floor(sa.extract(part, args[0])), sa.Integer())

    return build


def _fractional(dialect: str, args: Sequence[Col]) -> Col:
    if dialect == SQLITE:
        with_millis = sa.cast(sa.func.strftime("%f", args[0]), sa.Float())
        whole = sa.cast(sa.func.strftime("%S", args[0]), sa.Integer())
        return int_op(with_millis, "-", whole)
    seconds = sa.extract("second", args[0])
    return int_op(seconds, "-", sa.func.floor(seconds))


def _date(dialect: str, args: Sequence[Col]) -> Col:
    if dialect == SQLITE:
        return sa.func.date(args[0], type_=sa.Date())
    return sa.cast(args[0], sa.Date())


def _time(dialect: str, args: Sequence[Col]) -> Col:
    if dialect == SQLITE:
        # Match SQLAlchemy's SQLite TIME text, HH:MM:SS.ffffff (millisecond precision).
        text = sa.func.strftime("%H:%M:%f", args[0])
        return text.op("||", precedence=5)(sa.literal("000"))
    return sa.cast(args[0], sa.Time())


def _offset(dialect: str, args: Sequence[Col]) -> Col:
    if dialect == SQLITE:
        return sa.case((args[0].is_(None), sa.null()), else_=0)
    return sa.cast(int_op(sa.extract("timezone", args[0]), "/", 60), sa.Integer())


def _now(dialect: str, args: Sequence[Col]) -> Col:
    if dialect == SQLITE:
        text = sa.func.strftime("%Y-%m-%d %H:%M:%f", "now")
        return text.op("||", precedence=5)(sa.literal("000"))
    return sa.func.now()


def _floor(dialect: str, args: Sequence[Col]) -> Col:
    if dialect == SQLITE:
        whole = sa.cast(args[0], sa.Integer())
        return sa.case((args[0] < whole, int_op(whole, "-", 1)), else_=whole)
    return sa.func.floor(args[0])


def _ceiling(dialect: str, args: Sequence[Col]) -> Col:
    if dialect == SQLITE:
        whole = sa.cast(args[0], sa.Integer())
        return sa.case((args[0] > whole, int_op(whole, "+", 1)), else_=whole)
    return sa.func.ceil(args[0])


SQL_FUNCTIONS: dict[str, SqlFunction] = {
    "substringof": lambda d, a: _find(d, a[1], a[0]) > 0,
    "contains": lambda d, a: _find(d, a[0], a[1]) > 0,
    "endswith": _endswith,
    "startswith": _startswith,
    "length": lambda d, a: sa.func.length(a[0], type_=sa.Integer()),
    "indexof": lambda d, a: int_op(_find(d, a[0], a[1]), "-", 1),
    "substring": _substring,
    "tolower": lambda d, a: sa.func.lower(a[0], type_=sa.String()),
    "toupper": lambda d, a: sa.func.upper(a[0], type_=sa.String()),
    "trim": lambda d, a: sa.func.trim(a[0], type_=sa.String()),
    "concat": lambda d, a: a[0].op("||", precedence=5, return_type=sa.String())(a[1]),
    **{part: _datetime_part(part) for part in _STRFTIME},
    "fractionalseconds": _fractional,
    "date": _date,
    "time": _time,
    "totaloffsetminutes": _offset,
    "now": _now,
    "mindatetime": lambda d, a: datetime_literal(MIN_DATETIME, d),
    "maxdatetime": lambda d, a: datetime_literal(MAX_DATETIME, d),
    "round": lambda d, a: sa.func.round(a[0]),
    "floor": _floor,
    "ceiling": _ceiling,
}


def sql_function(name: str, dialect: str, args: Sequence[Col], pos: int) -> Col:
    build = SQL_FUNCTIONS.get(name)
    if build is None:
        raise ODataError(f"function {name}() is not supported in database queries", pos)
    return build(dialect, args)
