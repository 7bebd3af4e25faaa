"""Edge cases of SensorThings requests: huge numbers, empty pages, decimals, raw values."""

from __future__ import annotations

import math
from typing import Any

from fastapi.testclient import TestClient

BASE = "/sta/v1.1"

OUT_OF_RANGE = [
    "Observations?$filter=id eq 9223372036854775808",
    "Observations?$filter=id eq -99999999999999999999",
    "Observations?$filter=result gt 99999999999999999999999",
    "Observations?$filter=round(result) eq 99999999999999999999",
    "Observations?$orderby=result add 99999999999999999999",
    "Observations?$top=1&$skip=99999999999999999999",
    "Datastreams(1)/Observations?$filter=id eq 99999999999999999999999",
    "Things?$expand=Datastreams/Observations($filter=id eq 99999999999999999999)&$top=1",
    "Things?$filter=id eq 99999999999999999999",
]


def error(client: TestClient, path: str) -> dict[str, Any]:
    response = client.get(f"{BASE}/{path}")
    assert response.status_code == 400, response.text
    body: dict[str, Any] = response.json()
    assert body["code"] == 400 and body["type"] == "error"
    return body


def test_integers_beyond_64_bits_are_400_with_a_reason(client: TestClient) -> None:
    for path in OUT_OF_RANGE:
        assert "out of range" in error(client, path)["message"], path


def test_large_decimals_and_the_largest_skip_are_answered(client: TestClient) -> None:
    for path in (
        "Observations?$filter=result gt 1e300",
        "Observations?$filter=result lt -99999999999999999999999.5",
        "Observations?$filter=id lt 1e30",
        "Observations?$top=1&$skip=9223372036854775807",
    ):
        response = client.get(f"{BASE}/{path}")
        assert response.status_code == 200, (path, response.text)


def test_top_zero_counts_without_a_next_link(client: TestClient) -> None:
    for path in ("Observations", "Things", "Datastreams(1)/Observations"):
        body = client.get(f"{BASE}/{path}?$top=0&$count=true").json()
        assert body["value"] == [] and body["@iot.count"] > 0
        assert "@iot.nextLink" not in body, path
    expanded = client.get(f"{BASE}/Things?$expand=Datastreams($top=0;$count=true)").json()
    for thing in expanded["value"]:
        assert thing["Datastreams"] == [] and thing["Datastreams@iot.count"] > 0
        assert "Datastreams@iot.nextLink" not in thing


def test_mod_works_on_decimals_as_on_every_entity_set(client: TestClient) -> None:
    every = client.get(f"{BASE}/Observations?$top=1000").json()["value"]
    expected = sorted(o["@iot.id"] for o in every if math.fmod(o["result"], 2) == 1.5)
    assert expected  # e.g. 19.5
    body = client.get(f"{BASE}/Observations?$filter=result mod 2 eq 1.5&$top=1000").json()
    assert sorted(o["@iot.id"] for o in body["value"]) == expected


def test_value_of_an_object_property_is_json(client: TestClient) -> None:
    for path, name in (
        ("Locations(1)/location/$value", "location"),
        ("Datastreams(1)/unitOfMeasurement/$value", "unitOfMeasurement"),
        ("Things(1)/properties/$value", "properties"),
    ):
        response = client.get(f"{BASE}/{path}")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/json")
        whole = client.get(f"{BASE}/{path.removesuffix('/$value')}").json()
        assert response.json() == whole[name]
    name = client.get(f"{BASE}/Datastreams(1)/name/$value")
    assert name.headers["content-type"].startswith("text/plain")
    assert name.text == client.get(f"{BASE}/Datastreams(1)").json()["name"]
