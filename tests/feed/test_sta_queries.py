"""SensorThings query options against known data, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from fastapi.testclient import TestClient

from tests.feed.conftest import POINTS, FeedWorld

BASE = "/sta/v1.1"


def get(client: TestClient, path: str, **kwargs: Any) -> Any:
    response = client.get(f"{BASE}/{path}", **kwargs)
    assert response.status_code == 200, response.text
    return response.json()


def relative(link: str) -> str:
    parts = urlsplit(link)
    return f"{parts.path}?{parts.query}"


def ids(body: dict[str, Any]) -> list[int]:
    return [e["@iot.id"] for e in body["value"]]


def test_service_root_lists_every_entity_set(client: TestClient) -> None:
    body = client.get(BASE).json()
    names = [e["name"] for e in body["value"]]
    assert names == [
        "Things",
        "Locations",
        "HistoricalLocations",
        "Datastreams",
        "Sensors",
        "ObservedProperties",
        "Observations",
        "FeaturesOfInterest",
    ]
    assert body["value"][0]["url"].endswith("/sta/v1.1/Things")
    # Claimed: only classes served in full (no geospatial functions, no associationLinks
    # (`$ref`), Observation topics only).
    assert body["serverSettings"]["conformance"] == [
        "http://www.opengis.net/spec/iot_sensing/1.1/req/datamodel",
        "http://www.opengis.net/spec/iot_sensing/1.1/req/data-array/data-array",
    ]
    ref = client.get(f"{BASE}/Things(1)/Datastreams/$ref")
    assert ref.status_code == 404  # so resource-path-to-entities is not claimed


def test_entity_shapes_links_and_paths(client: TestClient) -> None:
    thing = get(client, "Things(1)")
    assert thing["@iot.id"] == 1
    assert thing["@iot.selfLink"].endswith("/sta/v1.1/Things(1)")
    assert thing["Datastreams@iot.navigationLink"].endswith("/Things(1)/Datastreams")
    assert thing["properties"]["borough"] == "Hackney"
    assert thing["properties"]["area"] == "E8"
    streams = get(client, "Things(1)/Datastreams")
    assert ids(streams) == [1, 2]  # battery is not public
    ds = get(client, "Datastreams(1)")
    assert ds["unitOfMeasurement"]["symbol"] == "°C"
    assert ds["observationType"].endswith("OM_Measurement")
    assert ds["properties"]["retentionDays"] == 730
    assert get(client, "Datastreams(1)/Thing")["@iot.id"] == 1
    assert get(client, "Datastreams(1)/Sensor")["name"] == "Sensirion SHT41"
    assert get(client, "Datastreams(2)/ObservedProperty")["name"] == "humidity"
    assert get(client, "Datastreams(1)/name") == {"name": ds["name"]}
    raw = client.get(f"{BASE}/Datastreams(1)/name/$value")
    assert raw.status_code == 200 and raw.text == ds["name"]
    obs = get(client, "Datastreams(1)/Observations?$top=1")["value"][0]
    assert set(obs) >= {"@iot.id", "phenomenonTime", "resultTime", "result"}
    assert obs["phenomenonTime"] == "2025-03-01T00:00:00Z"
    assert get(client, f"Observations({obs['@iot.id']})/Datastream")["@iot.id"] == 1
    assert get(client, f"Observations({obs['@iot.id']})/FeatureOfInterest")["@iot.id"] == 1
    assert ids(get(client, "Things(1)/Locations")) == [1]
    assert get(client, "HistoricalLocations(2)/Thing")["@iot.id"] == 2
    assert ids(get(client, "Sensors(1)/Datastreams")) == [1, 2, 4, 5]
    assert ids(get(client, "FeaturesOfInterest(2)/Observations?$top=1000")) != []


NOT_FOUND = [
    "Things(99)",
    "Datastreams(3)",  # battery: not public
    "Things(1)/Datastreams(4)",  # exists, but belongs to Thing 2
    "Nothing",
    "Things(1)/Nothing",
    "Datastreams/Observations",
]


def test_unknown_or_hidden_resources_are_404(client: TestClient) -> None:
    # One fixture for the whole table: building the fleet is the slow part.
    for path in NOT_FOUND:
        response = client.get(f"{BASE}/{path}")
        assert response.status_code == 404, path
        assert response.json()["message"], path


FILTERS = [
    ("$filter=result gt 20", [i for i in range(POINTS) if 18 + 0.5 * i > 20]),
    ("$filter=result ge 19 and result lt 21", [2, 3, 4, 5]),
    ("$filter=result lt 18.6 or result gt 23.4", [0, 1, 11]),
    ("$filter=not (result gt 19)", [0, 1, 2]),
    ("$filter=phenomenonTime ge 2025-03-01T02:00:00Z", list(range(8, POINTS))),
    ("$filter=hour(phenomenonTime) eq 1 and minute(phenomenonTime) eq 30", [6]),
    ("$filter=floor(result) eq 20", [4, 5]),
    ("$filter=result mul 2 eq 41", [5]),
    ("$filter=Datastream/id eq 1 and result le 18.5", [0, 1]),
    ("$filter=Datastream/ObservedProperty/name eq 'temperature' and result eq 18", [0]),
    ("$filter=FeatureOfInterest/id eq 2", []),
]


def test_observation_filters(client: TestClient) -> None:
    for query, expected in FILTERS:
        body = get(client, f"Datastreams(1)/Observations?{query}&$orderby=phenomenonTime")
        got = [round((e["result"] - 18) / 0.5) for e in body["value"]]
        assert got == expected, query


def test_filters_on_other_sets_use_properties_and_navigation(client: TestClient) -> None:
    assert ids(get(client, "Things?$filter=properties/borough eq 'Camden'")) == [2]
    assert ids(get(client, "Datastreams?$filter=Thing/properties/borough eq 'Hackney'")) == [1, 2]
    assert ids(
        get(client, "Datastreams?$filter=ObservedProperty/name eq 'humidity' and Thing/id ne 1")
    ) == [5]
    assert ids(get(client, "Datastreams?$filter=startswith(name, 'Relative')")) == [2, 5]
    assert ids(get(client, "ObservedProperties?$filter=properties/public eq false")) == [6, 7]
    assert ids(get(client, "Locations?$filter=location/properties/area eq 'NW1'")) == [2]


def test_orderby_select_count_and_top_skip(client: TestClient) -> None:
    body = get(client, "Datastreams?$orderby=Thing/id desc,name&$select=id,name&$count=true")
    assert body["@iot.count"] == 4
    assert ids(body) == [4, 5, 1, 2]  # Camden first; "Air ..." before "Relative ..."
    assert set(body["value"][0]) == {"@iot.id", "@iot.selfLink", "name"}
    page = get(client, "Datastreams(2)/Observations?$orderby=result desc&$top=3&$skip=2")
    assert [e["result"] for e in page["value"]] == [69.0, 68.0, 67.0]
    only = get(client, "Datastreams(1)/Observations?$select=result&$top=2")
    assert only["value"] == [{"result": 18.0}, {"result": 18.5}]
    nothing = get(client, "Things?$filter=properties/borough eq 'Nowhere'&$count=true")
    assert nothing == {"@iot.count": 0, "value": []}


def test_paging_through_next_links_reaches_every_observation(client: TestClient) -> None:
    link: str | None = f"{BASE}/Observations?$top=5&$count=true&$orderby=id"
    seen: list[int] = []
    pages = 0
    while link is not None:
        response = client.get(relative(link) if link.startswith("http") else link)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["@iot.count"] == 4 * POINTS
        seen += ids(body)
        link = body.get("@iot.nextLink")
        pages += 1
    assert pages == 10  # 48 public observations, 5 per page
    assert len(seen) == len(set(seen)) == 4 * POINTS
    assert seen == sorted(seen)


def test_nested_expand_with_options(client: TestClient) -> None:
    query = (
        "$expand=Datastreams($select=id,name;$orderby=id desc;$count=true;"
        "$expand=Observations($top=2;$orderby=phenomenonTime desc;$select=result),"
        "ObservedProperty($select=name)),Locations"
    )
    thing = get(client, f"Things(1)?{query}")
    streams = thing["Datastreams"]
    assert [d["@iot.id"] for d in streams] == [2, 1]
    assert thing["Datastreams@iot.count"] == 2
    assert streams[1]["Observations"] == [{"result": 23.5}, {"result": 23.0}]
    assert streams[1]["ObservedProperty"] == {"name": "temperature"}
    assert streams[1]["Observations@iot.nextLink"].endswith("$top=2&$skip=2")
    assert thing["Locations"][0]["location"]["properties"]["area"] == "E8"
    # The nested next link continues where the expansion stopped.
    rest = client.get(relative(streams[1]["Observations@iot.nextLink"])).json()
    assert [o["result"] for o in rest["value"]] == [22.5, 22.0]
    # Path form: Datastreams/Observations is Datastreams($expand=Observations).
    flat = get(client, "Things(2)?$expand=Datastreams/Observations($top=1),Datastreams/Sensor")
    assert [len(d["Observations"]) for d in flat["Datastreams"]] == [1, 1]
    assert all(d["Sensor"]["@iot.id"] == 1 for d in flat["Datastreams"])
    one = get(client, "Observations?$top=1&$expand=Datastream($expand=Thing($select=id))")
    assert one["value"][0]["Datastream"]["Thing"] == {
        "@iot.id": 1,
        "@iot.selfLink": one["value"][0]["Datastream"]["Thing"]["@iot.selfLink"],
    }


def test_data_array_groups_by_datastream(client: TestClient) -> None:
    body = get(
        client,
        "Observations?$resultFormat=dataArray&$select=result,phenomenonTime"
        "&$filter=phenomenonTime lt 2025-03-01T00:30:00Z&$count=true",
    )
    assert body["@iot.count"] == 8
    groups = body["value"]
    assert [g["Datastream@iot.navigationLink"].rsplit("/", 1)[1] for g in groups] == [
        "Datastreams(1)",
        "Datastreams(2)",
        "Datastreams(4)",
        "Datastreams(5)",
    ]
    assert groups[0]["components"] == ["result", "phenomenonTime"]  # the $select order
    assert groups[0]["dataArray"] == [
        [18.0, "2025-03-01T00:00:00Z"],
        [18.5, "2025-03-01T00:15:00Z"],
    ]
    assert groups[0]["dataArray@iot.count"] == 2


INVALID = [
    ("$filter=result gt", "$filter"),
    ("$filter=result eq 'warm'", "compare"),
    ("$filter=colour eq 1", "unknown property 'colour'"),
    ("$filter=Datastream/name eq 'x'", "cannot be filtered"),
    ("$orderby=nothing", "unknown property"),
    ("$select=colour", "cannot select"),
    ("$expand=Colours", "no navigation property"),
    ("$top=-1", "$top"),
    ("$resultFormat=csv", "$resultFormat"),
    ("$bogus=1", "unknown query option"),
    ("$resultFormat=dataArray&$select=Datastream", "dataArray holds properties only"),
    ("$filter=substringof('1', result)", ""),
]


def test_invalid_options_are_400_with_a_message(client: TestClient) -> None:
    for query, fragment in INVALID:
        response = client.get(f"{BASE}/Datastreams(1)/Observations?{query}")
        assert response.status_code == 400, (query, response.text)
        body = response.json()
        assert body["code"] == 400 and body["type"] == "error"
        assert fragment in body["message"], (query, body)


def test_full_level_is_only_for_the_tokens_own_borough(
    client: TestClient, feed_world: FeedWorld
) -> None:
    staff = feed_world.headers("staff_hackney")
    things = get(client, "Things", headers=staff)["value"]
    by_id = {t["@iot.id"]: t["properties"] for t in things}
    assert by_id[1]["level"] == "full" and by_id[1]["propertyReference"] == "HACKNEY-0001"
    assert by_id[2]["level"] == "public" and "propertyReference" not in by_id[2]
    streams = ids(get(client, "Datastreams", headers=staff))
    assert streams == [1, 2, 3, 4, 5]  # hackney battery (3) at full level, camden's (6) not
    technician = feed_world.headers("tech_hackney")  # feed:public only
    assert ids(get(client, "Datastreams", headers=technician)) == [1, 2, 4, 5]
    bad = client.get(f"{BASE}/Things", headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401
