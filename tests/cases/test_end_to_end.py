"""End to end: a damp home's sensor data through the real broker and ingest raises the
property's risk and opens a case; better ventilation lowers it and the case shows it.

The data is firmware-shaped SenML (``cs-senml/1``: temperature, humidity and a wall probe's
surface_temperature) published over MQTT with timestamps spread over simulated weeks, and
the risk update is driven with the matching simulated clock, so weeks pass in seconds.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import pytest
from sqlalchemy import func, select

from fleet.core.context import FleetContext, build_context
from fleet.core.settings import Settings
from fleet.ingest.profile import base_name, device_topic
from fleet.models import Device, Reading
from fleet.risk.service.settings import RiskSettings
from fleet.risk.service.sweep import sweep
from tests.cases.rooms import DAMP, FIXED, Room, samples
from tests.fleet.conftest import World
from tests.fleet.server import RunningFleet, running_fleet

DEVICE = "cs-hackney-0001"
PACK_HOURS = 12


@pytest.fixture
def fleet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[RunningFleet]:
    # The background risk worker stays idle: the test drives updates with a simulated clock.
    monkeypatch.setenv("FLEET_RISK_SWEEP_S", "3600")
    ctx: FleetContext = build_context(
        Settings(environment="test", data_dir=tmp_path, embedded_broker_port=0)
    )
    World(ctx)
    try:
        with running_fleet(ctx) as running:
            yield running
    finally:
        ctx.close()


def pack(start: datetime, rows: list[tuple[datetime, float, float, float]]) -> bytes:
    bt = start.timestamp()
    records: list[dict[str, Any]] = []
    for i, (ts, t, rh, tw) in enumerate(rows):
        dt = ts.timestamp() - bt
        first: dict[str, Any] = {"n": "temperature", "u": "Cel", "v": round(t, 2)}
        if i == 0:
            first = {"bn": base_name(DEVICE), "bt": bt, "sv": 1, **first}
        else:
            first["t"] = dt
        records.append(first)
        records.append({"n": "humidity", "u": "%RH", "v": round(rh, 2), "t": dt})
        records.append({"n": "surface_temperature", "u": "Cel", "v": round(tw, 2), "t": dt})
    return json.dumps(records).encode()


def publish(fleet: RunningFleet, room: Room, start: datetime, days: float) -> int:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"e2e-{start.timestamp()}")
    client.connect(fleet.broker.host, fleet.broker.port)
    client.loop_start()
    sent = 0
    try:
        for k in range(int(days * 24 / PACK_HOURS)):
            t = start + timedelta(hours=PACK_HOURS * k)
            rows = list(samples(room, t, PACK_HOURS))
            info = client.publish(device_topic(DEVICE, "up"), pack(t, rows), qos=1)
            info.wait_for_publish(10)
            sent += 3 * len(rows)
    finally:
        client.loop_stop()
        client.disconnect()
    return sent


def wait_for_readings(ctx: FleetContext, expected: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    count = 0
    while time.monotonic() < deadline:
        with ctx.sessions() as s:
            count = s.scalar(select(func.count()).select_from(Reading)) or 0
        if count >= expected:
            return
        time.sleep(0.1)
    raise AssertionError(f"ingest stored {count} of {expected} readings in {timeout}s")


def test_damp_home_opens_case_and_fix_shows_improvement(fleet: RunningFleet) -> None:
    ctx = fleet.ctx
    settings = RiskSettings()
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=30)
    works = start + timedelta(days=15)
    api = httpx.Client(base_url=fleet.base_url, timeout=30)
    with ctx.sessions() as s:
        device = s.scalars(select(Device).where(Device.device_id == DEVICE)).one()
        assert device.placement_id is not None

    # Two damp weeks: cold wall (f_Rsi 0.55) and three showers a day.
    total = publish(fleet, DAMP, start, 14)
    wait_for_readings(ctx, total)
    first = sweep(ctx.sessions, settings, now=start + timedelta(days=14))
    assert first.cases_opened == 1

    admin = {"Authorization": f"Bearer {ctx.admin_token}"}
    cases = api.get("/api/v1/cases", headers=admin).json()
    assert len(cases) == 1
    case = cases[0]
    opened_level = case["trigger"]["level"]
    assert opened_level in ("high", "severe")
    cid = case["id"]
    for step, at in (
        ("investigation", start + timedelta(days=14, hours=3)),
        ("written_summary", start + timedelta(days=14, hours=20)),
        ("safety_work", works),
        ("works_completed", works),
    ):
        r = api.post(
            f"/api/v1/cases/{cid}/steps",
            json={"step": step, "at": at.isoformat(), "note": "extractor fan fitted"},
            headers=admin,
        )
        assert r.status_code == 200, r.text

    # One more damp day before the works, then two weeks with the fan and a warmer wall.
    total += publish(fleet, DAMP, start + timedelta(days=14), 1)
    total += publish(fleet, FIXED, works, 14)
    wait_for_readings(ctx, total)
    second = sweep(ctx.sessions, settings, now=start + timedelta(days=29))
    assert second.placements == 1 and second.cases_opened == 0

    case = api.get(f"/api/v1/cases/{cid}", headers=admin).json()
    comparison = case["comparison"]
    assert comparison["verdict"] == "improved", comparison
    assert comparison["after"]["share_at_risk"] < comparison["before"]["share_at_risk"]
    assert comparison["window_hours"] >= 24 * 13
    assert {d["step"]: d["state"] for d in case["deadlines"]}["investigation"] == "done"
    prop_id = case["property_id"]
    risk = api.get(f"/api/v1/properties/{prop_id}/risk", headers=admin).json()["risk"]
    ranks = ["low", "elevated", "high", "severe"]
    assert ranks.index(risk["level"]) < ranks.index(opened_level)
    assert risk["trend"] in ("falling", "steady")
    evidence = api.get(f"/api/v1/cases/{cid}/evidence", headers=admin)
    assert evidence.status_code == 200
    assert "improved" in evidence.text and "extractor fan fitted" in evidence.text
