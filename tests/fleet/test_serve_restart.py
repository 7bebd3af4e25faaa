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
from fleet.ota import bundle, rollout, service, signing
from fleet.ota.package import ReleaseFile
from fleet.registry.devices import register_device
from fleet.runtime import FleetRuntime
from tests.fleet.packs import telemetry

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
    acknowledged: list[int] = []
    enough = threading.Event()

    def on_publish(_c: mqtt.Client, _u: object, mid: int, *_: object) -> None:
        acknowledged.append(mid)
        if len(acknowledged) == 300:
            enough.set()

    device = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=DEVICE)
    device.max_inflight_messages_set(50)
    device.on_publish = on_publish
    device.connect(broker.host, broker.port)
    device.loop_start()
    start = float(int(time.time())) - PACKS * 60
    mids = [
        device.publish(
            f"cs/v1/d/{DEVICE}/up", telemetry(DEVICE, start + i * 60, [(0, 20.0, 50.0)]), qos=1
        ).mid
        for i in range(PACKS)
    ]
    try:
        assert enough.wait(20)
        runtime.stop()  # ingest first, then the broker, while the device still sends
    finally:
        device.loop_stop()
        ctx.close()
    # Usually the stop comes mid-stream; when the device was done first, what it sent is
    # still waiting in the broker for the ingest: either way, stored after the restart.
    promised = len(set(acknowledged) & set(mids))

    ctx = build_context(_settings(tmp_path))
    runtime = FleetRuntime(ctx)
    runtime.start()
    try:
        deadline = time.monotonic() + 30
        while _stored(runtime) < 2 * promised and time.monotonic() < deadline:
            time.sleep(0.05)
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
        stored = service.publish_release(s, SYSTEM, release)
        rollout.create_rollout(
            s,
            SYSTEM,
            release_id=stored.id,
            target={},
            waves=["100%"],
            soak_s=0,
            failure_threshold=0.5,
        )
    runtime = FleetRuntime(ctx)
    try:
        first = _retained_offer(runtime.start(), "cs-away-01")
    finally:
        runtime.stop()
        ctx.close()
    (tmp_path / "fleet" / "broker-state.json").unlink()  # as a crash would leave it

    ctx = build_context(_settings(tmp_path))
    runtime = FleetRuntime(ctx)
    try:
        again = _retained_offer(runtime.start(), "cs-away-01")
    finally:
        runtime.stop()
        ctx.close()
    assert (again["id"], again["version"]) == (first["id"], "0.2.0")
