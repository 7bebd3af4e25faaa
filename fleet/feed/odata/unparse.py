"""Write an AST back as canonical ``$filter`` text (minimal parentheses)."""

from __future__ import annotations

from functools import singledispatch

from . import literals
from . import nodes as n

_LEVEL = {
    "or": 1,
    "and": 2,
    "eq": 4,
    "ne": 4,
    "gt": 5,
    "ge": 5,
    "lt": 5,
    "le": 5,
    "add": 6,
    "sub": 6,
    "mul": 7,
    "div": 7,
    "mod": 7,
}
_NOT_LEVEL = 3
_PRIMARY = 8


def _level(expr: n.Expr) -> int:
    if isinstance(expr, n.Comparison | n.Logical | n.Arithmetic):
        return _LEVEL[expr.op]
    if isinstance(expr, n.Not):
        return _NOT_LEVEL
    return _PRIMARY


def _wrap(expr: n.Expr, parens: bool) -> str:
    text = unparse(expr)
    return f"({text})" if parens else text


def quote(value: str) -> str:
    """Quote a string literal, doubling embedded single quotes."""
    return "'" + value.replace("'", "''") + "'"


def _decimal(expr: n.DecimalLit) -> str:
    text = str(expr.value)
    if not any(c in text for c in ".eE"):
        text += ".0"
    return text


@singledispatch
def _render(expr: object) -> str:
    raise TypeError(f"not a filter expression node: {expr!r}")


@_render.register
def _(expr: n.StringLit) -> str:
    return quote(expr.value)


@_render.register
def _(expr: n.IntLit) -> str:
    return str(expr.value)


@_render.register
def _(expr: n.DecimalLit) -> str:
    return _decimal(expr)


@_render.register
def _(expr: n.BoolLit) -> str:
    return "true" if expr.value else "false"


@_render.register
def _(expr: n.NullLit) -> str:
    return "null"


@_render.register
def _(expr: n.DateTimeLit) -> str:
    return literals.write_datetime(expr.value)


@_render.register
def _(expr: n.DateLit) -> str:
    return literals.write_date(expr.value)


@_render.register
def _(expr: n.TimeLit) -> str:
    return literals.write_time(expr.value)


@_render.register
def _(expr: n.DurationLit) -> str:
    return "duration" + quote(literals.write_duration(expr.value))


@_render.register
def _(expr: n.GeoLit) -> str:
    return expr.kind + quote(expr.wkt)


@_render.register
def _(expr: n.Path) -> str:
    return "/".join(expr.segments)


@_render.register
def _(expr: n.Call) -> str:
    return f"{expr.name}({', '.join(unparse(arg) for arg in expr.args)})"


@_render.register
def _(expr: n.Not) -> str:
    return "not " + _wrap(expr.operand, _level(expr.operand) < _NOT_LEVEL)


def _binary(expr: n.Comparison | n.Logical | n.Arithmetic) -> str:
    level = _LEVEL[expr.op]
    left = _wrap(expr.left, _level(expr.left) < level)
    right = _wrap(expr.right, _level(expr.right) <= level)
    return f"{left} {expr.op} {right}"


_render.register(n.Comparison, _binary)
_render.register(n.Logical, _binary)
_render.register(n.Arithmetic, _binary)


def unparse(expr: n.Expr) -> str:
    """Canonical text for ``expr``; ``parse_filter(unparse(e)) == e``."""
    return _render(expr)


def unparse_orderby(items: tuple[n.OrderBy, ...]) -> str:
    return ",".join(unparse(item.expr) + (" desc" if item.descending else "") for item in items)
