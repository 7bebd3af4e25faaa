"""Compile a filter AST to a SQLAlchemy 2 boolean expression.

The caller supplies ``resolve(path) -> ColumnElement`` so this module knows
nothing about models. Results are two-valued (never SQL NULL) and follow the
same null rules as :mod:`.evaluate`: ``null eq null`` is true, ordering
comparisons with null are false, and ``not`` of a comparison with a null
operand is true. Division or ``mod`` by zero gives null on both databases.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement, False_, Grouping, True_

from . import nodes as n
from .errors import ODataError
from .functions import FUNCTIONS, T
from .sql_functions import DIALECTS, SQLITE, Col, datetime_literal, int_op, sql_function
from .typecheck import check_filter, infer

SqlResolver = Callable[[tuple[str, ...]], ColumnElement[Any]]

_COMPARE: dict[str, Callable[[Col, Col], Col]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "gt": operator.gt,
    "ge": operator.ge,
    "lt": operator.lt,
    "le": operator.le,
}
_ARITHMETIC = {"add": "+", "sub": "-", "mul": "*", "div": "/"}
_TEMPORAL = frozenset({T.DATETIME, T.DURATION, T.DATE, T.TIME})


def _never_null(expr: n.Expr) -> bool:
    if isinstance(expr, n.NullLit):
        return False
    if isinstance(expr, n.LITERAL_TYPES):
        return True
    return isinstance(expr, n.Call) and expr.name in ("now", "mindatetime", "maxdatetime")


class SqlCompiler:
    def __init__(self, resolve: SqlResolver, dialect: str):
        if dialect not in DIALECTS:
            raise ValueError(f"unsupported SQL dialect {dialect!r}; expected one of {DIALECTS}")
        self.resolve = resolve
        self.dialect = dialect

    # -- scalar values -------------------------------------------------------
    def value(self, expr: n.Expr) -> Col:
        if isinstance(expr, n.Comparison | n.Logical | n.Not):
            result = self.boolean(expr)
            if isinstance(result, True_ | False_):  # folded constant; make it a bound value
                return sa.literal(isinstance(result, True_), sa.Boolean())
            # Parenthesise: on SQLite a negated boolean renders as "x = 0", which would
            # otherwise bind to a surrounding IS / IS NOT.
            return Grouping(result)
        if isinstance(expr, n.Path):
            return self.path(expr)
        if isinstance(expr, n.Arithmetic):
            return self.arithmetic(expr)
        if isinstance(expr, n.Call):
            return self.call(expr)
        return self.literal(expr)

    def path(self, expr: n.Path) -> Col:
        try:
            return self.resolve(expr.segments)
        except ODataError as exc:
            if exc.position is None or exc.position < 0:
                raise ODataError(exc.message, expr.pos, exc.option) from exc
            raise

    def literal(self, expr: n.Expr) -> Col:
        if isinstance(expr, n.NullLit):
            return sa.null()
        if isinstance(expr, n.StringLit):
            return sa.literal(expr.value, sa.String())
        if isinstance(expr, n.BoolLit):
            return sa.literal(expr.value, sa.Boolean())
        if isinstance(expr, n.IntLit):
            # Edm.Int64: an INTEGER bind is int4 on PostgreSQL and refuses ids past 2^31.
            return sa.literal(expr.value, sa.BigInteger())
        if isinstance(expr, n.DecimalLit):
            # A zero's exponent means nothing, but PostgreSQL refuses one like 0e-99999.
            return sa.literal(expr.value or Decimal(0), sa.Numeric())
        if isinstance(expr, n.DateTimeLit):
            return datetime_literal(expr.value, self.dialect)
        if isinstance(expr, n.DateLit):
            return sa.literal(expr.value, sa.Date())
        if isinstance(expr, n.TimeLit):
            return sa.literal(expr.value, sa.Time())
        if isinstance(expr, n.DurationLit):
            if self.dialect == SQLITE:
                raise ODataError("duration values are not supported on SQLite", expr.pos)
            return sa.literal(expr.value, sa.Interval())
        raise ODataError("geometry values are not supported in database queries", expr.pos)

    def arithmetic(self, expr: n.Arithmetic) -> Col:
        if self.dialect == SQLITE and {infer(expr.left), infer(expr.right)} & _TEMPORAL:
            return self._sqlite_shift(expr)
        left, right = self.value(expr.left), self.value(expr.right)
        divisor = expr.right
        literal_divisor = isinstance(divisor, n.IntLit | n.DecimalLit) and divisor.value != 0
        if expr.op in ("div", "mod") and not literal_divisor:
            right = sa.func.nullif(right, 0)
        if expr.op == "mod":
            return self._mod(left, right)
        return int_op(left, _ARITHMETIC[expr.op], right)

    def _sqlite_shift(self, expr: n.Arithmetic) -> Col:
        """A date-time plus or minus a duration literal, to the millisecond (SQLite keeps
        date-times as text, so other temporal arithmetic has no SQL form there)."""
        shifted = (
            expr.op in ("add", "sub")
            and infer(expr.left) in (T.DATETIME, T.ANY)
            and isinstance(expr.right, n.DurationLit)
        )
        if not shifted:
            raise ODataError(
                "on SQLite, date and time arithmetic is limited to a date-time plus or minus "
                "a duration literal",
                expr.pos,
            )
        days = cast(n.DurationLit, expr.right).value.total_seconds() / 86400
        moved = int_op(
            sa.func.julianday(self.value(expr.left)),
            "+" if expr.op == "add" else "-",
            sa.literal(days),
        )
        text = sa.func.strftime("%Y-%m-%d %H:%M:%f", moved)
        return text.op("||", precedence=5)(sa.literal("000"))

    def _mod(self, left: Col, right: Col) -> Col:
        """``mod`` on decimals too, keeping the dividend's sign (SQL and the evaluator agree).

        SQLite's ``%`` truncates both operands to integers, and PostgreSQL has no ``%`` for
        floating point: SQLite computes ``a - b * trunc(a / b)``, PostgreSQL ``mod`` on numeric.
        """
        if self.dialect == SQLITE:
            quotient = sa.cast(int_op(left, "/", right), sa.BigInteger())
            return int_op(left, "-", int_op(right, "*", quotient))
        return sa.func.mod(sa.cast(left, sa.Numeric()), sa.cast(right, sa.Numeric()))

    def call(self, expr: n.Call) -> Col:
        spec = FUNCTIONS[expr.name]
        if spec.category == "geo":
            raise ODataError(f"geospatial function {expr.name}() is not supported", expr.pos)
        args = [self.value(arg) for arg in expr.args]
        result = sql_function(expr.name, self.dialect, args, expr.pos)
        if spec.returns is T.BOOL:
            return self._guard(result, expr.args, args)
        return result

    # -- booleans (always two-valued) -----------------------------------------
    @staticmethod
    def _guard(result: Col, nodes: Sequence[n.Expr], sql: Sequence[Col]) -> Col:
        guards = [col.is_not(None) for node, col in zip(nodes, sql, strict=True)]
        guards = [g for g, node in zip(guards, nodes, strict=True) if not _never_null(node)]
        return sa.and_(result, *guards) if guards else result

    def boolean(self, expr: n.Expr) -> Col:
        if isinstance(expr, n.Comparison):
            return self.comparison(expr)
        if isinstance(expr, n.Logical):
            combine = sa.and_ if expr.op == "and" else sa.or_
            return combine(self.boolean(expr.left), self.boolean(expr.right))
        if isinstance(expr, n.Not):
            return sa.not_(self.boolean(expr.operand))
        if isinstance(expr, n.BoolLit):
            return sa.true() if expr.value else sa.false()
        if isinstance(expr, n.NullLit):
            return sa.false()
        if isinstance(expr, n.Call) and FUNCTIONS[expr.name].returns is T.BOOL:
            return self.call(expr)
        return self.value(expr).is_(sa.true())

    def comparison(self, expr: n.Comparison) -> Col:
        op, left_node, right_node = expr.op, expr.left, expr.right
        left_null = isinstance(left_node, n.NullLit)
        right_null = isinstance(right_node, n.NullLit)
        if left_null or right_null:
            if op not in n.EQUALITY_OPS:
                return sa.false()
            if left_null and right_null:
                return sa.true() if op == "eq" else sa.false()
            other = self.value(right_node if left_null else left_node)
            return other.is_(None) if op == "eq" else other.is_not(None)
        left, right = self.value(left_node), self.value(right_node)
        left_safe, right_safe = _never_null(left_node), _never_null(right_node)
        if op in n.EQUALITY_OPS and not left_safe and not right_safe:
            if op == "eq":
                return left.is_not_distinct_from(right)
            return left.is_distinct_from(right)
        result = _COMPARE[op](left, right)
        sides = ((left, left_safe, left_node), (right, right_safe, right_node))
        nullable = [col for col, safe, _ in sides if not safe]
        if any(not safe and not isinstance(node, n.Path) for _, safe, node in sides):
            # A computed operand: COALESCE is shorter than repeating it in a NULL test.
            return sa.func.coalesce(result, sa.literal(op == "ne", sa.Boolean()))
        if op == "ne":
            return sa.or_(result, *(col.is_(None) for col in nullable))
        return sa.and_(result, *(col.is_not(None) for col in nullable))


def compile_filter(
    expr: n.Expr, resolve: SqlResolver, *, dialect: str = SQLITE
) -> ColumnElement[bool]:
    """Type-check ``expr`` and compile it to a SQL boolean for ``dialect``.

    ``dialect`` is ``"sqlite"`` or ``"postgresql"`` (``engine.dialect.name``).
    Raises :class:`ODataError` for type errors and unsupported features.
    """
    check_filter(expr)
    return SqlCompiler(resolve, dialect).boolean(expr)


def compile_value(expr: n.Expr, resolve: SqlResolver, *, dialect: str = SQLITE) -> Col:
    """Compile a scalar expression, e.g. an ``$orderby`` key."""
    return SqlCompiler(resolve, dialect).value(expr)


def compile_orderby(
    items: Sequence[n.OrderBy], resolve: SqlResolver, *, dialect: str = SQLITE
) -> list[ColumnElement[Any]]:
    """SQL ``ORDER BY`` clauses for parsed ``$orderby`` keys."""
    compiler = SqlCompiler(resolve, dialect)
    clauses: list[ColumnElement[Any]] = []
    for item in items:
        infer(item.expr)
        column = compiler.value(item.expr)
        clauses.append(column.desc() if item.descending else column.asc())
    return clauses
