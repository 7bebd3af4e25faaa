"""Through the HTTP layer: valid $filter expressions are answered, invalid ones get a 400."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import quote

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

small_numbers = st.one_of(
    st.integers(min_value=-1000, max_value=1000).map(str),
    st.decimals(min_value=-1000, max_value=1000, places=2).map(str),
)
number_fields = st.sampled_from(["result", "id"])
numbers = st.one_of(
    number_fields,
    small_numbers,
    st.tuples(number_fields, st.sampled_from(["add", "sub", "mul", "div"]), small_numbers).map(
        " ".join
    ),
    st.tuples(st.sampled_from(["round", "floor", "ceiling"]), number_fields).map(
        lambda p: f"{p[0]}({p[1]})"
    ),
    st.tuples(
        st.sampled_from(["year", "month", "day", "hour", "minute", "second"]),
        st.sampled_from(["phenomenonTime", "resultTime"]),
    ).map(lambda p: f"{p[0]}({p[1]})"),
)
instants = st.one_of(
    st.sampled_from(["phenomenonTime", "resultTime"]),
    st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1)).map(
        lambda d: d.replace(microsecond=0, tzinfo=UTC).isoformat().replace("+00:00", "Z")
    ),
)
comparisons = st.one_of(
    st.tuples(numbers, st.sampled_from(["eq", "ne", "gt", "ge", "lt", "le"]), numbers),
    st.tuples(instants, st.sampled_from(["eq", "ne", "gt", "ge", "lt", "le"]), instants),
).map(" ".join)
filters = st.recursive(
    comparisons,
    lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from(["and", "or"]), inner).map(
            lambda p: f"({p[0]}) {p[1]} ({p[2]})"
        ),
        inner.map(lambda e: f"not ({e})"),
    ),
    max_leaves=5,
)
thing_filters = st.tuples(
    st.sampled_from(
        ["name", "description", "properties/borough", "properties/room", "properties/area"]
    ),
    st.sampled_from(["eq", "ne", "gt", "lt"]),
    st.text(alphabet=st.characters(codec="utf-8", exclude_characters="'\x00"), max_size=8),
).map(lambda p: f"{p[0]} {p[1]} '{p[2]}' or startswith(tolower({p[0]}), 'a')")


def _status(client: TestClient, path: str, expression: str) -> tuple[int, dict[str, object]]:
    response = client.get(f"/sta/v1.1/{path}?$filter={quote(expression, safe='')}")
    return response.status_code, response.json()


def test_valid_filters_are_answered(client: TestClient) -> None:
    @SETTINGS
    @given(expression=filters)
    def check(expression: str) -> None:
        for path in ("Observations", "Datastreams(1)/Observations"):
            code, body = _status(client, path, expression)
            assert code == 200, (expression, body)
            assert isinstance(body["value"], list)

    check()


def test_valid_filters_on_in_memory_sets_are_answered(client: TestClient) -> None:
    @SETTINGS
    @given(expression=thing_filters)
    def check(expression: str) -> None:
        code, body = _status(client, "Things", expression)
        assert code == 200, (expression, body)

    check()


def test_invalid_filters_get_400_never_500(client: TestClient) -> None:
    broken = st.one_of(
        st.text(max_size=30),
        # Valid expressions cut short or with a stray character are the realistic mistakes.
        st.tuples(filters, st.integers(min_value=1, max_value=40)).map(lambda p: p[0][: -p[1]]),
        st.tuples(filters, st.sampled_from(["(", ")", "'", " and", "/", "eq"])).map("".join),
        st.sampled_from(
            ["result eq 'x'", "phenomenonTime gt 3", "year(result) eq 1", "colour eq 1"]
        ),
    )

    @SETTINGS
    @given(expression=broken)
    def check(expression: str) -> None:
        code, body = _status(client, "Observations", expression)
        assert code in (200, 400), (expression, code, body)
        if code == 400:
            assert body["message"], expression

    check()
