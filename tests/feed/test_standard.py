"""The published standard (fleet/feed/standard/) stays in step with the code, and is served,
also from an installed package."""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import urljoin

import yaml
from fastapi.testclient import TestClient
from jsonschema import Draft202012Validator

from fleet.feed.catalogue import METRICS, SENSORS, STANDARD_VERSION
from fleet.feed.live import NewReading, messages_for
from fleet.feed.snapshot import load, sync_committed
from fleet.ingest.profile import METRIC_UNITS
from fleet.models import Reading
from tests.feed.conftest import SERVICE_ROOT, FeedWorld

STANDARDS = Path(__file__).resolve().parents[2] / "fleet" / "feed" / "standard"


def test_catalogue_is_the_ingest_profile() -> None:
    assert {m.name: m.senml_unit for m in METRICS} == METRIC_UNITS
    assert len({m.id for m in METRICS}) == len(METRICS)
    for sensor in SENSORS:
        assert set(sensor.metrics) <= set(METRIC_UNITS)


def test_catalogue_json_and_markdown_match_the_code() -> None:
    doc = json.loads((STANDARDS / "catalogue.json").read_text())
    assert doc["version"] == STANDARD_VERSION
    assert [
        (p["id"], p["name"], p["senmlUnit"], p["definition"], p["unitOfMeasurement"]["definition"])
        for p in doc["observedProperties"]
    ] == [(m.id, m.name, m.senml_unit, m.definition, m.unit_definition) for m in METRICS]
    assert [(s["id"], s["name"], s["metadata"]) for s in doc["sensors"]] == [
        (s.id, s.name, s.datasheet) for s in SENSORS
    ]
    table = re.findall(
        r"^\| (\d+) \| `([a-z_0-9]+)` \| `([^`]+)` \|.*<([^>]+)>",
        (STANDARDS / "catalogue.md").read_text(),
        re.M,
    )
    assert table == [(str(m.id), m.name, m.senml_unit, m.definition) for m in METRICS]


def test_version_is_in_the_changelog_and_readme() -> None:
    assert f"## {STANDARD_VERSION}" in (STANDARDS / "CHANGELOG.md").read_text()
    assert f"version {STANDARD_VERSION}" in (STANDARDS / "README.md").read_text()


def _validators() -> dict[str, Draft202012Validator]:
    doc = yaml.safe_load((STANDARDS / "asyncapi-feed.yaml").read_text())
    assert doc["asyncapi"].startswith("3.")
    found: dict[str, Draft202012Validator] = {}
    for channel in doc["channels"].values():
        (message,) = channel["messages"].values()
        name = message["$ref"].rsplit("/", 1)[1]
        ref = doc["components"]["messages"][name]["payload"]["schema"]["$ref"]
        schema = json.loads((STANDARDS / ref).read_text())
        Draft202012Validator.check_schema(schema)
        pattern = re.escape(channel["address"])
        pattern = re.sub(r"\\\{[a-z_]+\\\}", "[^/]+", pattern)
        found[pattern] = Draft202012Validator(schema)
    return found


def test_real_feed_messages_match_the_documented_schemas(feed_world: FeedWorld) -> None:
    validators = _validators()
    sync_committed(feed_world.ctx.sessions)
    with feed_world.ctx.sessions() as s:
        rows = s.query(
            Reading.id, Reading.device_pk, Reading.metric, Reading.ts, Reading.value
        ).all()
        snap = load(s)
    messages = messages_for([NewReading(*r) for r in rows], snap, service_root=SERVICE_ROOT)
    topics = set()
    for topic, payload in messages:
        matching = [v for p, v in validators.items() if re.fullmatch(p, topic)]
        assert len(matching) == 1, f"{topic} is not documented in asyncapi-feed.yaml"
        matching[0].validate(json.loads(payload))
        topics.add(re.sub(r"\(\d+\)|/\d+$", lambda m: "(N)" if "(" in m[0] else "/N", topic))
    assert topics == {
        "v1.1/Datastreams(N)/Observations",
        "v1.1/FeaturesOfInterest(N)/Observations",
        "v1.1/Observations",
        "cs/v1/feed/public/ds/N",
        "cs/v1/feed/full/hackney/ds/N",
        "cs/v1/feed/full/camden/ds/N",
    }


def test_standard_is_served_without_sign_in(client: TestClient) -> None:
    index = client.get("/standards")
    assert index.status_code == 200 and "<table>" in index.text and "cs-feed" in index.text
    page = client.get("/standards/privacy.md")
    assert page.status_code == 200 and "<h1>" in page.text
    raw = client.get("/standards/privacy.md?raw=1")
    assert raw.text == (STANDARDS / "privacy.md").read_text()
    schema = client.get("/standards/schemas/feed-senml.schema.json")
    assert schema.json()["title"].startswith("SenML feed pack")
    assert client.get("/standards/../../pyproject.toml").status_code == 404
    assert client.get("/standards/nothing.md").status_code == 404


def test_register_lists_deployed_sensors_by_area(client: TestClient) -> None:
    page = client.get("/register")
    assert page.status_code == 200
    assert "Hackney" in page.text and "Camden" in page.text
    assert "E8" in page.text and "NW1" in page.text
    assert "Air temperature" in page.text and "730 days" in page.text
    assert "Detect sustained damp conditions" in page.text
    assert 'href="/sta/v1.1/Things(1)"' in page.text


def test_every_link_of_the_standard_pages_resolves(client: TestClient) -> None:
    index = client.get("/standards", follow_redirects=False)
    assert index.status_code == 308 and index.headers["location"] == "/standards/"
    pages = ["/standards/", "/standards/sensorthings.md", "/standards/privacy.md"]
    for page in pages:
        response = client.get(page)
        assert response.status_code == 200, page
        hrefs = re.findall(r'href="([^"]+)"', response.text)
        assert hrefs, page
        for href in hrefs:
            target = urljoin(f"http://testserver{page}", href)
            if not target.startswith("http://testserver/"):
                continue
            assert client.get(target).status_code == 200, (page, href)
