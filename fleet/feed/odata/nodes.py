"""AST for ``$filter`` and ``$orderby`` expressions.

Every node is a frozen dataclass. ``pos`` is the character offset of the node
in the source text; it is excluded from equality so a parsed tree compares
equal to a hand-built one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Literal as TypingLiteral

COMPARISON_OPS = ("eq", "ne", "gt", "ge", "lt", "le")
EQUALITY_OPS = ("eq", "ne")
RELATIONAL_OPS = ("gt", "ge", "lt", "le")
ADDITIVE_OPS = ("add", "sub")
MULTIPLICATIVE_OPS = ("mul", "div", "mod")
ARITHMETIC_OPS = ADDITIVE_OPS + MULTIPLICATIVE_OPS
LOGICAL_OPS = ("and", "or")

ComparisonOp = TypingLiteral["eq", "ne", "gt", "ge", "lt", "le"]
ArithmeticOp = TypingLiteral["add", "sub", "mul", "div", "mod"]
LogicalOp = TypingLiteral["and", "or"]
GeoKind = TypingLiteral["geography", "geometry"]


def _pos() -> int:
    return field(default=-1, compare=False, repr=False)


@dataclass(frozen=True)
class StringLit:
    value: str
    pos: int = _pos()


@dataclass(frozen=True)
class IntLit:
    value: int
    pos: int = _pos()


@dataclass(frozen=True)
class DecimalLit:
    """A decimal or double literal, kept exact."""

    value: Decimal
    pos: int = _pos()


@dataclass(frozen=True)
class BoolLit:
    value: bool
    pos: int = _pos()


@dataclass(frozen=True)
class NullLit:
    pos: int = _pos()


@dataclass(frozen=True)
class DateTimeLit:
    """An ISO 8601 date-time with a time zone, e.g. ``2025-01-01T00:00:00Z``."""

    value: datetime
    pos: int = _pos()


@dataclass(frozen=True)
class DateLit:
    value: date
    pos: int = _pos()


@dataclass(frozen=True)
class TimeLit:
    value: time
    pos: int = _pos()


@dataclass(frozen=True)
class DurationLit:
    """``duration'P1DT2H'``; ISO 8601 days, hours, minutes and seconds."""

    value: timedelta
    pos: int = _pos()


@dataclass(frozen=True)
class GeoLit:
    """``geography'POINT(1 2)'``; the WKT text is kept as written."""

    kind: GeoKind
    wkt: str
    pos: int = _pos()


@dataclass(frozen=True)
class Path:
    """A property path such as ``Thing/properties/borough``."""

    segments: tuple[str, ...]
    pos: int = _pos()


@dataclass(frozen=True)
class Comparison:
    op: ComparisonOp
    left: Expr
    right: Expr
    pos: int = _pos()


@dataclass(frozen=True)
class Logical:
    op: LogicalOp
    left: Expr
    right: Expr
    pos: int = _pos()


@dataclass(frozen=True)
class Not:
    operand: Expr
    pos: int = _pos()


@dataclass(frozen=True)
class Arithmetic:
    op: ArithmeticOp
    left: Expr
    right: Expr
    pos: int = _pos()


@dataclass(frozen=True)
class Call:
    name: str
    args: tuple[Expr, ...]
    pos: int = _pos()


Literal = (
    StringLit
    | IntLit
    | DecimalLit
    | BoolLit
    | NullLit
    | DateTimeLit
    | DateLit
    | TimeLit
    | DurationLit
    | GeoLit
)
Expr = Literal | Path | Comparison | Logical | Not | Arithmetic | Call

LITERAL_TYPES = (
    StringLit,
    IntLit,
    DecimalLit,
    BoolLit,
    NullLit,
    DateTimeLit,
    DateLit,
    TimeLit,
    DurationLit,
    GeoLit,
)


@dataclass(frozen=True)
class OrderBy:
    """One ``$orderby`` key."""

    expr: Expr
    descending: bool = False
