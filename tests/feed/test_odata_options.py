"""Tests for parsing whole query strings into QueryOptions."""

from __future__ import annotations

import pytest

from fleet.feed.odata import (
    DEFAULT_MAX_TOP,
    ExpandItem,
    ODataError,
    OrderBy,
    QueryOptions,
    parse_filter,
    parse_query_options,
    parse_query_string,
)
from fleet.feed.odata import nodes as n


def test_empty_query_gives_defaults() -> None:
    assert parse_query_string("") == QueryOptions()
    assert parse_query_string("?") == QueryOptions()


def test_all_top_level_options() -> None:
    options = parse_query_string(
        "$filter=result%20gt%2020&$select=result,phenomenonTime&$orderby=phenomenonTime%20desc,id"
        "&$top=10&$skip=20&$count=true&$resultFormat=dataArray&other=ignored"
    )
    assert options.filter == parse_filter("result gt 20")
    assert options.select == (("result",), ("phenomenonTime",))
    assert options.orderby == (
        OrderBy(n.Path(("phenomenonTime",)), descending=True),
        OrderBy(n.Path(("id",)), descending=False),
    )
    assert (options.top, options.skip, options.count) == (10, 20, True)
    assert options.result_format == "dataArray"


def test_mapping_input_and_expressions_in_orderby() -> None:
    options = parse_query_options({"$orderby": "length(name) asc, result desc", "$count": "false"})
    assert options.orderby[0] == OrderBy(n.Call("length", (n.Path(("name",)),)))
    assert options.orderby[1].descending
    assert options.count is False


def test_top_is_capped_at_the_server_maximum() -> None:
    assert parse_query_string("$top=5000").top == DEFAULT_MAX_TOP
    assert parse_query_string("$top=50", max_top=20).top == 20
    assert parse_query_string("$top=0").top == 0


def test_expand_lists_and_paths() -> None:
    options = parse_query_string("$expand=Datastreams/Observations,Locations")
    assert options.expand == (
        ExpandItem(("Datastreams", "Observations")),
        ExpandItem(("Locations",)),
    )


def test_expand_with_nested_options() -> None:
    value = (
        "Datastreams($select=name;$top=2;$expand=Observations($orderby=phenomenonTime desc;"
        "$filter=result gt 1)),Thing($select=name)"
    )
    options = parse_query_options([("$expand", value)])
    datastreams, thing = options.expand
    assert datastreams.path == ("Datastreams",)
    assert datastreams.options.select == (("name",),)
    assert datastreams.options.top == 2
    (observations,) = datastreams.options.expand
    assert observations.path == ("Observations",)
    assert observations.options.orderby == (OrderBy(n.Path(("phenomenonTime",)), True),)
    assert observations.options.filter == parse_filter("result gt 1")
    assert thing.options.select == (("name",),)


def test_nested_options_may_hold_parentheses_and_quotes() -> None:
    value = "Observations($filter=(result gt 1) and name eq 'a;b)c';$top=1)"
    (item,) = parse_query_options({"$expand": value}).expand
    assert item.options.filter == parse_filter("(result gt 1) and name eq 'a;b)c'")
    assert item.options.top == 1


@pytest.mark.parametrize(
    ("query", "option", "position", "fragment"),
    [
        ("$foo=1", None, None, "unknown query option '$foo'"),
        ("$top=-1", "$top", 0, "expected a non-negative integer"),
        ("$top=abc", "$top", 0, "expected a non-negative integer"),
        ("$skip=1.5", "$skip", 0, "expected a non-negative integer"),
        ("$count=yes", "$count", 0, "expected 'true' or 'false'"),
        ("$resultFormat=json", "$resultFormat", 0, "expected 'dataArray'"),
        ("$filter=result%20gt", "$filter", 9, "expected an operand"),
        ("$filter=year(3)%20eq%201", "$filter", 5, "must be date or date-time"),
        ("$select=name,,id", "$select", 5, "expected a property name"),
        ("$select=na%20me", "$select", 3, "expected ',' or end of input"),
        ("$orderby=name%20up", "$orderby", 5, "',', 'asc', 'desc' or end of input"),
        ("$expand=Datastreams(", "$expand", 11, "expected ')'"),
        ("$expand=Datastreams($top)", "$expand", 12, "expected '$option=value'"),
        ("$expand=Datastreams(top=1)", "$expand", 12, "unknown query option 'top'"),
        ("$expand=Datastreams($top=x)", "$expand", 17, "in nested $top"),
        ("$expand=Datastreams($filter=a%20eq)", "$expand", 24, "in nested $filter"),
        ("$expand=Datastreams($resultFormat=dataArray)", "$expand", 12, "unknown query"),
        ("$expand=Datastreams($top=1;$top=2)", "$expand", None, "given twice"),
        ("$expand=Datastreams%20Things", "$expand", 12, "expected ',', '(' or end"),
        ("$expand=,", "$expand", 0, "expected an entity or navigation property name"),
        ("$top=1&$top=2", None, None, "'$top' is given twice"),
    ],
)
def test_option_errors(query: str, option: str | None, position: int | None, fragment: str) -> None:
    with pytest.raises(ODataError) as info:
        parse_query_string(query)
    error = info.value
    assert fragment in error.message
    assert error.option == option
    assert error.position == position
    if option:
        assert str(error).startswith(option)


def test_nested_expand_error_positions_point_into_the_expand_value() -> None:
    value = "Datastreams($expand=Observations($top=x))"
    with pytest.raises(ODataError) as info:
        parse_query_options({"$expand": value})
    assert info.value.position == value.index("=x") + 1
    assert "in nested $expand: in nested $top" in info.value.message
