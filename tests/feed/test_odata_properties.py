"""Property tests: unparse/parse round trip, and only ODataError escapes."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime

import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from fleet.feed.odata import (
    ODataError,
    compile_filter,
    evaluate,
    parse_filter,
    parse_orderby,
    parse_query_string,
    unparse,
)
from fleet.feed.odata import nodes as n
from tests.feed.odata_strategies import expressions

TOKENS = [
    " ", "(", ")", ",", "/", "'", "''", "-", "1", "2.5", "1e3", "eq", "ne", "gt", "and",
    "or", "not", "add", "mul", "true", "null", "name", "Thing/name", "year(", "substring(",
    "now()", "2025-01-01T00:00:00Z", "2025-01-01", "12:00:00", "duration'", "geography'",
    "P1D", "'x'", "$filter=", "$expand=", "$top=", ";", "&", "=", "asc", "desc", "%",
]  # fmt: skip

token_soup = st.lists(st.sampled_from(TOKENS), max_size=20).map("".join)
garbage = st.one_of(st.text(max_size=40), token_soup)


@settings(max_examples=400)
@given(expressions)
def test_round_trip(expr: n.Expr) -> None:
    text = unparse(expr)
    assert parse_filter(text) == expr
    assert unparse(parse_filter(text)) == text


@settings(max_examples=400)
@given(garbage)
def test_garbage_filters_raise_only_odata_errors(text: str) -> None:
    try:
        expr = parse_filter(text)
    except ODataError as exc:
        assert exc.position is None or 0 <= exc.position <= len(text)
        return
    assert parse_filter(unparse(expr)) == expr


@settings(max_examples=300)
@given(garbage)
def test_garbage_orderby_raises_only_odata_errors(text: str) -> None:
    with contextlib.suppress(ODataError):
        parse_orderby(text)


@settings(max_examples=300)
@given(st.lists(st.tuples(st.sampled_from([*TOKENS[-10:], "$select=", "$count="]), garbage)))
def test_garbage_query_strings_raise_only_odata_errors(parts: list[tuple[str, str]]) -> None:
    query = "&".join(key + value for key, value in parts)
    with contextlib.suppress(ODataError):
        parse_query_string(query)


ENTITY = {
    "a": 1,
    "b": "text",
    "c": None,
    "t": datetime(2025, 1, 1, tzinfo=UTC),
    "p": {"q": 2.5},
}
TABLE = sa.table(
    "t",
    sa.column("a", sa.Integer()),
    sa.column("b", sa.String()),
    sa.column("t", sa.DateTime()),
)


@settings(max_examples=300)
@given(expressions)
def test_evaluating_any_tree_raises_only_odata_errors(expr: n.Expr) -> None:
    with contextlib.suppress(ODataError):
        evaluate(expr, ENTITY, now=datetime(2025, 1, 1, tzinfo=UTC))


@settings(max_examples=300)
@given(expressions, st.sampled_from(["sqlite", "postgresql"]))
def test_compiling_any_tree_raises_only_odata_errors(expr: n.Expr, dialect: str) -> None:
    columns = list(TABLE.c)
    try:
        clause = compile_filter(expr, lambda path: columns[len(path) % 3], dialect=dialect)
    except ODataError:
        return
    engine_dialect = sa.create_engine(f"{dialect}://").dialect if dialect == "sqlite" else None
    if engine_dialect is not None:
        str(clause.compile(dialect=engine_dialect))
