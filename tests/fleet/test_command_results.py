"""Commands are kept with the device's answer: sent, then done or failed with its reason, shown
on the device page and the API; a malformed answer is refused with a reason; a command the
broker did not take says so. The last test runs real firmware in the VM."""

from __future__ import annotations

import html
import json
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from fleet.api.app import create_app
from fleet.core.context import FleetContext, build_context
from fleet.core.settings import Settings
from fleet.dashboard.templating import fmt_pairs
from fleet.ingest.handler import IngestHandler
from fleet.models import AuditEntry, Device, DeviceCommand, RejectedMessage
from fleet.registry.devices import register_device
from fleet.simulator import VirtualDevice
from tests.firmware.conftest import wait_until
from tests.fleet.conftest import PASSWORD, World
from tests.fleet.server import RunningFleet, running_fleet

DEV = "cs-hackney-0001"  # World's Hackney device
ACK = f"cs/v1/d/{DEV}/cmd/ack"


class Broker:
    """Takes commands (or refuses them, as a broker connection that is down does)."""

    def __init__(self) -> None:
        self.up = True
        self.sent: list[dict[str, Any]] = []
        self.retained: dict[str, dict[str, Any]] = {}

    def publish(self, topic: str, payload: bytes, *, qos: int, retain: bool = False) -> bool:
        if self.up and retain:
            self.retained[topic] = json.loads(payload)
        elif self.up:
            self.sent.append(json.loads(payload))
        return self.up


@pytest.fixture
def broker() -> Broker:
    return Broker()


@pytest.fixture
def client(fleet_ctx: FleetContext, broker: Broker) -> Iterator[TestClient]:
    with TestClient(create_app(fleet_ctx, commands=broker)) as c:
        yield c


def _ack(command_id: str | None, ok: bool, **extra: Any) -> bytes:
    return json.dumps({"sv": 1, "id": command_id, "ok": ok, **extra}).encode()


def _history(client: TestClient, world: World, who: str = "staff_hackney") -> Any:
    return client.get(f"/api/v1/devices/{DEV}/commands", headers=world.headers(who))


def test_answers_reach_the_command_they_answer(
    fleet_ctx: FleetContext, world: World, client: TestClient, broker: Broker
) -> None:
    staff = world.headers("staff_hackney")
    for op in ("sample-now", "reboot"):
        reply = client.post(f"/api/v1/devices/{DEV}/commands", json={"op": op}, headers=staff)
        assert reply.status_code == 202, reply.text
    sample_id, reboot_id = (c["id"] for c in broker.sent)
    assert [c["state"] for c in _history(client, world).json()] == ["sent", "sent"]

    ingest = IngestHandler(fleet_ctx.sessions, clock=time.time)
    values = {"values": {"temperature": 21.4, "humidity": 55.0}, "sensor_faults": ""}
    outcomes = ingest.handle_batch(
        [
            (ACK, _ack(sample_id, True, result=values)),
            (ACK, _ack(reboot_id, False, error="reboot failed: OSError(5)")),
            (ACK, _ack(sample_id, True, result={"duplicate": True})),  # a redelivery
            (ACK, _ack("config:3", True, result={"version": 3})),  # not a command of ours
            (ACK, _ack(None, False, error="command needs a string 'id'")),
        ]
    )
    assert [o.action for o in outcomes] == ["stored"] * 5
    reboot, sample = _history(client, world).json()  # newest first
    assert (sample["state"], sample["result"], sample["error"]) == ("ok", values, None)
    assert sample["answered_at"] is not None
    assert re.fullmatch(r"token:\d+ \(staff_hackney@example\.org\)", sample["sent_by"])
    assert (reboot["state"], reboot["result"]) == ("failed", None)
    assert reboot["error"] == "reboot failed: OSError(5)"

    client.post("/login", data={"email": "staff_hackney@example.org", "password": PASSWORD})
    page = client.get(f"/devices/{DEV}").text
    rows = dict(re.findall(r'<tr data-command="(\w+)">(.*?)</tr>', html.unescape(page), re.S))
    assert "done" in rows[sample_id] and "temperature: 21.4" not in rows[sample_id]
    assert 'values: {"temperature":21.4,"humidity":55.0}' in rows[sample_id]
    assert "failed" in rows[reboot_id] and "reboot failed: OSError(5)" in rows[reboot_id]

    assert _history(client, world, "staff_camden").status_code == 404  # another borough's


def test_a_malformed_answer_is_refused_with_a_reason(
    fleet_ctx: FleetContext, world: World, client: TestClient
) -> None:
    ingest = IngestHandler(fleet_ctx.sessions, clock=time.time)
    for payload, said in (
        (b'{"sv":1,"id":"x"}', "cmd/ack needs 'ok': true or false"),
        (b'{"sv":1,"id":"x","ok":false}', "a failed cmd/ack needs an 'error' string"),
        (b'{"sv":9,"id":"x","ok":true}', "cmd/ack sv=9"),
        (b'{"sv":1,"id":7,"ok":true}', "cmd/ack 'id' must be a string or null"),
        (b"[]", "cmd/ack must be a JSON object"),
    ):
        outcome = ingest.handle(ACK, payload)
        assert (outcome.action, outcome.detail) == ("rejected", said)
    with fleet_ctx.sessions() as s:
        assert len(s.scalars(select(RejectedMessage)).all()) == 5


def test_a_command_the_broker_did_not_take_says_so(
    fleet_ctx: FleetContext, world: World, client: TestClient, broker: Broker
) -> None:
    broker.up = False
    reply = client.post(
        f"/api/v1/devices/{DEV}/commands",
        json={"op": "identify"},
        headers=world.headers("staff_hackney"),
    )
    assert reply.status_code == 503 and "not sent" in reply.text
    (row,) = _history(client, world).json()
    assert (row["op"], row["state"]) == ("identify", "not_sent")
    with fleet_ctx.sessions() as s:  # audited only when sent
        actions = s.scalars(select(AuditEntry.action).where(AuditEntry.target_id == DEV)).all()
        assert "device.command.identify" not in actions


def test_settings_are_sent_retained_and_the_answer_kept(
    fleet_ctx: FleetContext, world: World, client: TestClient, broker: Broker
) -> None:
    staff = world.headers("staff_hackney")
    url = f"/api/v1/devices/{DEV}/config"
    assert client.get(url, headers=staff).status_code == 404  # as provisioned
    with fleet_ctx.sessions.begin() as s:  # the device runs configuration version 3
        s.scalars(select(Device).where(Device.device_id == DEV)).one().health = {
            "config_version": 3
        }
    for body, said in (
        ({}, "give at least one of"),
        ({"wifi": {"ssid": "x"}}, "'wifi' cannot be set remotely"),
        ({"sample_interval_s": 5}, "sample_interval_s (seconds between measurements) must be"),
        ({"uplink_every": True}, "uplink_every"),
        ({"health_interval_s": "600"}, "health_interval_s"),
    ):
        refused = client.put(url, json=body, headers=staff)
        assert refused.status_code == 422 and said in refused.text, (body, refused.text)
    assert broker.retained == {} and client.get(url, headers=staff).status_code == 404

    first = client.put(url, json={"health_interval_s": 1800}, headers=staff).json()
    assert (first["version"], first["state"]) == (4, "pending")
    second = client.put(url, json={"sample_interval_s": 600}, headers=staff).json()
    assert second["version"] == 5
    topic = f"cs/v1/d/{DEV}/config"
    assert broker.retained[topic] == {
        "version": 5,
        "health_interval_s": 1800,
        "sample_interval_s": 600,
    }

    ingest = IngestHandler(fleet_ctx.sessions, clock=time.time)
    ingest.handle(ACK, _ack("config:4", True, result={"version": 4}))  # an older version
    assert client.get(url, headers=staff).json()["state"] == "pending"
    ingest.handle(ACK, _ack("config:5", True, result={"version": 5, "restart": True}))
    applied = client.get(url, headers=staff).json()
    assert applied["state"] == "applied" and applied["answered_at"] is not None
    with fleet_ctx.sessions() as s:  # liveness expects a report every 600 s now
        assert (
            s.scalars(select(Device).where(Device.device_id == DEV)).one().report_interval_s == 600
        )

    client.put(url, json={"uplink_every": 8}, headers=staff)
    ingest.handle(ACK, _ack("config:6", False, error="config refused, keeping version 5: x"))
    refused_row = client.get(url, headers=staff).json()
    assert refused_row["state"] == "refused"
    assert refused_row["error"] == "config refused, keeping version 5: x"

    client.post("/login", data={"email": "staff_hackney@example.org", "password": PASSWORD})
    page = html.unescape(client.get(f"/devices/{DEV}").text)
    assert "Version 6 (health_interval_s: 1800; sample_interval_s: 600; uplink_every: 8)" in page
    assert "refused" in page and "keeping version 5: x" in page
    assert 'name="sample_interval_s"' in page and 'name="uplink_every"' not in page  # mains
    csrf = re.search(r'name="csrf" value="([^"]+)"', page)
    assert csrf is not None
    form = {"csrf": csrf.group(1), "sample_interval_s": "ten", "health_interval_s": ""}
    said = html.unescape(client.post(f"/devices/{DEV}/config", data=form).text)
    assert "settings not sent: sample_interval_s must be a whole number" in said
    form["sample_interval_s"] = "900"
    said = html.unescape(client.post(f"/devices/{DEV}/config", data=form).text)
    assert "settings version 7 sent" in said
    assert broker.retained[topic]["sample_interval_s"] == 900
    assert client.get(url, headers=world.headers("staff_camden")).status_code == 404
    with fleet_ctx.sessions.begin() as s:
        s.scalars(select(Device).where(Device.device_id == DEV)).one().power_mode = "battery"
    assert 'name="uplink_every"' in client.get(f"/devices/{DEV}").text


def test_liveness_follows_every_part_of_the_cadence(
    fleet_ctx: FleetContext, world: World, client: TestClient
) -> None:
    """A change names only what it changes: "send every 2nd wake" keeps the sampling interval
    the sensor was enrolled with. Provisioned again, the sensor re-applies the retained
    settings, and its answer counts again."""
    device_id = "cs-0a0b0c0d0e0f"
    wifi = client.put(
        "/api/v1/enrolments/wifi-profiles/hackney/default",
        json={"ssid": "Estate-IoT", "password": "correct-horse"},
        headers=world.headers("admin"),
    )
    assert wifi.status_code == 200, wifi.text

    def enrol(sample_s: int) -> None:
        body = {
            "device_id": device_id,
            "borough": "hackney",
            "property_reference": "HACKNEY-0042",
            "room": "bathroom",
            "board": "firebeetle-sht41-ds18b20-2aa",
            "power_mode": "battery",
            "sample_interval_s": sample_s,
            "health_interval_s": 3600,
        }
        done = client.post("/api/v1/enrolments", json=body, headers=world.headers("tech_hackney"))
        assert done.status_code in (200, 201), done.text

    def expected_every() -> int:
        with fleet_ctx.sessions() as s:
            device = s.scalars(select(Device).where(Device.device_id == device_id)).one()
            return device.report_interval_s

    staff = world.headers("staff_hackney")
    url = f"/api/v1/devices/{device_id}/config"
    ingest = IngestHandler(fleet_ctx.sessions, clock=time.time)
    answers = f"cs/v1/d/{device_id}/cmd/ack"
    enrol(600)
    assert expected_every() == 2400  # every 4th wake of 10 minutes: the firmware's default

    version = client.put(url, json={"uplink_every": 2}, headers=staff).json()["version"]
    ingest.handle(answers, _ack(f"config:{version}", True, result={"version": version}))
    assert expected_every() == 1200
    version = client.put(url, json={"health_interval_s": 1800}, headers=staff).json()["version"]
    ingest.handle(answers, _ack(f"config:{version}", True, result={"version": version}))
    assert expected_every() == 1200  # health reports ride on the uplink wakes

    enrol(900)  # a fresh config.json: 15-minute sampling, the default uplink cadence
    assert expected_every() == 3600
    ingest.handle(answers, _ack(f"config:{version}", True, result={"version": version}))
    assert expected_every() == 1800  # the retained settings applied again: every 2nd wake
    assert client.get(url, headers=staff).json()["state"] == "applied"
    known = client.get(f"/api/v1/devices/{device_id}", headers=staff).json()
    assert [known[k] for k in ("sample_interval_s", "health_interval_s", "uplink_every")] == [
        900,
        1800,
        2,
    ]

    client.post("/login", data={"email": "staff_hackney@example.org", "password": PASSWORD})
    page = html.unescape(client.get(f"/devices/{device_id}").text)
    assert "reports every 30 min (measures every 15 min, connects every 2nd wake)" in page
    assert 'name="sample_interval_s" min="10" max="86400"' in page
    assert 'placeholder="now 900"' in page and 'placeholder="now 2"' in page


@pytest.fixture
def live_fleet(tmp_path: Path) -> Iterator[RunningFleet]:
    ctx = build_context(
        Settings(
            environment="test",
            data_dir=tmp_path / "fleet",
            database_url=f"sqlite:///{tmp_path / 'fleet.sqlite3'}",
            embedded_broker_port=0,
        )
    )
    try:
        with running_fleet(ctx) as running:
            yield running
    finally:
        ctx.close()


@pytest.mark.vm
def test_the_firmware_answers_a_command_sent_from_the_api(
    live_fleet: RunningFleet, tmp_path: Path
) -> None:
    world = World(live_fleet.ctx)
    device = VirtualDevice(
        "cs-0a0b0c0d0e01",
        tmp_path / "dev",
        broker_host=live_fleet.broker.host,
        broker_port=live_fleet.broker.port,
        heapsize="160K",
        sample_interval_s=60,
        health_interval_s=60,
    )
    with live_fleet.ctx.sessions.begin() as s:
        register_device(s, device_id=device.device_id, borough_id=world.borough_ids["hackney"])
    api = httpx.Client(
        base_url=live_fleet.base_url, headers=world.headers("staff_hackney"), timeout=30
    )

    def online() -> bool:
        with live_fleet.ctx.sessions() as s:
            row = s.scalars(select(Device).where(Device.device_id == device.device_id)).one()
            return row.state == "online"

    def answered() -> dict[str, Any] | None:
        (row,) = api.get(f"/api/v1/devices/{device.device_id}/commands").json()
        return row if row["state"] != "sent" else None

    with device:
        wait_until(online, 60, "the device to come online")
        sent = api.post(f"/api/v1/devices/{device.device_id}/commands", json={"op": "sample-now"})
        assert sent.status_code == 202, sent.text
        row = wait_until(answered, 60, "the device's answer")
    assert row["state"] == "ok" and row["command_id"] == sent.json()["id"]
    assert set(row["result"]["values"]) >= {"temperature", "humidity"}

    # Settings: published retained, applied by the firmware (it restarts to), answered.
    def settled() -> dict[str, Any] | None:
        got = api.get(f"/api/v1/devices/{device.device_id}/config").json()
        return got if got["state"] != "pending" else None

    def running(version: int) -> Callable[[], bool]:
        def check() -> bool:
            with live_fleet.ctx.sessions() as s:
                row = s.scalars(select(Device).where(Device.device_id == device.device_id)).one()
                return (row.health or {}).get("config_version") == version

        return check

    with device:
        wait_until(online, 60, "the device to come back")
        changed = api.put(
            f"/api/v1/devices/{device.device_id}/config", json={"sample_interval_s": 30}
        )
        assert changed.status_code == 202, changed.text
        version = changed.json()["version"]
        answer = wait_until(settled, 90, "the device's answer to its new settings")
        assert answer["state"] == "applied", answer
        wait_until(running(version), 90, "health from the device on its new settings")
    assert json.loads((device.device_dir / "config.json").read_text())["sample_interval_s"] == 30
    with live_fleet.ctx.sessions() as s:
        stored = s.scalars(select(DeviceCommand)).one()
        assert stored.answered_at is not None and stored.answered_at >= stored.sent_at


def test_an_answer_reads_as_a_person_would_write_it() -> None:
    answer = {"sensor_faults": "", "values": {"temperature": 20.95178149, "humidity": 51.3}}
    assert fmt_pairs(answer) == 'values: {"temperature":20.95,"humidity":51.3}'
    assert fmt_pairs({"version": 5, "restart": True}) == "version: 5; restart: true"
    assert fmt_pairs(None) == "" and fmt_pairs("as sent") == "as sent"
