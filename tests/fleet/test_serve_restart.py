"""`fleet serve` on its embedded defaults, stopped while devices publish and started again
(an upgrade): every reading its broker acknowledged is stored; after a crash that lost the
broker's state, devices that are away still find their update offers."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from sqlalchemy import func, select

from fleet.access.principal import SYSTEM
from fleet.broker.url import BrokerAddress
from fleet.core.context import build_context
from fleet.core.settings import Settings
from fleet.models import Device, Reading
from fleet.ota import bundle, service, signing
from fleet.ota.package import ReleaseFile
from fleet.registry.devices import register_device
from fleet.runtime import FleetRuntime
from tests.firmware.conftest import wait_until
from tests.fleet.burst import Burst
from tests.fleet.packs import telemetry
from tests.ota.test_rollout_engine import rollout_to_all

DEVICE = "cs-restart-01"
PACKS = 1500


def _settings(tmp_path: Path) -> Settings:
    return Settings(
        environment="test",
        data_dir=tmp_path / "fleet",
        database_url=f"sqlite:///{tmp_path / 'fleet.sqlite3'}",
        embedded_broker_port=0,
    )


def _stored(runtime: FleetRuntime) -> int:
    with runtime.ctx.sessions() as s:
        return int(s.scalar(select(func.count()).select_from(Reading)) or 0)


def test_readings_acknowledged_before_a_restart_are_stored_after_it(tmp_path: Path) -> None:
    ctx = build_context(_settings(tmp_path))
    with ctx.sessions.begin() as session:
        register_device(session, device_id=DEVICE)
    runtime = FleetRuntime(ctx)
    broker = runtime.start()
    device = Burst(broker, DEVICE, in_flight=50)
    start = float(int(time.time())) - PACKS * 60
    packs = [telemetry(DEVICE, start + i * 60, [(0, 20.0, 50.0)]) for i in range(PACKS)]
    try:
        assert device.send(f"cs/v1/d/{DEVICE}/up", packs, wait_for=300, timeout=20)
        runtime.stop()  # ingest first, then the broker, while the device still sends
    finally:
        device.stop()
        ctx.close()
    # Usually the stop comes mid-stream; when the device was done first, what it sent is
    # still waiting in the broker for the ingest: either way, stored after the restart.
    promised = len(device.acknowledged())

    ctx = build_context(_settings(tmp_path))
    runtime = FleetRuntime(ctx)
    runtime.start()
    try:
        wait_until(lambda: _stored(runtime) >= 2 * promised, 30, "the acknowledged readings")
        assert _stored(runtime) >= 2 * promised  # two readings in each acknowledged pack
    finally:
        runtime.stop()
        ctx.close()


def _retained_offer(broker: BrokerAddress, device_id: str) -> dict[str, object]:
    """The retained offer a device finds when it subscribes to its `ota` topic."""
    got: list[bytes] = []
    arrived = threading.Event()

    def on_message(_c: mqtt.Client, _u: object, m: mqtt.MQTTMessage) -> None:
        got.append(bytes(m.payload))
        arrived.set()

    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"{device_id}-probe")
    c.on_message = on_message
    c.connect(broker.host, broker.port)
    c.loop_start()
    try:
        c.subscribe(f"cs/v1/d/{device_id}/ota", qos=1)
        assert arrived.wait(20), "no retained offer"
        return dict(json.loads(got[0]))
    finally:
        c.loop_stop()
        c.disconnect()


def test_an_offer_lost_with_the_brokers_state_is_published_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crash takes the embedded broker's retained offers with it (no state file to read
    back): after the restart the device that was away still finds its offer, the same job."""
    monkeypatch.setenv("FLEET_OTA_TICK_S", "0.2")
    key = signing.generate(tmp_path / "keys")
    release = ReleaseFile.from_built(bundle.build_app("0.2.0", files={"cs/app.mpy": b"M\x06"}))
    release.sign(key)
    ctx = build_context(_settings(tmp_path))
    with ctx.sessions.begin() as s:
        s.add(Device(device_id="cs-away-01", fw_version="0.1.0", state="offline"))
        service.trust_key(s, SYSTEM, key.public_hex)
        rollout_to_all(s, service.publish_release(s, SYSTEM, release).id)
    ctx.close()
    first = _offer_after_start(tmp_path, "cs-away-01")
    (tmp_path / "fleet" / "broker-state.json").unlink()  # as a crash would leave it
    again = _offer_after_start(tmp_path, "cs-away-01")
    assert (again["id"], again["version"]) == (first["id"], "0.2.0")


def _offer_after_start(tmp_path: Path, device_id: str) -> dict[str, object]:
    """Start the fleet, read the device's retained offer, stop the fleet."""
    ctx = build_context(_settings(tmp_path))
    runtime = FleetRuntime(ctx)
    try:
        return _retained_offer(runtime.start(), device_id)
    finally:
        runtime.stop()
        ctx.close()
