"""Table tests for the $filter lexer and parser."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal

import pytest

from fleet.feed.odata import ODataError, parse_filter, unparse
from fleet.feed.odata import nodes as n
from fleet.feed.odata.functions import FUNCTIONS

P = n.Path
A = P(("a",))
B = P(("b",))
C = P(("c",))


def cmp(op: str, left: n.Expr, right: n.Expr) -> n.Comparison:
    return n.Comparison(op, left, right)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("'hello'", n.StringLit("hello")),
        ("'it''s'", n.StringLit("it's")),
        ("''", n.StringLit("")),
        ("42", n.IntLit(42)),
        ("-7", n.IntLit(-7)),
        ("3.25", n.DecimalLit(Decimal("3.25"))),
        ("-1.5e3", n.DecimalLit(Decimal("-1500"))),
        ("true", n.BoolLit(True)),
        ("false", n.BoolLit(False)),
        ("null", n.NullLit()),
        ("2025-01-01T00:00:00Z", n.DateTimeLit(datetime(2025, 1, 1, tzinfo=UTC))),
        (
            "2025-06-30T12:30:15.250+02:00",
            n.DateTimeLit(
                datetime(2025, 6, 30, 12, 30, 15, 250000, tzinfo=timezone(timedelta(hours=2)))
            ),
        ),
        ("2025-01-01T10:00Z", n.DateTimeLit(datetime(2025, 1, 1, 10, tzinfo=UTC))),
        ("2025-02-28", n.DateLit(date(2025, 2, 28))),
        ("13:45:00", n.TimeLit(time(13, 45))),
        ("13:45:00.5", n.TimeLit(time(13, 45, 0, 500000))),
        ("duration'P1DT2H30M'", n.DurationLit(timedelta(days=1, hours=2, minutes=30))),
        ("duration'-PT0.5S'", n.DurationLit(-timedelta(seconds=0.5))),
        ("geography'POINT(1 2)'", n.GeoLit("geography", "POINT(1 2)")),
    ],
)
def test_literals(text: str, expected: n.Expr) -> None:
    assert parse_filter(text) == expected


@pytest.mark.parametrize(
    ("text", "segments"),
    [
        ("result", ("result",)),
        ("phenomenonTime", ("phenomenonTime",)),
        ("Datastream/id", ("Datastream", "id")),
        ("Thing/properties/borough", ("Thing", "properties", "borough")),
        ("properties/eq", ("properties", "eq")),
        ("year", ("year",)),
    ],
)
def test_paths(text: str, segments: tuple[str, ...]) -> None:
    assert parse_filter(text) == n.Path(segments)


@pytest.mark.parametrize("op", n.COMPARISON_OPS)
def test_comparison_operators(op: str) -> None:
    assert parse_filter(f"a {op} 1") == cmp(op, A, n.IntLit(1))


@pytest.mark.parametrize("op", n.ARITHMETIC_OPS)
def test_arithmetic_operators(op: str) -> None:
    arithmetic = n.Arithmetic(op, A, B)  # type: ignore[arg-type]
    assert parse_filter(f"a {op} b eq 1") == cmp("eq", arithmetic, n.IntLit(1))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a or b and c", n.Logical("or", A, n.Logical("and", B, C))),
        ("a and b or c", n.Logical("or", n.Logical("and", A, B), C)),
        ("(a or b) and c", n.Logical("and", n.Logical("or", A, B), C)),
        ("not a and b", n.Logical("and", n.Not(A), B)),
        ("not a eq 1", n.Not(cmp("eq", A, n.IntLit(1)))),
        ("not not a", n.Not(n.Not(A))),
        ("(not a) eq b", cmp("eq", n.Not(A), B)),
        ("a eq b eq c", cmp("eq", cmp("eq", A, B), C)),
        ("a lt b eq c", cmp("eq", cmp("lt", A, B), C)),
        ("a add b mul c", n.Arithmetic("add", A, n.Arithmetic("mul", B, C))),
        ("a sub b sub c", n.Arithmetic("sub", n.Arithmetic("sub", A, B), C)),
        ("a sub (b sub c)", n.Arithmetic("sub", A, n.Arithmetic("sub", B, C))),
        ("(a add b) mul c", n.Arithmetic("mul", n.Arithmetic("add", A, B), C)),
        ("a div b mod c", n.Arithmetic("mod", n.Arithmetic("div", A, B), C)),
        ("a add b gt c", cmp("gt", n.Arithmetic("add", A, B), C)),
        ("((a))", A),
    ],
)
def test_precedence(text: str, expected: n.Expr) -> None:
    assert parse_filter(text) == expected


def test_canonical_text_uses_minimal_parentheses() -> None:
    text = "not (a or b) and (c add 1) mul 2 gt 3"
    assert unparse(parse_filter(text)) == text
    assert unparse(parse_filter("((a)) and ((b eq (1)))")) == "a and b eq 1"


def _sample_call(name: str) -> str:
    spec = FUNCTIONS[name]
    args = ["x"] * spec.max_args
    return f"{name}({', '.join(args)})"


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_every_function_parses(name: str) -> None:
    text = _sample_call(name)
    expr = parse_filter(text)
    assert isinstance(expr, n.Call)
    assert expr.name == name
    assert len(expr.args) == FUNCTIONS[name].max_args
    assert unparse(expr) == text


def test_call_arguments_are_expressions() -> None:
    expr = parse_filter("substring(tolower(name), 1 add 1) eq 'x'")
    assert expr == cmp(
        "eq",
        n.Call(
            "substring",
            (
                n.Call("tolower", (P(("name",)),)),
                n.Arithmetic("add", n.IntLit(1), n.IntLit(1)),
            ),
        ),
        n.StringLit("x"),
    )


def test_positions_are_recorded() -> None:
    expr = parse_filter("result  gt 5")
    assert isinstance(expr, n.Comparison)
    assert expr.pos == 8
    assert expr.right.pos == 11


@pytest.mark.parametrize(
    ("text", "position", "fragment"),
    [
        ("", 0, "expected an operand"),
        ("result eq", 9, "expected an operand"),
        ("result eq 5 and", 15, "expected an operand"),
        ("result 5", 7, "expected an operator or end of input but found '5'"),
        ("(result eq 5", 12, "expected ')'"),
        ("result eq 5)", 11, "expected an operator or end of input but found ')'"),
        ("name eq 'abc", 8, "unterminated string"),
        ("foo(1)", 0, "unknown function 'foo'"),
        ("substring('a')", 0, "takes 2 to 3 arguments, got 1"),
        ("now(1)", 0, "takes 0 arguments, got 1"),
        ("length('a', 'b')", 0, "takes 1 argument, got 2"),
        ("result eq 2025-13-01T00:00:00Z", 10, "invalid date-time"),
        ("result eq 2025-01-01T00:00:00", 29, "time zone"),
        ("result eq 12abc", 12, "malformed integer literal"),
        ("result eq 1.", 11, "malformed integer literal"),
        ("result eq foo'x'", 10, "unknown literal prefix"),
        ("result eq duration'P'", 19, "invalid duration"),
        ("Thing/", 6, "a property name after '/'"),
        ("Thing/name(1)", 10, "unexpected '('"),
        ("a eq -", 5, "expected a number after '-'"),
        ("a eq #", 5, "unexpected character '#'"),
        ("and eq 1", 0, "expected an operand"),
        ("length(,)", 7, "expected an operand"),
        ("()", 1, "expected an operand"),
        ("startswith('a' 'b')", 15, "',' or ')'"),
    ],
)
def test_errors_say_what_and_where(text: str, position: int, fragment: str) -> None:
    with pytest.raises(ODataError) as info:
        parse_filter(text)
    assert info.value.position == position
    assert fragment in info.value.message
    assert f"position {position}" in str(info.value)
