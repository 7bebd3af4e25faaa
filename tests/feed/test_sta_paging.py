"""Following @iot.nextLink while readings arrive or are deleted: no repeats, no gaps."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from fastapi.testclient import TestClient
from sqlalchemy import delete, select

from fleet.models import Device, Reading
from tests.feed.conftest import POINTS, STEP, T0, FeedWorld

BASE = "/sta/v1.1"


def walk(client: TestClient, first: str, between: Any = None) -> list[dict[str, Any]]:
    """Every Observation met following nextLinks; ``between`` runs after the first page."""
    link: str | None = first
    seen: list[dict[str, Any]] = []
    while link is not None:
        parts = urlsplit(link)
        response = client.get(f"{parts.path}?{parts.query}")
        assert response.status_code == 200, response.text
        body = response.json()
        seen += body["value"]
        link = body.get("@iot.nextLink")
        if between is not None:
            between()
            between = None
    return seen


def add_readings(world: FeedWorld, count: int, *, start: int, value: float) -> None:
    with world.ctx.sessions.begin() as s:
        device = s.scalars(select(Device).where(Device.device_id == "cs-hackney-0001")).one()
        for i in range(count):
            s.add(
                Reading(
                    device_pk=device.id,
                    metric="temperature",
                    ts=T0 + (start + i) * STEP,
                    value=value + i * 0.01,
                    unit="Cel",
                )
            )


def ids(items: list[dict[str, Any]]) -> list[int]:
    return [o["@iot.id"] for o in items]


def test_latest_first_paging_is_not_shifted_by_new_readings(
    client: TestClient, feed_world: FeedWorld
) -> None:
    before = ids(walk(client, f"{BASE}/Observations?$top=1000"))
    seen = walk(
        client,
        f"{BASE}/Observations?$orderby=phenomenonTime desc&$top=7",
        lambda: add_readings(feed_world, 10, start=POINTS, value=25.0),  # newest of all
    )
    assert len(ids(seen)) == len(set(ids(seen)))
    assert set(before) <= set(ids(seen))
    times = [o["phenomenonTime"] for o in seen]
    assert times == sorted(times, reverse=True)


def test_paging_by_result_is_not_shifted_by_new_or_deleted_readings(
    client: TestClient, feed_world: FeedWorld
) -> None:
    before = walk(client, f"{BASE}/Observations?$top=1000")
    first_page = sorted(before, key=lambda o: (o["result"], o["@iot.id"]))[:7]

    def change() -> None:
        add_readings(feed_world, 5, start=-10, value=0.5)  # sort before everything
        with feed_world.ctx.sessions.begin() as s:  # e.g. the retention purge
            s.execute(delete(Reading).where(Reading.id.in_(ids(first_page))))

    seen = walk(client, f"{BASE}/Observations?$orderby=result&$top=7", change)
    assert len(ids(seen)) == len(set(ids(seen)))
    assert set(ids(before)) <= set(ids(seen))
    assert [o["result"] for o in seen] == sorted(o["result"] for o in seen)


def test_next_links_carry_a_token_and_a_foreign_token_is_400(client: TestClient) -> None:
    body = client.get(f"{BASE}/Datastreams(1)/Observations?$orderby=result desc&$top=5").json()
    assert "$skiptoken=" in body["@iot.nextLink"] and "$skip=" not in body["@iot.nextLink"]
    for token in ("nonsense", "W10", "WyJ4Il0"):  # not base64 JSON, [], ["x"]
        response = client.get(f"{BASE}/Observations?$skiptoken={token}")
        assert response.status_code == 400, response.text
        assert "$skiptoken" in response.json()["message"]


def test_ordering_on_an_expression_still_pages_by_offset(client: TestClient) -> None:
    first = f"{BASE}/Datastreams(1)/Observations?$orderby=result add 1&$top=5"
    body = client.get(first).json()
    assert "$skip=5" in body["@iot.nextLink"]
    assert len(walk(client, first)) == POINTS
