"""Runtime value coercions shared by the evaluator and its functions."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any


def as_datetime(value: Any) -> datetime | None:
    """A time-zone aware datetime from a datetime or ISO 8601 string; naive means UTC."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return None


def as_date(value: Any) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    parsed = as_datetime(value)
    if parsed is not None:
        return parsed.date()
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            return None
    return None


def as_time(value: Any) -> time | None:
    if isinstance(value, time):
        return value
    parsed = as_datetime(value)
    return parsed.timetz().replace(tzinfo=None) if parsed is not None else None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


def coerce_pair(left: Any, right: Any) -> tuple[Any, Any]:
    """Bring two runtime values to comparable types where that is unambiguous."""
    if _is_number(left) and _is_number(right):
        if isinstance(left, float) or isinstance(right, float):
            return float(left), float(right)
        return left, right
    if isinstance(left, datetime) or isinstance(right, datetime):
        a, b = as_datetime(left), as_datetime(right)
        if a is not None and b is not None:
            return a, b
        return left, right
    if isinstance(left, date) and isinstance(right, str):
        return left, as_date(right)
    if isinstance(right, date) and isinstance(left, str):
        return as_date(left), right
    return left, right
