"""No public answer (REST, MQTT feed, export, register, standard) leaks a known secret."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from fleet.feed import snapshot
from fleet.feed.live import NewReading, messages_for
from fleet.feed.sta.schema import SETS
from fleet.models import Placement, Reading
from tests.feed.conftest import SECRETS, SERVICE_ROOT, FeedWorld

EXPAND_ALL = (
    "$expand=Locations($expand=HistoricalLocations),HistoricalLocations,"
    "Datastreams($expand=Sensor,ObservedProperty,Observations($top=1000;$expand=FeatureOfInterest))"
)


TENANT_IN_ROOM_NAME = "Amy Smith"


def secrets() -> list[str]:
    found: list[str] = [TENANT_IN_ROOM_NAME]
    for secret in SECRETS.values():
        postcode = str(secret["postcode"])
        found += [
            str(secret["reference"]),
            str(secret["address"]),
            str(secret["device_id"]),
            postcode,
            postcode.replace(" ", ""),
            f"{secret['lat']:.4f}",
            f"{secret['lon']:.4f}",
        ]
    return found


def assert_clean(where: str, text: str) -> None:
    leaked = [s for s in secrets() if s.lower() in text.lower()]
    assert not leaked, f"{where} leaks {leaked}"


def public_texts(client: TestClient, world: FeedWorld) -> dict[str, str]:
    texts: dict[str, str] = {}

    def fetch(path: str) -> None:
        response = client.get(path)
        assert response.status_code == 200, (path, response.text)
        texts[path] = response.text

    fetch("/sta/v1.1")
    for name in SETS:
        fetch(f"/sta/v1.1/{name}?$top=1000")
        body = client.get(f"/sta/v1.1/{name}?$top=1000").json()
        for entity in body["value"]:
            fetch(f"/sta/v1.1/{name}({entity['@iot.id']})")
    fetch(f"/sta/v1.1/Things?{EXPAND_ALL}")
    fetch("/sta/v1.1/Observations?$resultFormat=dataArray&$top=1000")
    for code in ("hackney", "camden"):
        fetch(f"/feed/v1/export.csv?borough={code}&start=2025-01-01&end=2026-01-01")
    fetch("/register")
    fetch("/standards")
    for name in ("privacy.md", "catalogue.json", "asyncapi-feed.yaml"):
        fetch(f"/standards/{name}")
    snapshot.sync_committed(world.ctx.sessions)
    with world.ctx.sessions() as s:
        rows = s.execute(
            select(Reading.id, Reading.device_pk, Reading.metric, Reading.ts, Reading.value)
        ).all()
        snap = snapshot.load(s)
    messages = messages_for([NewReading(*r) for r in rows], snap, service_root=SERVICE_ROOT)
    assert messages, "the seeded readings must produce feed messages"
    for topic, payload in messages:
        texts[f"mqtt {topic}"] = topic + "\n" + payload.decode()
    return texts


def test_no_public_output_contains_a_secret(client: TestClient, feed_world: FeedWorld) -> None:
    # Staff type room names freely; a tenant's name in one must not reach the feed.
    with feed_world.ctx.sessions.begin() as s:
        for placement in s.scalars(select(Placement)):
            placement.room = f"Bedroom 2 ({TENANT_IN_ROOM_NAME}'s)"
    # Hackney publishes ~1 km grid cells, so real (coarsened) geometry is in the output too.
    staff = feed_world.headers("staff_hackney")
    response = client.put(
        "/api/v1/feed/policies/hackney", json={"location_precision": "grid_1km"}, headers=staff
    )
    assert response.status_code == 200, response.text
    texts = public_texts(client, feed_world)
    assert any('"Polygon"' in t for t in texts.values())
    assert any("NW1" in t for t in texts.values())  # Camden: postcode district only
    assert any("sensor in a bedroom" in t for t in texts.values())
    for where, text in texts.items():
        assert_clean(where, text)


def test_the_scan_would_catch_a_leak(client: TestClient, feed_world: FeedWorld) -> None:
    """The full level shows the secrets to the borough's own staff, so the scan has teeth."""
    staff = feed_world.headers("staff_hackney")
    text = client.get(f"/sta/v1.1/Things?{EXPAND_ALL}", headers=staff).text
    assert "HACKNEY-0001" in text and "cs-hackney-0001" in text
    assert "CAMDEN-0001" not in text  # the other borough stays at the public level
    export = client.get(
        "/feed/v1/export.csv?borough=hackney&start=2025-01-01&end=2026-01-01", headers=staff
    )
    assert "HACKNEY-0001" in export.text
