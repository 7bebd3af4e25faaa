"""An alert storm stays reachable: the API pages through every alert, the dashboard pages and
counts them, and acting on an old alert names its device."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert, select

from fleet.api.app import create_app
from fleet.core.context import FleetContext
from fleet.models import Alert, Device
from fleet.models.base import utcnow
from fleet.registry.devices import register_device
from tests.fleet.conftest import PASSWORD, World


@pytest.fixture
def client(fleet_ctx: FleetContext) -> Iterator[TestClient]:
    with TestClient(create_app(fleet_ctx)) as c:
        yield c


def storm(ctx: FleetContext, world: World, count: int) -> list[int]:
    """``count`` open alerts on as many Hackney devices, oldest first; alerts opened in the
    same second come in threes so the order needs its tie-breaker."""
    hackney = world.borough_ids["hackney"]
    start = utcnow() - timedelta(days=1)
    with ctx.sessions.begin() as s:
        devices = [
            register_device(s, device_id=f"cs-storm-{n:04d}", borough_id=hackney)
            for n in range(count)
        ]
        s.flush()
        s.execute(
            insert(Alert),
            [
                {
                    "device_pk": d.id,
                    "borough_id": hackney,
                    "rule": "offline",
                    "severity": "warning",
                    "state": "open",
                    "message": "no uplink",
                    "opened_at": start + timedelta(seconds=n // 3),
                    "last_seen_at": start,
                }
                for n, d in enumerate(devices)
            ],
        )
    with ctx.sessions() as s:
        return list(s.scalars(select(Alert.id).order_by(Alert.opened_at, Alert.id)))


def next_link(response) -> str | None:  # type: ignore[no-untyped-def]
    match = re.fullmatch(r'<([^>]+)>; rel="next"', response.headers.get("link", ""))
    return match.group(1) if match else None


def test_the_api_reaches_every_alert_by_following_next_links(
    fleet_ctx: FleetContext, world: World, client: TestClient
) -> None:
    ids = storm(fleet_ctx, world, 25)
    h = world.headers("staff_hackney")
    seen: list[int] = []
    totals: list[str] = []
    url: str | None = "/api/v1/alerts?limit=4&state=open&state=acknowledged"
    while url is not None:
        response = client.get(url, headers=h)
        assert response.status_code == 200
        totals.append(response.headers["x-total-count"])
        page = response.json()
        assert 1 <= len(page) <= 4
        seen += [a["id"] for a in page]
        assert all(a["device_id"].startswith("cs-storm-") for a in page)
        if len(seen) == 8:
            # An alert already listed is resolved between pages: no later alert is skipped.
            assert client.post(f"/api/v1/alerts/{seen[0]}/resolve", headers=h).status_code == 200
        url = next_link(response)
    assert totals == ["25", "25"] + ["24"] * 5
    assert seen == list(reversed(ids))  # newest first, each once, none missed
    assert client.get("/api/v1/alerts?after=nonsense", headers=h).status_code == 422
    # Another borough's staff count none of them.
    other = client.get("/api/v1/alerts", headers=world.headers("staff_camden"))
    assert (other.json(), other.headers["x-total-count"]) == ([], "0")


def test_acting_on_an_old_alert_names_its_device(
    fleet_ctx: FleetContext, world: World, client: TestClient
) -> None:
    ids = storm(fleet_ctx, world, 1002)  # the oldest is behind a thousand newer ones
    h = world.headers("staff_hackney")
    with fleet_ctx.sessions() as s:
        oldest = s.get(Alert, ids[0])
        assert oldest is not None
        device_id = s.scalars(select(Device.device_id).where(Device.id == oldest.device_pk)).one()
    answer = client.post(f"/api/v1/alerts/{ids[0]}/acknowledge", headers=h).json()
    assert (answer["state"], answer["device_id"]) == ("acknowledged", device_id)
    answer = client.post(f"/api/v1/alerts/{ids[1]}/resolve", headers=h).json()
    assert answer["device_id"] == "cs-storm-0001"


def test_the_alerts_page_counts_and_pages_a_storm(
    fleet_ctx: FleetContext, world: World, client: TestClient
) -> None:
    ids = storm(fleet_ctx, world, 520)
    client.post("/login", data={"email": "staff_hackney@example.org", "password": PASSWORD})
    first = client.get("/alerts").text
    assert "<caption>520 alerts · page 1 of 6</caption>" in first
    assert first.count("<tr data-alert=") == 100
    assert 'rel="next" href="?show=live&amp;page=2"' in first or 'href="?show=live&page=2"' in first
    last = client.get("/alerts?page=6").text
    rows = [int(i) for i in re.findall(r'<tr data-alert="(\d+)">', last)]
    assert rows == list(reversed(ids[:20]))  # the oldest alerts are there, not cut off
    past = client.get("/alerts?page=9", follow_redirects=False)
    assert past.status_code == 303 and past.headers["location"] == "/alerts?page=6"
    # Acting on an alert returns to the page it was on.
    token = re.search(r'name="csrf" value="([^"]+)"', last)
    assert token is not None
    done = client.post(
        f"/alerts/{ids[0]}/acknowledge",
        data={"csrf": token.group(1), "show": "live", "page": "6"},
        follow_redirects=False,
    )
    assert done.headers["location"] == "/alerts?show=live&page=6"
