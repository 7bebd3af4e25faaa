"""HEAD on every feed URL, dataArray columns in $select order, and when a Thing was placed."""

from __future__ import annotations

from fastapi.testclient import TestClient

BASE = "/sta/v1.1"
EXPORT = "/feed/v1/export.csv?borough=hackney&start=2025-01-01&end=2026-01-01"


def test_head_answers_as_get_without_a_body(client: TestClient) -> None:
    for path in (
        BASE,
        f"{BASE}/Things",
        f"{BASE}/Datastreams(1)/Observations?$top=2",
        f"{BASE}/Datastreams(1)/name/$value",
        "/standards/",
        "/standards/privacy.md",
        "/standards/catalogue.json",
        EXPORT,
    ):
        get = client.get(path)
        head = client.head(path)
        assert head.status_code == get.status_code == 200, (path, head.status_code)
        assert head.headers["content-type"] == get.headers["content-type"], path
    export = client.head(EXPORT)
    assert export.content == b""
    assert (
        export.headers["content-disposition"] == client.get(EXPORT).headers["content-disposition"]
    )
    missing = client.head(f"{BASE}/Things(99)")
    assert missing.status_code == 404
    assert client.head(f"{BASE}/Things", headers={"Authorization": "Bearer x"}).status_code == 401


def test_data_array_components_follow_select(client: TestClient) -> None:
    path = "Datastreams(1)/Observations?$resultFormat=dataArray&$top=1"
    (group,) = client.get(f"{BASE}/{path}&$select=result,phenomenonTime").json()["value"]
    assert group["components"] == ["result", "phenomenonTime"]
    assert group["dataArray"] == [[18.0, "2025-03-01T00:00:00Z"]]
    (group,) = client.get(f"{BASE}/{path}&$select=phenomenonTime,id,result").json()["value"]
    assert group["components"] == ["phenomenonTime", "id", "result"]


def test_a_thing_is_placed_no_later_than_its_first_observation(client: TestClient) -> None:
    # The devices were enrolled after the seeded readings were taken (as a device's buffered
    # readings can be): the first Thing of a device holds them, so it began by the first.
    for thing in (1, 2):
        placed = client.get(f"{BASE}/HistoricalLocations({thing})").json()["time"]
        first = client.get(
            f"{BASE}/Things({thing})/Datastreams?$expand=Observations($top=1;$orderby=phenomenonTime)"
        ).json()["value"][0]["Observations"][0]["phenomenonTime"]
        assert placed == first == "2025-03-01T00:00:00Z"
