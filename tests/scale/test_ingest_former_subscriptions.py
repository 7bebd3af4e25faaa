"""A worker that resumes a persistent session drops the subscriptions it no longer uses.

Moving from `fleet serve` (plain `cs/v1/d/#`) to shared-subscription workers keeps the client
id, and with it the broker session and its old subscription: without an UNSUBSCRIBE that
worker would get every device message through the old filter as well as its share; so
would a worker moved from one share group to another.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import paho.mqtt.client as mqtt
import pytest
from sqlalchemy import func, select

from fleet.broker.url import BrokerAddress
from fleet.core.context import FleetContext
from fleet.ingest.handler import IngestHandler
from fleet.ingest.profile import device_topic
from fleet.ingest.worker import IngestWorker
from fleet.loadgen import harness, payloads
from fleet.models import RejectedMessage

pytestmark = [pytest.mark.postgres, pytest.mark.mosquitto, pytest.mark.timeout(120)]

MESSAGES = 40
# Neither is registered, so every message handled becomes one rejected row.
DEVICE, LAST = "cs-unregistered-01", "cs-unregistered-02"


def _worker(ctx: FleetContext, broker: BrokerAddress, client_id: str, **kw: object) -> IngestWorker:
    worker = IngestWorker(IngestHandler(ctx.sessions), broker, client_id=client_id, **kw)  # type: ignore[arg-type]
    worker.start()
    if not worker.connected.wait(10):
        worker.stop()
        raise AssertionError(f"{client_id} did not connect to the private broker")
    return worker


@pytest.fixture
def sender(mosquitto: BrokerAddress) -> Iterator[mqtt.Client]:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="former-sub-sender")
    client.connect(mosquitto.host, mosquitto.port)
    client.loop_start()
    try:
        yield client
    finally:
        client.loop_stop()
        client.disconnect()


def _send(sender: mqtt.Client, device: str, n: int) -> None:
    info = sender.publish(
        device_topic(device, "health"),
        payloads.health(device, time.time(), uptime=n, reconnects=0),
        qos=1,
    )
    info.wait_for_publish(10)


def _rejected_rows(ctx: FleetContext, device: str | None = None) -> int:
    query = select(func.count()).select_from(RejectedMessage)
    if device is not None:
        query = query.where(RejectedMessage.device_id == device)
    with ctx.sessions() as session:
        return session.scalar(query) or 0


def _publish_to(ctx: FleetContext, sender: mqtt.Client, workers: list[IngestWorker]) -> None:
    """Send MESSAGES + 1 distinct messages and check each was handled by exactly one worker."""
    for n in range(MESSAGES):
        _send(sender, DEVICE, n)
    _send(sender, LAST, 0)
    total = MESSAGES + 1

    def handled() -> bool:
        return _rejected_rows(ctx, LAST) >= 1 and sum(w.counters.rejected for w in workers) >= total

    assert harness.wait_for(handled, 30), [w.counters for w in workers]
    for w in workers:
        w.stop()  # finishes the batches in hand; the counters are final for what arrived
    assert sum(w.counters.received for w in workers) == total, [w.counters for w in workers]
    assert _rejected_rows(ctx) == total
    # Each worker took a share; none took them all, as a leftover subscription made it.
    assert all(0 < w.counters.received < total for w in workers), [w.counters for w in workers]


def _members(ctx: FleetContext, broker: BrokerAddress, group: str) -> list[IngestWorker]:
    return [_worker(ctx, broker, f"fleet-ingest-{n}", share_group=group) for n in (0, 1)]


def test_a_plain_subscriber_turned_share_group_member_handles_each_message_once(
    fleet_db: FleetContext, mosquitto: BrokerAddress, sender: mqtt.Client
) -> None:
    # As `fleet serve` did: fleet-ingest-0 subscribes to plain cs/v1/d/# in a persistent session.
    _worker(fleet_db, mosquitto, "fleet-ingest-0").stop()
    workers = _members(fleet_db, mosquitto, "ingest")
    try:
        _publish_to(fleet_db, sender, workers)
    finally:
        for w in workers:
            w.stop()


def test_a_worker_moved_to_another_share_group_leaves_the_old_one(
    fleet_db: FleetContext, mosquitto: BrokerAddress, sender: mqtt.Client
) -> None:
    _worker(fleet_db, mosquitto, "fleet-ingest-0", share_group="ingest").stop()
    workers = _members(fleet_db, mosquitto, "blue")
    try:
        _publish_to(fleet_db, sender, workers)
    finally:
        for w in workers:
            w.stop()
