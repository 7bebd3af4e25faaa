"""Static type checking of filter expressions.

Property paths have type ``any`` because their type is only known to the
caller; everything else is checked so that, for example, ``year(3)`` or
``'a' add 1`` is rejected with a position before any query runs.
"""

from __future__ import annotations

from functools import singledispatch

from . import nodes as n
from .errors import ODataError
from .functions import FUNCTIONS, NUMERIC, T

_LITERAL_TYPES: dict[type, T] = {
    n.StringLit: T.STRING,
    n.IntLit: T.INT,
    n.DecimalLit: T.DECIMAL,
    n.BoolLit: T.BOOL,
    n.NullLit: T.NULL,
    n.DateTimeLit: T.DATETIME,
    n.DateLit: T.DATE,
    n.TimeLit: T.TIME,
    n.DurationLit: T.DURATION,
    n.GeoLit: T.GEO,
}
_LOOSE = frozenset({T.ANY, T.NULL})
_TEMPORAL_ARITHMETIC: dict[tuple[str, T, T], T] = {
    ("add", T.DATETIME, T.DURATION): T.DATETIME,
    ("sub", T.DATETIME, T.DURATION): T.DATETIME,
    ("sub", T.DATETIME, T.DATETIME): T.DURATION,
    ("add", T.DURATION, T.DURATION): T.DURATION,
    ("sub", T.DURATION, T.DURATION): T.DURATION,
}


def comparable(left: T, right: T) -> bool:
    if left in _LOOSE or right in _LOOSE:
        return True
    if left in NUMERIC and right in NUMERIC:
        return True
    return left == right


@singledispatch
def infer(expr: object) -> T:
    """Return the static type of ``expr`` or raise :class:`ODataError`."""
    for node_type, result in _LITERAL_TYPES.items():
        if isinstance(expr, node_type):
            return result
    raise TypeError(f"not a filter expression node: {expr!r}")


@infer.register
def _(expr: n.Path) -> T:
    return T.ANY


@infer.register
def _(expr: n.Comparison) -> T:
    left, right = infer(expr.left), infer(expr.right)
    if not comparable(left, right):
        raise ODataError(
            f"cannot compare {left.value} with {right.value} using '{expr.op}'", expr.pos
        )
    if expr.op in n.RELATIONAL_OPS and T.GEO in (left, right):
        raise ODataError(f"'{expr.op}' cannot order geometry values", expr.pos)
    return T.BOOL


def _boolean_like(expr: n.Expr) -> T | None:
    """The type of ``expr`` when it is not usable as a boolean, else ``None``."""
    found = infer(expr)
    if isinstance(expr, n.Arithmetic) and found is T.ANY:
        return T.DECIMAL  # arithmetic never yields a boolean
    return None if found in (T.BOOL, T.ANY, T.NULL) else found


def _require_bool(operand: n.Expr, what: str, pos: int) -> None:
    found = _boolean_like(operand)
    if found is not None:
        raise ODataError(f"{what} needs a boolean operand, got {found.value}", pos)


@infer.register
def _(expr: n.Logical) -> T:
    _require_bool(expr.left, f"'{expr.op}'", expr.pos)
    _require_bool(expr.right, f"'{expr.op}'", expr.pos)
    return T.BOOL


@infer.register
def _(expr: n.Not) -> T:
    _require_bool(expr.operand, "'not'", expr.pos)
    return T.BOOL


@infer.register
def _(expr: n.Arithmetic) -> T:
    left, right = infer(expr.left), infer(expr.right)
    temporal = _TEMPORAL_ARITHMETIC.get((expr.op, left, right))
    if temporal is not None:
        return temporal
    loose = T.ANY in (left, right) or T.NULL in (left, right)
    if loose and {left, right} & {T.DATETIME, T.DURATION}:
        return T.ANY
    for side in (left, right):
        if side not in NUMERIC and side not in _LOOSE:
            raise ODataError(
                f"'{expr.op}' needs numeric operands, got {left.value} and {right.value}",
                expr.pos,
            )
    if loose:
        return T.ANY
    if left == right == T.INT:
        return T.INT
    return T.DECIMAL


@infer.register
def _(expr: n.Call) -> T:
    spec = FUNCTIONS.get(expr.name)
    if spec is None:
        raise ODataError(f"unknown function {expr.name!r}", expr.pos)
    if not spec.min_args <= len(expr.args) <= spec.max_args:
        raise ODataError(
            f"function {spec.name!r} takes {spec.arity_text()}, got {len(expr.args)}", expr.pos
        )
    found: list[T] = []
    for index, (arg, allowed) in enumerate(zip(expr.args, spec.params, strict=False)):
        arg_type = infer(arg)
        found.append(arg_type)
        if arg_type not in allowed and arg_type not in _LOOSE:
            names = " or ".join(sorted(t.value for t in allowed))
            raise ODataError(
                f"argument {index + 1} of {spec.name}() must be {names}, got {arg_type.value}",
                getattr(arg, "pos", expr.pos),
            )
    if spec.returns is None:
        return found[0] if found[0] not in _LOOSE else T.ANY
    return spec.returns


def check_filter(expr: n.Expr) -> None:
    """Raise :class:`ODataError` unless ``expr`` is a well-typed boolean filter."""
    found = _boolean_like(expr)
    if found is not None:
        raise ODataError(
            f"a filter must be a boolean expression, got {found.value}", getattr(expr, "pos", 0)
        )
