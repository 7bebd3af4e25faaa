"""Table tests for evaluating filters against plain Python data, and type checking."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest

from fleet.feed.odata import (
    ODataError,
    check_filter,
    evaluate,
    make_predicate,
    matches,
    parse_filter,
)

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
OBSERVATION: dict[str, Any] = {
    "result": 21.5,
    "count": 7,
    "name": "  Kitchen Sensor ",
    "code": "ab'c",
    "missing": None,
    "active": True,
    "phenomenonTime": datetime(2025, 3, 14, 15, 9, 26, 535000, tzinfo=UTC),
    "resultTime": "2025-03-14T15:09:27Z",
    "Datastream": {"id": 42, "name": "temperature"},
    "Thing": {"properties": {"borough": "Hackney", "floor": 2}},
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("result eq 21.5", True),
        ("result ne 21.5", False),
        ("result gt 21", True),
        ("result ge 21.5", True),
        ("result lt 21.5", False),
        ("result le 21.5", True),
        ("count eq 7.0", True),
        ("count add 1 eq 8", True),
        ("count sub 10 eq -3", True),
        ("count mul 3 eq 21", True),
        ("count div 2 eq 3", True),
        ("-7 div 2 eq -3", True),
        ("count mod 4 eq 3", True),
        ("-7 mod 4 eq -3", True),
        ("result div 2 eq 10.75", True),
        ("count div 0 eq null", True),
        ("count add 2 mul 3 eq 13", True),
        ("(count add 2) mul 3 eq 27", True),
        ("true or false and false", True),
        ("(true or false) and false", False),
        ("not false and false", False),
        ("not result eq 1", True),
        ("Datastream/id eq 42", True),
        ("Thing/properties/borough eq 'Hackney'", True),
        ("Thing/properties/nothing eq null", True),
        ("Thing/nothing/deeper eq null", True),
        ("code eq 'ab''c'", True),
        ("active", True),
        ("active eq true", True),
        ("not active", False),
    ],
)
def test_operators(text: str, expected: bool) -> None:
    assert matches(parse_filter(text), OBSERVATION, now=NOW) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("substringof('Sens', name)", True),
        ("contains(name, 'Sens')", True),
        ("contains(name, 'sens')", False),
        ("endswith(name, 'Sensor ')", True),
        ("startswith(name, '  Kit')", True),
        ("length(name) eq 17", True),
        ("indexof(name, 'Kitchen') eq 2", True),
        ("indexof(name, 'zzz') eq -1", True),
        ("substring(name, 2) eq 'Kitchen Sensor '", True),
        ("substring(name, 2, 7) eq 'Kitchen'", True),
        ("substring(name, -5, 4) eq '  Ki'", True),
        ("substring(name, 2, -1) eq ''", True),
        ("tolower(trim(name)) eq 'kitchen sensor'", True),
        ("toupper(Datastream/name) eq 'TEMPERATURE'", True),
        ("concat(concat(Datastream/name, '/'), code) eq 'temperature/ab''c'", True),
        ("year(phenomenonTime) eq 2025", True),
        ("month(phenomenonTime) eq 3", True),
        ("day(phenomenonTime) eq 14", True),
        ("hour(phenomenonTime) eq 15", True),
        ("minute(phenomenonTime) eq 9", True),
        ("second(phenomenonTime) eq 26", True),
        ("fractionalseconds(phenomenonTime) eq 0.535", True),
        ("date(phenomenonTime) eq 2025-03-14", True),
        ("time(phenomenonTime) eq 15:09:26.535", True),
        ("totaloffsetminutes(2025-01-01T00:00:00+05:30) eq 330", True),
        ("phenomenonTime lt now()", True),
        ("phenomenonTime gt mindatetime() and phenomenonTime lt maxdatetime()", True),
        ("resultTime gt phenomenonTime", True),
        ("resultTime eq 2025-03-14T16:09:27+01:00", True),
        ("year(resultTime) eq 2025", True),
        ("phenomenonTime add duration'PT1H' gt 2025-03-14T16:00:00Z", True),
        ("round(result) eq 22", True),
        ("round(-2.5) eq -3", True),
        ("floor(result) eq 21", True),
        ("floor(-21.5) eq -22", True),
        ("ceiling(result) eq 22", True),
        ("round(count) eq 7", True),
    ],
)
def test_functions(text: str, expected: bool) -> None:
    assert matches(parse_filter(text), OBSERVATION, now=NOW) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("missing eq null", True),
        ("null eq null", True),
        ("missing ne null", False),
        ("missing eq 1", False),
        ("missing ne 1", True),
        ("missing gt 1", False),
        ("missing lt 1", False),
        ("not (missing gt 1)", True),
        ("missing add 1 eq null", True),
        ("length(missing) eq null", True),
        ("startswith(missing, 'a')", False),
        ("not startswith(missing, 'a')", True),
        ("missing", False),
        ("missing or true", True),
        ("missing and true", False),
    ],
)
def test_null_rules(text: str, expected: bool) -> None:
    assert matches(parse_filter(text), OBSERVATION, now=NOW) is expected


def test_objects_and_custom_resolvers() -> None:
    entity = SimpleNamespace(result=3, Thing=SimpleNamespace(name="t1"))
    assert matches(parse_filter("result eq 3 and Thing/name eq 't1'"), entity)
    upper = parse_filter("x eq 'X'")
    assert matches(upper, {}, resolve=lambda path, _: "/".join(path).upper())


def test_evaluate_returns_values() -> None:
    assert evaluate(parse_filter("count mul 2 add 1"), OBSERVATION) == 15
    assert evaluate(parse_filter("1.5 add 1"), {}) == Decimal("2.5")
    assert evaluate(parse_filter("concat('a', 'b')"), {}) == "ab"


def test_make_predicate_checks_types_once() -> None:
    predicate = make_predicate(parse_filter("result gt 20"))
    assert predicate(OBSERVATION)
    assert not predicate({"result": 3})
    with pytest.raises(ODataError, match="year"):
        make_predicate(parse_filter("year(3) eq 2025"))


def test_geo_functions_are_rejected_clearly() -> None:
    expr = parse_filter("st_within(location, geography'POLYGON((0 0, 1 1, 1 0, 0 0))')")
    with pytest.raises(ODataError, match=r"geospatial function st_within\(\) is not supported"):
        matches(expr, OBSERVATION)


@pytest.mark.parametrize(
    ("text", "position", "fragment"),
    [
        ("year(3) eq 2025", 5, "argument 1 of year() must be date or date-time, got integer"),
        ("length(5) eq 1", 7, "must be string, got integer"),
        ("'a' add 1 eq 2", 4, "'add' needs numeric operands, got string and integer"),
        ("name eq 'a' and 5", 12, "'and' needs a boolean operand, got integer"),
        ("not 'x'", 0, "'not' needs a boolean operand, got string"),
        ("'a' eq 1", 4, "cannot compare string with integer using 'eq'"),
        ("2025-01-01 lt 2025-01-01T00:00:00Z", 11, "cannot compare date with date-time"),
        ("result add 1", 7, "a filter must be a boolean expression"),
        ("length(name)", 0, "a filter must be a boolean expression, got integer"),
        ("round('x') eq 1", 6, "must be decimal or integer, got string"),
        ("st_within(a, 1)", 13, "must be geometry, got integer"),
        ("geography'POINT(1 1)' gt a", 22, "cannot order geometry"),
    ],
)
def test_type_errors(text: str, position: int, fragment: str) -> None:
    with pytest.raises(ODataError) as info:
        check_filter(parse_filter(text))
    assert fragment in info.value.message
    assert info.value.position == position


@pytest.mark.parametrize(
    "text",
    [
        "result gt 1",
        "phenomenonTime add duration'P1D' lt now()",
        "now() sub phenomenonTime gt duration'PT1H'",
        "a",
        "null",
        "year(date(phenomenonTime)) eq 2025",
        "hour(12:00:00) eq 12",
        "round(1) eq 1.0",
    ],
)
def test_well_typed_filters(text: str) -> None:
    check_filter(parse_filter(text))
