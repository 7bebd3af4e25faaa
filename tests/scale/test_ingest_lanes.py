"""Writer lanes: parallel database writers must still store each device's messages in order."""

from __future__ import annotations

import time
from collections import defaultdict

import paho.mqtt.client as mqtt
import pytest
from sqlalchemy import select

from fleet.core.context import FleetContext
from fleet.ingest.profile import device_topic
from fleet.loadgen import harness, payloads
from fleet.loadgen.fleetdb import register_devices
from fleet.loadgen.infra import PrivateMosquitto
from fleet.models import Device, HealthSnapshot
from tests.scale.conftest import worker_for

pytestmark = [pytest.mark.postgres, pytest.mark.mosquitto, pytest.mark.timeout(120)]

DEVICES = 50
REPORTS = 12


def test_each_devices_messages_are_stored_in_arrival_order_across_writer_lanes(
    fleet_db: FleetContext, broker: PrivateMosquitto
) -> None:
    ids = [f"cs-lane-{i:03d}" for i in range(DEVICES)]
    register_devices(fleet_db.sessions, ids)
    # Small batches and four lanes: consecutive reports of one device land in different
    # batches, which would commit concurrently if a device could go to two lanes.
    worker = worker_for(fleet_db, broker, writers=4, batch_size=7)
    sender = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="lane-sender")
    sender.connect("127.0.0.1", broker.port)
    sender.loop_start()
    try:
        now = time.time()
        infos = [
            sender.publish(
                device_topic(device, "health"),
                payloads.health(device, now - REPORTS + n, uptime=n, reconnects=0),
                qos=1,
            )
            for n in range(1, REPORTS + 1)
            for device in ids
        ]
        for info in infos:
            info.wait_for_publish(10)
        total = DEVICES * REPORTS
        assert harness.wait_for(lambda: worker.counters.stored >= total, 60), worker.counters
        assert worker.counters.rejected == 0
        assert worker.counters.batches > 4 * REPORTS  # many small batches, not a few big ones
    finally:
        worker.stop()
        sender.loop_stop()
        sender.disconnect()
    order: dict[str, list[int]] = defaultdict(list)
    with fleet_db.sessions() as session:
        rows = session.execute(
            select(Device.device_id, HealthSnapshot.data)
            .join(Device, Device.id == HealthSnapshot.device_pk)
            .order_by(HealthSnapshot.id)
        )
        for device_id, data in rows:
            order[device_id].append(int(data["uptime"]))
    assert sorted(order) == ids
    assert all(seq == list(range(1, REPORTS + 1)) for seq in order.values()), order
