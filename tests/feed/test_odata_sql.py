"""Compiled SQL filters select the same SQLite rows as the Python evaluator."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fleet.feed.odata import (
    ODataError,
    compile_filter,
    compile_orderby,
    matches,
    parse_filter,
    parse_orderby,
    unparse,
)
from fleet.feed.odata import nodes as n
from fleet.feed.odata.sqlalchemy_compile import compile_value

NOW = datetime(2030, 1, 1, tzinfo=UTC)
metadata = sa.MetaData()
observations = sa.Table(
    "observations",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String),
    sa.Column("borough", sa.String),
    sa.Column("result", sa.Float),
    sa.Column("count", sa.Integer),
    sa.Column("flag", sa.Boolean),
    sa.Column("ts", sa.DateTime),
)


def _ts(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, sec: int = 0, us: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, sec, us, tzinfo=UTC)


ROWS: list[dict[str, Any]] = [
    dict(name="Kitchen", borough="Hackney", result=21.5, count=7, flag=True,
         ts=_ts(2025, 3, 14, 15, 9, 26, 535000)),
    dict(name="bedroom", borough="Camden", result=-2.5, count=-3, flag=False,
         ts=_ts(2024, 12, 31, 23, 59, 59)),
    dict(name="Loft ", borough="Hackney", result=0.0, count=0, flag=None,
         ts=_ts(2025, 1, 1, 0, 0, 0)),
    dict(name=None, borough=None, result=None, count=None, flag=None, ts=None),
    dict(name="it's", borough="Islington", result=100.25, count=12, flag=True,
         ts=_ts(2025, 6, 30, 8, 30, 0, 250000)),
    dict(name="", borough="Camden", result=3.0, count=3, flag=False,
         ts=_ts(2023, 2, 28, 12, 0, 0)),
    dict(name="  padded  ", borough="hackney", result=2.5, count=5, flag=True,
         ts=_ts(2025, 3, 14, 9, 15, 0)),
    dict(name="KITCHEN", borough=None, result=21.5, count=None, flag=False,
         ts=_ts(2025, 3, 15, 0, 0, 0, 1000)),
]  # fmt: skip
for index, row in enumerate(ROWS, start=1):
    row["id"] = index

PATHS = {
    ("id",): observations.c.id,
    ("name",): observations.c.name,
    ("Thing", "properties", "borough"): observations.c.borough,
    ("result",): observations.c.result,
    ("count",): observations.c.count,
    ("flag",): observations.c.flag,
    ("phenomenonTime",): observations.c.ts,
}


def resolve(path: tuple[str, ...]) -> sa.ColumnElement[Any]:
    try:
        return PATHS[path]
    except KeyError:
        raise ODataError(f"unknown property {'/'.join(path)!r}") from None


def entity(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "name": row["name"],
        "result": row["result"],
        "count": row["count"],
        "flag": row["flag"],
        "phenomenonTime": row["ts"],
        "Thing": {"properties": {"borough": row["borough"]}},
    }


@pytest.fixture(scope="module")
def engine() -> Iterator[sa.Engine]:
    eng = sa.create_engine("sqlite://")
    metadata.create_all(eng)
    stored = [{**row, "ts": row["ts"] and row["ts"].replace(tzinfo=None)} for row in ROWS]
    with eng.begin() as conn:
        conn.execute(observations.insert(), stored)
    yield eng
    eng.dispose()


def sql_ids(engine: sa.Engine, expr: n.Expr) -> list[int]:
    clause = compile_filter(expr, resolve, dialect=engine.dialect.name)
    query = sa.select(observations.c.id).where(clause).order_by(observations.c.id)
    with engine.connect() as conn:
        return list(conn.scalars(query))


def python_ids(expr: n.Expr) -> list[int]:
    return [row["id"] for row in ROWS if matches(expr, entity(row), now=NOW)]


FILTERS = [
    "result gt 3",
    "result eq 21.5",
    "result ne 21.5",
    "not (result gt 3)",
    "result eq null",
    "result ne null",
    "count ge 0 and count le 7",
    "count lt 0 or result gt 50",
    "count add 1 eq 8",
    "count sub 10 lt 0",
    "count mul 2 eq 14",
    "count div 2 eq 3",
    "count div 2 eq -1",
    "count mod 4 eq 3",
    "count mod 4 eq -3",
    "result mod 2 gt 1",
    "result mod 2 eq 1.5",
    "result mod 2 eq -0.5",
    "result mod 0.5 eq 0.25",
    "phenomenonTime add duration'PT1H' gt 2025-03-14T16:00:00Z",
    "phenomenonTime sub duration'P1DT0.5S' lt 2024-12-31T00:00:00Z",
    "phenomenonTime add duration'PT0.465S' eq 2025-03-14T15:09:27Z",
    "phenomenonTime sub duration'P365D' lt now() sub duration'P365D'",
    "count div 0 eq null",
    "result div 2 gt 10",
    "count add 2 mul 3 gt 20",
    "(count add 2) mul 3 gt 20",
    "result eq count",
    "result ne count",
    "not (result eq count)",
    "name eq 'it''s'",
    "name eq ''",
    "name ne 'Kitchen'",
    "name gt 'L'",
    "Thing/properties/borough eq 'Hackney'",
    "Thing/properties/borough eq null",
    "substringof('itch', name)",
    "contains(name, 'itch')",
    "not contains(name, 'itch')",
    "contains(name, '')",
    "startswith(name, 'Kit')",
    "startswith(name, '')",
    "endswith(name, 'room')",
    "endswith(name, 'Kitchen Extra')",
    "not endswith(name, 'room')",
    "length(name) eq 7",
    "length(name) gt 100",
    "indexof(name, 'itch') eq 1",
    "indexof(name, 'zz') eq -1",
    "substring(name, 1) eq 'itchen'",
    "substring(name, 1, 3) eq 'itc'",
    "substring(name, -2, 3) eq 'Kit'",
    "substring(name, 2, -1) eq ''",
    "substring(name, count) eq 'en'",
    "tolower(name) eq 'kitchen'",
    "toupper(Thing/properties/borough) eq 'HACKNEY'",
    "trim(name) eq 'padded'",
    "concat(name, '!') eq 'Kitchen!'",
    "concat(name, Thing/properties/borough) eq 'KitchenHackney'",
    "year(phenomenonTime) eq 2025",
    "month(phenomenonTime) eq 3",
    "day(phenomenonTime) eq 14",
    "hour(phenomenonTime) eq 15",
    "minute(phenomenonTime) ge 15",
    "second(phenomenonTime) eq 59",
    "fractionalseconds(phenomenonTime) gt 0.5",
    "fractionalseconds(phenomenonTime) eq 0",
    "date(phenomenonTime) eq 2025-03-14",
    "time(phenomenonTime) eq 15:09:26.535",
    "time(phenomenonTime) lt 09:00:00",
    "totaloffsetminutes(phenomenonTime) eq 0",
    "phenomenonTime ge 2025-01-01T00:00:00Z",
    "phenomenonTime lt 2025-03-14T16:00:00+01:00",
    "phenomenonTime eq 2025-01-01T00:00:00Z",
    "phenomenonTime lt now()",
    "phenomenonTime gt mindatetime() and phenomenonTime lt maxdatetime()",
    "round(result) eq 22",
    "round(result) eq -3",
    "floor(result) eq -3",
    "ceiling(result) eq -2",
    "ceiling(result) eq 22",
    "floor(result) eq 2",
    "flag",
    "not flag",
    "flag eq true",
    "flag eq false",
    "flag ne true",
    "flag eq null",
    "(result gt 3) eq flag",
    "flag eq (not date(phenomenonTime) gt date(phenomenonTime))",
    "flag ne (not startswith(name, 'K'))",
    "true",
    "false",
    "null",
    "not null",
    "null eq null",
    "result gt null",
    "not (result lt null)",
    "id le 4",
]


@pytest.mark.parametrize("text", FILTERS)
def test_sql_matches_python(engine: sa.Engine, text: str) -> None:
    expr = parse_filter(text)
    assert sql_ids(engine, expr) == python_ids(expr)


def test_the_table_is_not_trivial(engine: sa.Engine) -> None:
    sizes = {len(python_ids(parse_filter(text))) for text in FILTERS}
    assert len(sizes) > 4


# -- random well-typed filters over the table --------------------------------
small_ints = st.integers(min_value=-5, max_value=15).map(n.IntLit)
short_strings = st.text(alphabet="aeiKkLhn' ", max_size=4).map(n.StringLit)


def _path(*segments: str) -> n.Path:
    return n.Path(segments)


def int_exprs() -> st.SearchStrategy[n.Expr]:
    leaves = st.one_of(small_ints, st.just(_path("count")), st.just(_path("id")))
    return st.recursive(
        leaves,
        lambda kids: st.one_of(
            st.builds(n.Arithmetic, st.sampled_from(n.ARITHMETIC_OPS), kids, kids),
            st.builds(lambda s: n.Call("length", (s,)), string_exprs),
            st.builds(lambda s, t: n.Call("indexof", (s, t)), string_exprs, string_exprs),
            st.sampled_from(["year", "month", "day", "hour", "minute", "second"]).map(
                lambda name: n.Call(name, (_path("phenomenonTime"),))
            ),
        ),
        max_leaves=4,
    )


string_leaves = st.one_of(
    short_strings, st.just(_path("name")), st.just(_path("Thing", "properties", "borough"))
)
string_exprs: st.SearchStrategy[n.Expr] = st.recursive(
    string_leaves,
    lambda kids: st.one_of(
        st.builds(lambda s: n.Call("tolower", (s,)), kids),
        st.builds(lambda s: n.Call("toupper", (s,)), kids),
        st.builds(lambda s: n.Call("trim", (s,)), kids),
        st.builds(lambda s, t: n.Call("concat", (s, t)), kids, kids),
        st.builds(lambda s, i: n.Call("substring", (s, i)), kids, small_ints),
        st.builds(lambda s, i, j: n.Call("substring", (s, i, j)), kids, small_ints, small_ints),
    ),
    max_leaves=3,
)
decimal_exprs = st.one_of(
    st.just(_path("result")),
    st.sampled_from(["-2.5", "0", "2.5", "3", "21.5", "100.25"]).map(
        lambda text: n.DecimalLit(Decimal(text))
    ),
    st.sampled_from(["round", "floor", "ceiling"]).map(
        lambda name: n.Call(name, (_path("result"),))
    ),
)
datetime_exprs = st.one_of(
    st.just(_path("phenomenonTime")),
    st.sampled_from(
        [
            _ts(2025, 1, 1),
            _ts(2025, 3, 14, 15, 9, 26, 535000),
            datetime(2025, 3, 14, 12, tzinfo=timezone(timedelta(hours=-3))),
        ]
    ).map(n.DateTimeLit),
)
date_exprs = st.one_of(
    st.just(n.Call("date", (_path("phenomenonTime"),))),
    st.sampled_from([date(2025, 3, 14), date(2025, 1, 1)]).map(n.DateLit),
)
time_exprs = st.one_of(
    st.just(n.Call("time", (_path("phenomenonTime"),))),
    st.sampled_from([time(0, 0), time(15, 9, 26, 535000), time(12)]).map(n.TimeLit),
)
ops = st.sampled_from(n.COMPARISON_OPS)


def _compare(kind: st.SearchStrategy[n.Expr]) -> st.SearchStrategy[n.Expr]:
    return st.builds(n.Comparison, ops, kind, st.one_of(kind, st.just(n.NullLit())))


numbers = st.one_of(int_exprs(), decimal_exprs)
atoms = st.one_of(
    _compare(numbers),
    _compare(string_exprs),
    _compare(datetime_exprs),
    _compare(date_exprs),
    _compare(time_exprs),
    st.sampled_from(["startswith", "endswith", "contains", "substringof"]).flatmap(
        lambda name: st.builds(lambda a, b: n.Call(name, (a, b)), string_exprs, string_exprs)
    ),
    st.just(_path("flag")),
    st.builds(n.BoolLit, st.booleans()),
)
bool_exprs = st.recursive(
    atoms,
    lambda kids: st.one_of(
        st.builds(n.Logical, st.sampled_from(n.LOGICAL_OPS), kids, kids),
        st.builds(n.Not, kids),
        st.builds(n.Comparison, st.sampled_from(n.EQUALITY_OPS), kids, kids),
    ),
    max_leaves=5,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bool_exprs)
def test_random_filters_agree(engine: sa.Engine, expr: n.Expr) -> None:
    assert sql_ids(engine, expr) == python_ids(expr), unparse(expr)


def test_orderby_compiles(engine: sa.Engine) -> None:
    clauses = compile_orderby(parse_orderby("length(name) desc, id"), resolve)
    query = sa.select(observations.c.id).where(observations.c.name.is_not(None))
    with engine.connect() as conn:
        ids = list(conn.scalars(query.order_by(*clauses)))
    assert ids[:2] == [7, 1]


def test_compile_value_for_expressions(engine: sa.Engine) -> None:
    column = compile_value(parse_filter("count mul 2 add 1"), resolve)
    with engine.connect() as conn:
        values = list(conn.scalars(sa.select(column).order_by(observations.c.id)))
    assert values[0] == 15


@pytest.mark.parametrize(
    ("text", "position", "fragment"),
    [
        ("year(3) eq 2025", 5, "must be date or date-time"),
        ("nothing eq 1", 0, "unknown property 'nothing'"),
        ("phenomenonTime sub now() gt duration'P1D'", 15, "limited to a date-time plus"),
        ("st_within(name, geography'POINT(1 1)')", 0, "geospatial function st_within()"),
    ],
)
def test_compile_errors(text: str, position: int, fragment: str) -> None:
    with pytest.raises(ODataError) as info:
        compile_filter(parse_filter(text), resolve, dialect="sqlite")
    assert fragment in info.value.message
    assert info.value.position == position


def test_postgresql_forms() -> None:
    from sqlalchemy.dialects import postgresql

    expr = parse_filter(
        "year(phenomenonTime) eq 2025 and contains(name, 'a') and indexof(name, 'b') eq 0 "
        "and ceiling(result) eq 3 and phenomenonTime add duration'PT1H' lt now()"
    )
    sql = str(
        compile_filter(expr, resolve, dialect="postgresql").compile(dialect=postgresql.dialect())
    )
    assert "EXTRACT(year FROM observations.ts)" in sql
    assert "strpos(observations.name" in sql
    assert "ceil(observations.result)" in sql
    assert "now()" in sql


def test_unknown_dialect_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unsupported SQL dialect"):
        compile_filter(parse_filter("true"), resolve, dialect="oracle")
