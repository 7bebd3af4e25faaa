"""End to end with a real device: the firmware in the MicroPython VM, on the battery board with
a wall probe (SHT41 air, DS18B20 surface), lives in a simulated damp bathroom (cold wall, humid
air, three long moisture events a day). Its readings go through Mosquitto and the fleet's
ingest into PostgreSQL; the risk engine raises the property to the case level and opens a
case. Staff record the investigation and, when an extractor fan is fitted (the room model
switches to better ventilation), the works; days later the level has fallen and the case's
before/after comparison shows the improvement.

The device samples hourly and uplinks every fourth wake, with simulated time accelerated
while it sleeps (sim.json ``time_scale``), so five days pass in well under a minute; they end
just before now because the fleet refuses readings from the future. The risk engine runs on
the device's clock, once per simulated hour, as the fleet's worker runs on the wall clock.

Two damp days raise the level through the Approved Document F room-RH rules and the mould
isopleth (LIM) share; three ventilated days bring the LIM share under half while the ADF
episodes stay on as evidence for two weeks, so the level falls one step, not to low.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from fleet.broker.url import BrokerAddress
from fleet.core.context import build_context
from fleet.core.settings import Settings
from fleet.models import Reading, RiskLevelChange
from fleet.risk.level import RiskLevel
from fleet.risk.service.settings import RiskSettings
from fleet.risk.service.sweep import sweep
from fleet.simulator import VirtualDevice
from tests.fleet.server import RunningFleet, running_fleet
from tests.sim.fleetsink import last_finished_uplink

pytestmark = [pytest.mark.vm, pytest.mark.mosquitto, pytest.mark.postgres]

BOARD = "firebeetle-sht41-ds18b20-2aa"
SAMPLE_S = 3600
UPLINK_EVERY = 4  # every 4 h, plus when RH crosses 85 %
TIME_SCALE = 100000
DAMP_DAYS = 2
VENTILATED_DAYS = 3
PASSWORD = "correct horse battery staple"

# (start hour UTC, spread h, RH rise %, decay min, temperature rise °C): morning shower,
# a midday load of washing drying indoors, evening cooking and a bath.
DAMP_ROOM: dict[str, Any] = {
    "t_mean": 18.5,
    "t_amp": 1.5,
    "rh_base": 80.0,
    "f_rsi": 0.45,  # a cold solid wall: well under the 0.75 design target
    "t_out": 7.0,
    "events": [[7, 1, 30, 120, 0.8], [13, 1, 25, 120, 0.8], [19, 1, 30, 120, 1.2]],
}
# An extractor fan and trickle vents: drier air, small short peaks. The wall is unchanged.
VENTILATED_ROOM: dict[str, Any] = {
    **DAMP_ROOM,
    "rh_base": 40.0,
    "events": [[7, 1, 10, 20, 0.5], [13, 1, 8, 20, 0.5], [19, 1, 10, 20, 0.5]],
}


@pytest.fixture
def fleet(
    tmp_path: Path,
    postgres_url: str,
    mosquitto: BrokerAddress,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[RunningFleet]:
    # The background worker runs on the wall clock and stays idle here: the test runs the
    # same sweep on the device's simulated clock.
    monkeypatch.setenv("FLEET_RISK_SWEEP_S", "3600")
    ctx = build_context(
        Settings(
            environment="test",
            data_dir=tmp_path / "fleet",
            database_url=postgres_url,
            mqtt_url=mosquitto.url,
        )
    )
    try:
        with running_fleet(ctx) as running:
            yield running
    finally:
        ctx.close()


@dataclass
class Deployment:
    """The property and the people around it, set up through the API."""

    staff: httpx.Client
    property_id: int
    placement_id: int


def sign_in(base_url: str, email: str, scopes: list[str]) -> httpx.Client:
    """Sign in on the dashboard, create an API token, and return a client that uses it."""
    with httpx.Client(base_url=base_url, timeout=30) as web:
        r = web.post("/login", data={"email": email, "password": PASSWORD, "next": "/"})
        assert r.status_code == 303, r.text
        r = web.post("/api/v1/tokens", json={"name": "e2e", "scopes": scopes})
        assert r.status_code == 201, r.text
        token = r.json()["token"]
    return httpx.Client(base_url=base_url, timeout=30, headers={"Authorization": f"Bearer {token}"})


def deploy(fleet: RunningFleet, device_id: str) -> Deployment:
    """An admin opens the borough and its accounts; staff register the home and its bathroom;
    a technician registers the sensor; staff install it at the bathroom's cold wall."""
    admin = httpx.Client(
        base_url=fleet.base_url,
        timeout=30,
        headers={"Authorization": f"Bearer {fleet.ctx.admin_token}"},
    )
    r = admin.post("/api/v1/boroughs", json={"code": "hackney", "name": "Hackney"})
    assert r.status_code == 201, r.text
    for who, role in (("officer", "staff"), ("tech", "technician")):
        r = admin.post(
            "/api/v1/users",
            json={
                "email": f"{who}@hackney.example.org",
                "name": who,
                "role": role,
                "password": PASSWORD,
                "boroughs": ["hackney"],
            },
        )
        assert r.status_code == 201, r.text
    staff = sign_in(
        fleet.base_url,
        "officer@hackney.example.org",
        ["devices:read", "registry:write", "alerts:write"],
    )
    tech = sign_in(fleet.base_url, "tech@hackney.example.org", ["devices:read", "devices:write"])

    estate = staff.post("/api/v1/boroughs/hackney/estates", json={"name": "Rowan Estate"})
    assert estate.status_code == 201, estate.text
    prop = staff.post(
        "/api/v1/boroughs/hackney/properties",
        json={
            "reference": "HK-000123",
            "estate_id": estate.json()["id"],
            "housing_type": "flat",
            "construction_age_band": "1945-1964",
            "floor": 2,
            "address": "12 Rowan House",
        },
    )
    assert prop.status_code == 201, prop.text
    property_id = prop.json()["id"]
    placement = staff.post(
        f"/api/v1/properties/{property_id}/placements",
        json={"room": "bathroom", "position": "north wall, surface probe on the cold corner"},
    )
    assert placement.status_code == 201, placement.text
    placement_id = placement.json()["id"]
    r = tech.post(
        "/api/v1/devices",
        json={
            "device_id": device_id,
            "board": BOARD,
            "borough": "hackney",
            "power_mode": "battery",
            "report_interval_s": SAMPLE_S * UPLINK_EVERY,
        },
    )
    assert r.status_code == 201, r.text
    r = staff.put(f"/api/v1/devices/{device_id}/placement", json={"placement_id": placement_id})
    assert r.status_code == 200, r.text
    admin.close()
    tech.close()
    return Deployment(staff, property_id, placement_id)


def record(staff: httpx.Client, case_id: int, step: str, at: datetime, note: str) -> None:
    r = staff.post(
        f"/api/v1/cases/{case_id}/steps", json={"step": step, "at": at.isoformat(), "note": note}
    )
    assert r.status_code == 200, r.text


def utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def test_vm_damp_room_opens_case_and_ventilation_fix_shows_improvement(
    fleet: RunningFleet, micropython_bin: Path, tmp_path: Path
) -> None:
    ctx = fleet.ctx
    settings = RiskSettings()
    start = time.time() - (DAMP_DAYS + VENTILATED_DAYS) * 86400 - 600
    works_due = start + DAMP_DAYS * 86400
    end = works_due + VENTILATED_DAYS * 86400
    dev = VirtualDevice(
        data_dir=tmp_path / "devices",
        seed=123,
        board=BOARD,
        broker_port=fleet.broker.port,
        sample_interval_s=SAMPLE_S,
        health_interval_s=SAMPLE_S * UPLINK_EVERY,
        time_scale=TIME_SCALE,
        clock_start=start,
        room=DAMP_ROOM,
        config={"uplink_every": UPLINK_EVERY},
        heapsize="256K",
    )
    home = deploy(fleet, dev.device_id)
    staff = home.staff
    assert staff.get(f"/api/v1/properties/{home.property_id}/risk").json()["risk"] is None
    dev.build_dir()  # compile before the clock starts running

    case_id: int | None = None
    works_at: datetime | None = None
    swept = start
    deadline = time.monotonic() + 300  # a guard against a hang; a run takes about half a minute
    try:
        dev.start()
        while (now := dev.room_time()) < end:
            assert dev.is_running, dev.log_path.read_text()[-3000:]
            assert time.monotonic() < deadline, f"simulated time reached {utc(now)} of {utc(end)}"
            if now - swept >= 3600:
                sweep(ctx.sessions, settings, now=utc(now))
                swept = now
                if case_id is None:
                    cases = staff.get("/api/v1/cases", params={"borough": "hackney"}).json()
                    if cases:
                        case_id = cases[0]["id"]
                        # The officer visits the same day: damp staining by the window, a
                        # bathroom without a working extractor fan.
                        record(staff, case_id, "investigation", utc(now), "no working fan")
            if works_at is None and now >= works_due:
                assert case_id is not None, "no case opened during the damp days"
                dev.set_room(VENTILATED_ROOM)
                works_at = utc(now)
                record(staff, case_id, "works_completed", works_at, "extractor fan fitted")
            time.sleep(0.02)
    finally:
        dev.stop()
    assert case_id is not None and works_at is not None

    # Everything the device sent before it was switched off is stored, then the last pass.
    cutoff = last_finished_uplink(dev)
    uplinked = [
        r
        for r in dev.readings()
        if r["sensor"] == "sht4x" and r["precision"] != "heater" and r["ts"] < cutoff
    ]

    def stored_humidity() -> int:
        with ctx.sessions() as s:
            return (
                s.scalar(
                    select(func.count()).select_from(Reading).where(Reading.metric == "humidity")
                )
                or 0
            )

    limit = time.monotonic() + 20
    while stored_humidity() < len(uplinked):
        assert time.monotonic() < limit, f"{stored_humidity()} of {len(uplinked)} stored"
        time.sleep(0.1)
    sweep(ctx.sessions, settings, now=utc(end))

    # The case: opened by the risk engine at the configured level, during the damp days.
    case = staff.get(f"/api/v1/cases/{case_id}").json()
    assert case["source"] == "risk" and case["status"] == "open"
    opened = RiskLevel(case["trigger"]["level"])
    assert opened.rank >= RiskLevel(settings.case_level).rank
    aware = datetime.fromisoformat(case["steps"]["aware"])
    assert utc(start) < aware < works_at
    assert {d["step"]: d["state"] for d in case["deadlines"]}["investigation"] == "done"

    # The risk rose to that level and has fallen since the fan went in.
    with ctx.sessions() as s:
        history = s.execute(
            select(RiskLevelChange.at, RiskLevelChange.to_level)
            .where(RiskLevelChange.property_id == home.property_id)
            .order_by(RiskLevelChange.at)
        ).all()
    assert max(RiskLevel(level).rank for _, level in history) >= opened.rank
    risk = staff.get(f"/api/v1/properties/{home.property_id}/risk").json()["risk"]
    assert RiskLevel(risk["level"]).rank < opened.rank, risk
    fell_at, last_level = history[-1]
    assert fell_at > works_at and last_level == risk["level"], history
    assert risk["trend"] != "rising"

    # The hours were computed from the wall probe, not estimated.
    hours = staff.get(
        f"/api/v1/properties/{home.property_id}/risk/hours",
        params={"since": utc(start).isoformat(), "until": utc(end).isoformat()},
    ).json()
    assert len(hours) >= (DAMP_DAYS + VENTILATED_DAYS - 0.5) * 24  # all but the queued tail
    assert not any(h["surface_estimated"] for h in hours)

    # Before and after: fewer hours at risk, drier air and wall, no further mould growth.
    comparison = case["comparison"]
    before, after = comparison["before"], comparison["after"]
    assert comparison["verdict"] == "improved", comparison
    assert comparison["window_hours"] >= 24 * (VENTILATED_DAYS - 1)
    assert before["coverage"] >= 0.5 and after["coverage"] >= 0.5
    assert after["share_at_risk"] <= before["share_at_risk"] - 0.10
    assert after["mean_rh"] < before["mean_rh"]
    assert after["mean_surface_rh"] < before["mean_surface_rh"]
    assert after["mould_change"] <= before["mould_change"]
    evidence = staff.get(f"/api/v1/cases/{case_id}/evidence")
    assert evidence.status_code == 200
    assert "improved" in evidence.text and "extractor fan fitted" in evidence.text

    admin = {"Authorization": f"Bearer {ctx.admin_token}"}
    rejects = httpx.get(
        f"{fleet.base_url}/api/v1/rejects",
        params={"device_id": dev.device_id},
        headers=admin,
        timeout=30,
    )
    assert rejects.json() == []
    staff.close()
