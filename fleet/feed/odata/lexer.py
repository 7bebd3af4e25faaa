"""Tokenizer for ``$filter`` and ``$orderby`` expressions."""

from __future__ import annotations

import math
import re
import sys
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from enum import Enum

from . import literals
from .errors import ODataError


class Kind(Enum):
    WORD = "name"
    STRING = "string"
    INT = "integer"
    DECIMAL = "decimal"
    DATETIME = "date-time"
    DATE = "date"
    TIME = "time"
    DURATION = "duration"
    GEO = "geo literal"
    LPAREN = "'('"
    RPAREN = "')'"
    COMMA = "','"
    SLASH = "'/'"
    EOF = "end of input"


TokenValue = str | int | Decimal | datetime | date | time | timedelta | tuple[str, str] | None


@dataclass(frozen=True)
class Token:
    kind: Kind
    text: str
    pos: int
    value: TokenValue = None

    def describe(self) -> str:
        if self.kind is Kind.EOF:
            return "end of input"
        return repr(self.text)


WORD_RE = re.compile(r"[A-Za-z_@][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
NUMBER_RE = re.compile(r"-?\d+(\.\d+)?([eE][+-]?\d+)?")
# Edm.Int64, the widest integer both databases store.
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
# Edm.Double, what readings are stored as: a decimal literal beyond it would overflow (or
# underflow) on PostgreSQL and turn into infinity on SQLite, so it is refused up front.
DOUBLE_MAX = sys.float_info.max
DOUBLE_MIN = sys.float_info.min * sys.float_info.epsilon  # the smallest subnormal
SHOWN_DIGITS = 24
WHITESPACE = " \t\r\n"
PUNCTUATION = {"(": Kind.LPAREN, ")": Kind.RPAREN, ",": Kind.COMMA, "/": Kind.SLASH}
TYPED_PREFIXES = ("duration", "geography", "geometry")


def _shown(raw: str) -> str:
    """A literal as an error message quotes it: long ones shortened, never echoed whole."""
    return raw if len(raw) <= SHOWN_DIGITS else f"{raw[:SHOWN_DIGITS]}... ({len(raw)} characters)"


def in_double_range(value: Decimal) -> bool:
    """Whether a double holds the decimal literal: finite, and not rounded to 0 unless 0."""
    near = float(value)
    return math.isfinite(near) and (near != 0 or value == 0)


def _read_quoted(text: str, start: int) -> tuple[str, int]:
    """Read a single-quoted string starting at ``start``; return (value, end)."""
    chunks: list[str] = []
    i = start + 1
    while True:
        close = text.find("'", i)
        if close == -1:
            raise ODataError("unterminated string literal; expected a closing quote", start)
        chunks.append(text[i:close])
        if text.startswith("''", close):
            chunks.append("'")
            i = close + 2
            continue
        return "".join(chunks), close + 1


class Lexer:
    def __init__(self, text: str):
        self.text = text
        self.i = 0

    def tokens(self) -> list[Token]:
        out: list[Token] = []
        while True:
            token = self.next_token()
            out.append(token)
            if token.kind is Kind.EOF:
                return out

    def next_token(self) -> Token:
        text = self.text
        while self.i < len(text) and text[self.i] in WHITESPACE:
            self.i += 1
        start = self.i
        if start >= len(text):
            return Token(Kind.EOF, "", start)
        ch = text[start]
        if ch in PUNCTUATION:
            self.i += 1
            return Token(PUNCTUATION[ch], ch, start)
        if ch == "'":
            value, self.i = _read_quoted(text, start)
            return Token(Kind.STRING, text[start : self.i], start, value)
        if ch.isdigit() or (ch == "-" and text[start + 1 : start + 2].isdigit()):
            return self._number_or_temporal(start)
        match = WORD_RE.match(text, start)
        if match:
            return self._word(match)
        if ch == "-":
            raise ODataError("expected a number after '-'", start)
        raise ODataError(f"unexpected character {ch!r}", start)

    def _word(self, match: re.Match[str]) -> Token:
        start, end = match.start(), match.end()
        word = match.group(0)
        if end < len(self.text) and self.text[end] == "'":
            if word not in TYPED_PREFIXES:
                raise ODataError(
                    f"unknown literal prefix {word!r}; expected one of "
                    + ", ".join(TYPED_PREFIXES),
                    start,
                )
            body, self.i = _read_quoted(self.text, end)
            source = self.text[start : self.i]
            if word == "duration":
                return Token(Kind.DURATION, source, start, literals.read_duration(body, end + 1))
            return Token(Kind.GEO, source, start, (word, body))
        self.i = end
        return Token(Kind.WORD, word, start, word)

    def _number_or_temporal(self, start: int) -> Token:
        text = self.text
        if text[start] != "-":
            match = literals.DATETIME_RE.match(text, start)
            if match:
                return self._finish(
                    Kind.DATETIME, match.end(), literals.read_datetime(match, start)
                )
            match = literals.DATE_RE.match(text, start)
            if match:
                return self._finish(Kind.DATE, match.end(), literals.read_date(match, start))
            match = literals.TIME_RE.match(text, start)
            if match:
                return self._finish(Kind.TIME, match.end(), literals.read_time(match, start))
        match = NUMBER_RE.match(text, start)
        if match is None:
            raise ODataError("expected a number", start)
        raw = match.group(0)
        if match.group(1) is None and match.group(2) is None:
            value = int(raw)
            if not INT64_MIN <= value <= INT64_MAX:
                raise ODataError(
                    f"integer {_shown(raw)} is out of range (64-bit); write a larger number "
                    "as a decimal, e.g. 1e20",
                    start,
                )
            return self._finish(Kind.INT, match.end(), value)
        decimal = Decimal(raw)
        if not in_double_range(decimal):
            raise ODataError(
                f"decimal {_shown(raw)} is out of range (64-bit floating point: magnitudes "
                f"from {DOUBLE_MIN:.3g} to {DOUBLE_MAX:.4g}, or 0)",
                start,
            )
        return self._finish(Kind.DECIMAL, match.end(), decimal)

    def _finish(self, kind: Kind, end: int, value: TokenValue) -> Token:
        if end < len(self.text) and (self.text[end].isalnum() or self.text[end] in "_.:'"):
            raise ODataError(f"malformed {kind.value} literal; unexpected {self.text[end]!r}", end)
        start = self.i
        self.i = end
        return Token(kind, self.text[start:end], start, value)


def tokenize(text: str) -> list[Token]:
    """Split ``text`` into tokens, ending with an EOF token."""
    return Lexer(text).tokens()
