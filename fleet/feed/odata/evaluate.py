"""Evaluate a filter AST against a plain Python dict or object.

Used for the MQTT live feed and as a reference for the SQL compiler. Null
rules follow OData: ``null eq null`` is true, ``x eq null`` is false for a
non-null ``x``, an ordering comparison with null is false, arithmetic and
functions given null give null (boolean functions give false), and null is
false in a boolean context. Comparisons and boolean functions never give null.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from . import nodes as n
from .errors import ODataError
from .evaluate_functions import call_function
from .functions import FUNCTIONS
from .typecheck import check_filter
from .values import coerce_pair

Resolver = Callable[[tuple[str, ...], Any], Any]


def resolve_path(path: tuple[str, ...], entity: Any) -> Any:
    """Walk ``path`` through nested mappings and attributes; missing parts give None."""
    current = entity
    for segment in path:
        if current is None:
            return None
        if isinstance(current, Mapping):
            current = current.get(segment)
        else:
            current = getattr(current, segment, None)
    return current


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "gt": lambda a, b: a > b,
    "ge": lambda a, b: a >= b,
    "lt": lambda a, b: a < b,
    "le": lambda a, b: a <= b,
}


def _equal(left: Any, right: Any) -> bool:
    if left is None or right is None:
        return left is None and right is None
    a, b = coerce_pair(left, right)
    try:
        return bool(a == b)
    except TypeError:
        return False


def compare(op: str, left: Any, right: Any) -> bool:
    if op == "eq":
        return _equal(left, right)
    if op == "ne":
        return not _equal(left, right)
    if left is None or right is None:
        return False
    a, b = coerce_pair(left, right)
    try:
        return bool(_COMPARE[op](a, b))
    except TypeError:
        return False


def _trunc_div(a: int, b: int) -> int:
    quotient = abs(a) // abs(b)
    return quotient if (a >= 0) == (b >= 0) else -quotient


def _has_arithmetic(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int | float | Decimal | datetime | date | timedelta)


def arithmetic(op: str, left: Any, right: Any) -> Any:
    """SQL-like arithmetic: integer division truncates, ``mod`` keeps the dividend's sign."""
    if not (_has_arithmetic(left) and _has_arithmetic(right)):
        return None  # null, or text and booleans, which have no arithmetic
    a, b = coerce_pair(left, right)
    try:
        if op == "add":
            return a + b
        if op == "sub":
            return a - b
        if op == "mul":
            return a * b
        if b == 0:
            return None
        both_int = isinstance(a, int) and isinstance(b, int)
        if op == "div":
            return _trunc_div(a, b) if both_int else a / b
        if both_int:
            return a - b * _trunc_div(a, b)
        if isinstance(a, float) or isinstance(b, float):
            return math.fmod(a, b)
        return a % b  # Decimal keeps the dividend's sign, like SQL
    except (TypeError, ArithmeticError, OverflowError):
        return None


class Evaluator:
    def __init__(self, entity: Any, resolve: Resolver, now: datetime):
        self.entity = entity
        self.resolve = resolve
        self.now = now

    def value(self, expr: n.Expr) -> Any:
        if isinstance(expr, n.Path):
            return self.resolve(expr.segments, self.entity)
        if isinstance(expr, n.Comparison):
            return compare(expr.op, self.value(expr.left), self.value(expr.right))
        if isinstance(expr, n.Logical):
            if expr.op == "and":
                return self.truth(expr.left) and self.truth(expr.right)
            return self.truth(expr.left) or self.truth(expr.right)
        if isinstance(expr, n.Not):
            return not self.truth(expr.operand)
        if isinstance(expr, n.Arithmetic):
            return arithmetic(expr.op, self.value(expr.left), self.value(expr.right))
        if isinstance(expr, n.Call):
            if expr.name in FUNCTIONS and FUNCTIONS[expr.name].category == "geo":
                raise ODataError(f"geospatial function {expr.name}() is not supported", expr.pos)
            args = [self.value(arg) for arg in expr.args]
            return call_function(expr.name, args, now=self.now, pos=expr.pos)
        if isinstance(expr, n.NullLit):
            return None
        if isinstance(expr, n.GeoLit):
            raise ODataError("geometry literals cannot be evaluated", expr.pos)
        return expr.value

    def truth(self, expr: n.Expr) -> bool:
        return self.value(expr) is True


def evaluate(
    expr: n.Expr,
    entity: Any,
    *,
    resolve: Resolver = resolve_path,
    now: datetime | None = None,
) -> Any:
    """Return the value of ``expr`` for ``entity`` (not type-checked)."""
    return Evaluator(entity, resolve, now or datetime.now(UTC)).value(expr)


def matches(
    expr: n.Expr,
    entity: Any,
    *,
    resolve: Resolver = resolve_path,
    now: datetime | None = None,
) -> bool:
    """True when the filter holds for ``entity``; null counts as false."""
    return evaluate(expr, entity, resolve=resolve, now=now) is True


def make_predicate(expr: n.Expr, *, resolve: Resolver = resolve_path) -> Callable[[Any], bool]:
    """Type-check ``expr`` once and return a fast ``entity -> bool`` predicate."""
    check_filter(expr)
    return lambda entity: matches(expr, entity, resolve=resolve)


__all__ = [
    "Resolver",
    "arithmetic",
    "compare",
    "evaluate",
    "make_predicate",
    "matches",
    "resolve_path",
]
