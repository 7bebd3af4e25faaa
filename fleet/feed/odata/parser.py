"""Recursive-descent parser for ``$filter`` and ``$orderby`` expressions.

Precedence, loosest first: ``or``, ``and``, ``not``, ``eq ne``,
``gt ge lt le``, ``add sub``, ``mul div mod``, then operands (literals,
property paths, function calls and parenthesised expressions). Binary
operators associate to the left. ``not`` applies to a whole comparison, so
``not result eq 1`` means ``not (result eq 1)``.
"""

from __future__ import annotations

from typing import cast

from . import nodes as n
from .errors import ODataError
from .functions import FUNCTIONS
from .lexer import Kind, Token, tokenize

KEYWORDS = frozenset(
    n.COMPARISON_OPS + n.ARITHMETIC_OPS + n.LOGICAL_OPS + ("not", "true", "false", "null")
)
_OPERAND = "an operand (a literal, property path, function call or '(')"


class Parser:
    def __init__(self, text: str):
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0

    # -- token helpers -------------------------------------------------------
    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def advance(self) -> Token:
        token = self.tokens[self.i]
        if token.kind is not Kind.EOF:
            self.i += 1
        return token

    def at_word(self, *words: str) -> bool:
        return self.tok.kind is Kind.WORD and self.tok.text in words

    def expect(self, kind: Kind, what: str) -> Token:
        if self.tok.kind is not kind:
            raise ODataError(f"expected {what} but found {self.tok.describe()}", self.tok.pos)
        return self.advance()

    def expect_end(self, what: str = "an operator or end of input") -> None:
        if self.tok.kind is not Kind.EOF:
            raise ODataError(f"expected {what} but found {self.tok.describe()}", self.tok.pos)

    # -- grammar -------------------------------------------------------------
    def parse_expression(self) -> n.Expr:
        if self.tok.kind is Kind.EOF:
            raise ODataError(f"expected {_OPERAND} but found end of input", self.tok.pos)
        return self.parse_or()

    def parse_or(self) -> n.Expr:
        left = self.parse_and()
        while self.at_word("or"):
            op = self.advance()
            left = n.Logical("or", left, self.parse_and(), op.pos)
        return left

    def parse_and(self) -> n.Expr:
        left = self.parse_not()
        while self.at_word("and"):
            op = self.advance()
            left = n.Logical("and", left, self.parse_not(), op.pos)
        return left

    def parse_not(self) -> n.Expr:
        if self.at_word("not"):
            op = self.advance()
            return n.Not(self.parse_not(), op.pos)
        return self.parse_equality()

    def parse_equality(self) -> n.Expr:
        left = self.parse_relational()
        while self.at_word(*n.EQUALITY_OPS):
            op = self.advance()
            right = self.parse_relational()
            left = n.Comparison(cast(n.ComparisonOp, op.text), left, right, op.pos)
        return left

    def parse_relational(self) -> n.Expr:
        left = self.parse_additive()
        while self.at_word(*n.RELATIONAL_OPS):
            op = self.advance()
            right = self.parse_additive()
            left = n.Comparison(cast(n.ComparisonOp, op.text), left, right, op.pos)
        return left

    def parse_additive(self) -> n.Expr:
        left = self.parse_multiplicative()
        while self.at_word(*n.ADDITIVE_OPS):
            op = self.advance()
            right = self.parse_multiplicative()
            left = n.Arithmetic(cast(n.ArithmeticOp, op.text), left, right, op.pos)
        return left

    def parse_multiplicative(self) -> n.Expr:
        left = self.parse_primary()
        while self.at_word(*n.MULTIPLICATIVE_OPS):
            op = self.advance()
            right = self.parse_primary()
            left = n.Arithmetic(cast(n.ArithmeticOp, op.text), left, right, op.pos)
        return left

    def parse_primary(self) -> n.Expr:
        token = self.tok
        kind = token.kind
        if kind is Kind.LPAREN:
            self.advance()
            if self.tok.kind is Kind.RPAREN:
                raise ODataError(f"expected {_OPERAND} but found ')'", self.tok.pos)
            inner = self.parse_or()
            self.expect(Kind.RPAREN, "')' or an operator")
            return inner
        if kind is Kind.WORD:
            return self.parse_word()
        literal = self.parse_literal(token)
        if literal is None:
            raise ODataError(f"expected {_OPERAND} but found {token.describe()}", token.pos)
        self.advance()
        return literal

    @staticmethod
    def parse_literal(token: Token) -> n.Expr | None:
        value = token.value
        pos = token.pos
        kind = token.kind
        if kind is Kind.STRING:
            return n.StringLit(cast(str, value), pos)
        if kind is Kind.INT:
            return n.IntLit(cast(int, value), pos)
        if kind is Kind.DECIMAL:
            return n.DecimalLit(cast(n.Decimal, value), pos)
        if kind is Kind.DATETIME:
            return n.DateTimeLit(cast(n.datetime, value), pos)
        if kind is Kind.DATE:
            return n.DateLit(cast(n.date, value), pos)
        if kind is Kind.TIME:
            return n.TimeLit(cast(n.time, value), pos)
        if kind is Kind.DURATION:
            return n.DurationLit(cast(n.timedelta, value), pos)
        if kind is Kind.GEO:
            geo_kind, wkt = cast(tuple[str, str], value)
            return n.GeoLit(cast(n.GeoKind, geo_kind), wkt, pos)
        return None

    def parse_word(self) -> n.Expr:
        token = self.advance()
        word = token.text
        if word == "true":
            return n.BoolLit(True, token.pos)
        if word == "false":
            return n.BoolLit(False, token.pos)
        if word == "null":
            return n.NullLit(token.pos)
        if word in KEYWORDS:
            raise ODataError(f"expected {_OPERAND} but found {word!r}", token.pos)
        if self.tok.kind is Kind.LPAREN:
            return self.parse_call(token)
        segments = [word]
        while self.tok.kind is Kind.SLASH:
            self.advance()
            segment = self.expect(Kind.WORD, "a property name after '/'")
            segments.append(segment.text)
        if self.tok.kind is Kind.LPAREN:
            raise ODataError(
                "unexpected '(' after a property path; only built-in functions take arguments",
                self.tok.pos,
            )
        return n.Path(tuple(segments), token.pos)

    def parse_call(self, name: Token) -> n.Expr:
        spec = FUNCTIONS.get(name.text)
        if spec is None:
            raise ODataError(
                f"unknown function {name.text!r}; expected a SensorThings built-in function",
                name.pos,
            )
        self.expect(Kind.LPAREN, "'('")
        args: list[n.Expr] = []
        if self.tok.kind is not Kind.RPAREN:
            args.append(self.parse_or())
            while self.tok.kind is Kind.COMMA:
                self.advance()
                args.append(self.parse_or())
        self.expect(Kind.RPAREN, "',' or ')' in the argument list")
        if not spec.min_args <= len(args) <= spec.max_args:
            raise ODataError(
                f"function {spec.name!r} takes {spec.arity_text()}, got {len(args)}", name.pos
            )
        return n.Call(spec.name, tuple(args), name.pos)

    def parse_orderby(self) -> tuple[n.OrderBy, ...]:
        items: list[n.OrderBy] = []
        while True:
            expr = self.parse_expression()
            descending = False
            if self.at_word("asc", "desc"):
                descending = self.advance().text == "desc"
            items.append(n.OrderBy(expr, descending))
            if self.tok.kind is not Kind.COMMA:
                break
            self.advance()
        self.expect_end("',', 'asc', 'desc' or end of input")
        return tuple(items)


def parse_filter(text: str) -> n.Expr:
    """Parse a ``$filter`` expression into an AST. Raises :class:`ODataError`."""
    parser = Parser(text)
    expr = parser.parse_expression()
    parser.expect_end()
    return expr


def parse_orderby(text: str) -> tuple[n.OrderBy, ...]:
    """Parse a ``$orderby`` value: comma-separated expressions, each ``asc`` or ``desc``."""
    return Parser(text).parse_orderby()
