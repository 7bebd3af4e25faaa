"""Walking skeleton end to end: real firmware in the VM → broker → ingest → database.

Runs twice: Mosquitto + PostgreSQL (production shape) and the embedded broker + SQLite
(the one-command default). Every message the devices send is also validated against the
documented JSON Schemas.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from sqlalchemy import select

from fleet.core.context import FleetContext
from fleet.models import Device, Reading, RejectedMessage
from fleet.registry.devices import register_device
from fleet.simulator import VirtualFleet
from tests.contracts.schemas import schema_for_topic_leaf
from tests.firmware.conftest import wait_until
from tests.fleet.server import BACKENDS, RunningFleet, fleet_on_backend

pytestmark = [pytest.mark.vm]

DEVICES = 3
HEAP = "128K"
# SHT4x words carry 175/65535 degC and 125/65535 %RH; the firmware sends 2 decimals.
TOLERANCE = {"temperature": 0.005 + 175 / 65535 / 2, "humidity": 0.005 + 125 / 65535 / 2}
UNITS = {"temperature": "Cel", "humidity": "%RH"}


@dataclass
class Wiretap:
    """Every message on the device tree, for contract checks."""

    messages: list[tuple[str, bytes]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.messages.append((msg.topic, bytes(msg.payload)))


@pytest.fixture(params=BACKENDS)
def fleet(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RunningFleet]:
    with fleet_on_backend(request, tmp_path) as running:
        yield running


def test_virtual_devices_readings_arrive_exactly(fleet: RunningFleet, tmp_path: Path) -> None:
    devices = VirtualFleet(
        DEVICES,
        tmp_path / "devices",
        broker_host=fleet.broker.host,
        broker_port=fleet.broker.port,
        heapsize=HEAP,
        sample_interval_s=2,
        health_interval_s=4,
        base_seed=40,
    )
    with fleet.ctx.sessions.begin() as session:
        for device_id in devices.device_ids:
            register_device(session, device_id=device_id, report_interval_s=2)
    tap = Wiretap()
    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="e2e-wiretap")
    sub.on_message = tap.on_message
    sub.connect(fleet.broker.host, fleet.broker.port)
    sub.subscribe("cs/v1/#", qos=1)
    sub.loop_start()

    def readings_per_device() -> dict[str, int]:
        with fleet.ctx.sessions() as s:
            rows = s.execute(
                select(Device.device_id, Reading.metric).join(
                    Reading, Reading.device_pk == Device.id
                )
            ).all()
        counts: dict[str, int] = {}
        for device_id, _ in rows:
            counts[device_id] = counts.get(device_id, 0) + 1
        return counts

    try:
        with devices:
            wait_until(
                lambda: all(readings_per_device().get(d, 0) >= 6 for d in devices.device_ids),
                timeout=90,
                what="three samples from every virtual device in the database",
            )
            wait_until(
                lambda: _all_online(fleet.ctx, devices.device_ids),
                timeout=30,
                what="every device online",
            )
    finally:
        sub.loop_stop()
        sub.disconnect()

    with fleet.ctx.sessions() as s:
        assert s.scalars(select(RejectedMessage)).all() == []
        for dev in devices:
            served = [r for r in dev.readings() if "fault" not in r]
            rows = s.scalars(
                select(Reading)
                .join(Device, Device.id == Reading.device_pk)
                .where(Device.device_id == dev.device_id)
                .order_by(Reading.ts)
            ).all()
            assert rows
            for row in rows:
                assert row.unit == UNITS[row.metric]
                ts = row.ts.timestamp()
                match = [
                    r
                    for r in served
                    if abs(r["ts"] - ts) <= 1.5
                    and abs(r[row.metric] - row.value) <= TOLERANCE[row.metric]
                ]
                assert match, f"{dev.device_id} {row.metric}={row.value} at {row.ts} not served"

    with tap.lock:
        messages = list(tap.messages)
    leaves = {topic.split("/", 4)[4] for topic, _ in messages}
    assert {"up", "health", "status"} <= leaves
    for topic, payload in messages:
        leaf = topic.split("/", 4)[4]
        if leaf in ("cmd", "config"):
            continue
        schema_for_topic_leaf(leaf).validate(json.loads(payload))


def _all_online(ctx: FleetContext, device_ids: list[str]) -> bool:
    with ctx.sessions() as s:
        states = s.scalars(select(Device.state).where(Device.device_id.in_(device_ids))).all()
    return len(states) == len(device_ids) and set(states) == {"online"}
