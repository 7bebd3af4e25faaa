"""The OTA API refuses what the services refuse, with the reason: targets that name no
device or a misspelt key, pins without a reason or to a version that does not exist; it
shows a release's floor and aborts a completed rollout."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from fleet.api.app import create_app
from fleet.core.context import FleetContext
from fleet.models import Device
from fleet.models.ota import VersionPin
from fleet.ota import signing
from fleet.ota.engine import tick
from tests.ota.test_rollout_engine import Recorder, _devices, _report
from tests.ota.test_rollout_rules import _publish


@pytest.fixture
def publisher() -> Recorder:
    return Recorder()


@pytest.fixture
def client(fleet_ctx: FleetContext, publisher: Recorder) -> Iterator[TestClient]:
    with TestClient(create_app(fleet_ctx, commands=publisher)) as c:
        c.headers["Authorization"] = f"Bearer {fleet_ctx.admin_token}"
        yield c


@pytest.fixture
def release_id(fleet_ctx: FleetContext, tmp_path: Path) -> int:
    _devices(fleet_ctx, 2)
    return _publish(fleet_ctx, signing.generate(tmp_path / "keys"), "0.2.0", floor="0.2.0")


def _rollout(client: TestClient, release_id: int, target: dict) -> tuple[int, dict]:
    r = client.post(
        "/api/v1/rollouts",
        json={"release_id": release_id, "target": target, "waves": ["100%"], "soak_s": 0},
    )
    return r.status_code, r.json()


def test_a_rollout_target_must_name_its_devices(client: TestClient, release_id: int) -> None:
    status, body = _rollout(client, release_id, {"boroughId": 1})
    assert status == 422 and body["detail"][0]["loc"] == ["body", "target", "boroughId"]
    status, body = _rollout(client, release_id, {"device_ids": []})
    assert (status, body["detail"]) == (422, "target.device_ids is empty: name at least one device")
    status, body = _rollout(client, release_id, {"device_ids": ["cs-r-000", ""]})
    assert (status, body["detail"]) == (422, "target.device_ids holds a blank device id")
    status, body = _rollout(client, release_id, {})
    assert status == 422 and '"all": true for every device' in body["detail"]
    assert client.get("/api/v1/rollouts").json() == []

    status, body = _rollout(client, release_id, {"all": True})
    assert status == 201 and body["target"] == {"all": True}


def test_releases_show_their_floor(client: TestClient, release_id: int) -> None:
    (release,) = client.get("/api/v1/releases").json()
    assert (release["id"], release["version"], release["floor"]) == (release_id, "0.2.0", "0.2.0")


def test_a_completed_rollout_is_aborted_through_the_api(
    client: TestClient, fleet_ctx: FleetContext, publisher: Recorder, release_id: int
) -> None:
    _, body = _rollout(client, release_id, {"device_ids": ["cs-r-000"]})
    tick(fleet_ctx.sessions, publisher, "http://x")
    _report(fleet_ctx, "cs-r-000", publisher.offers()["cs-r-000"]["id"], "succeeded", app="0.2.0")
    for _ in range(2):
        tick(fleet_ctx.sessions, publisher, "http://x")
    assert client.get(f"/api/v1/rollouts/{body['id']}").json()["state"] == "completed"
    r = client.post(f"/api/v1/rollouts/{body['id']}/abort")
    assert r.status_code == 200 and r.json()["state"] == "aborted"


def test_the_pin_api_checks_what_the_dashboard_checks(
    client: TestClient, fleet_ctx: FleetContext, release_id: int
) -> None:
    with fleet_ctx.sessions.begin() as s:
        s.add(Device(device_id="cs-new-001", state="online"))
    pin = "/api/v1/devices/{}/ota/pin"
    refused = [
        ("cs-r-000", {}, "Field required"),
        ("cs-r-000", {"reason": "  "}, "say why the device is pinned (reason)"),
        ("cs-r-000", {"version": "not a version at all", "reason": "x"}, "is not x.y.z"),
        ("cs-r-000", {"version": "9.9.9-nonexistent", "reason": "x"}, "no release 9.9.9"),
        ("cs-new-001", {"reason": "hold"}, "has not reported a version"),
    ]
    for device, body, why in refused:
        r = client.put(pin.format(device), json=body)
        assert r.status_code == 422 and why in r.text, (body, r.text)
    with fleet_ctx.sessions() as s:
        assert s.scalars(select(VersionPin)).all() == []

    assert client.put(pin.format("cs-r-000"), json={"reason": "tenant"}).status_code == 204
    body = {"reason": "hold", "version": "0.2.0"}
    assert client.put(pin.format("cs-new-001"), json=body).status_code == 204
    with fleet_ctx.sessions() as s:
        assert sorted(s.scalars(select(VersionPin.version))) == ["0.1.0", "0.2.0"]
