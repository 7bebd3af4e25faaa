"""The ingest worker over a real broker: embedded amqtt and Mosquitto."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from sqlalchemy import func, select

from fleet.broker.embedded import EmbeddedBroker, free_port
from fleet.broker.url import BrokerAddress
from fleet.core.context import FleetContext
from fleet.ingest.handler import IngestHandler
from fleet.ingest.worker import IngestWorker
from fleet.loadgen.payloads import status
from fleet.models import Device, Reading, RejectedMessage
from fleet.models.base import utcnow
from fleet.registry.devices import register_device
from tests.firmware.conftest import wait_until as shared_wait_until
from tests.fleet.packs import telemetry


@pytest.fixture(params=["embedded", pytest.param("mosquitto", marks=pytest.mark.mosquitto)])
def broker(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BrokerAddress]:
    if request.param == "mosquitto":
        yield request.getfixturevalue("mosquitto")
        return
    embedded = EmbeddedBroker("127.0.0.1", free_port())
    address = embedded.start()
    try:
        yield address
    finally:
        embedded.stop()


def wait_until(predicate, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    shared_wait_until(predicate, timeout, "the condition")


@contextmanager
def _running(worker: IngestWorker, broker: BrokerAddress, name: str) -> Iterator[mqtt.Client]:
    """The worker started and subscribed, and a publisher connected to the same broker."""
    worker.start()
    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"pub-{name}")
    try:
        assert worker.connected.wait(10)
        pub.connect(broker.host, broker.port)
        pub.loop_start()
        yield pub
    finally:
        pub.loop_stop()
        pub.disconnect()
        worker.stop()


def test_worker_stores_valid_and_records_bad(
    fleet_ctx: FleetContext, broker: BrokerAddress
) -> None:
    dev = "cs-test-0002"
    with fleet_ctx.sessions.begin() as session:
        register_device(session, device_id=dev)
    worker = IngestWorker(IngestHandler(fleet_ctx.sessions), broker, client_id="ingest-test")
    with _running(worker, broker, "test") as pub:
        now = float(int(time.time()))
        msgs = [
            (f"cs/v1/d/{dev}/up", telemetry(dev, now - 30, [(0, 20.5, 48.0)])),
            (f"cs/v1/d/{dev}/up", b"not json at all"),
            # Nested past the parsers' limits: refused like any broken payload, never a
            # crash that drops the connection and brings the same payload back for ever.
            (f"cs/v1/d/{dev}/status", b"[" * 30_000 + b"]" * 30_000),
            (f"cs/v1/d/{dev}/up", telemetry(dev, now - 20, [(0, 20.6, 48.5)])),
            ("cs/v1/d/cs-nobody-01/up", telemetry("cs-nobody-01", now, [(0, 1, 1)])),
            (f"cs/v1/d/{dev}/weather", b"[]"),
            (f"cs/v1/d/{dev}/up", telemetry(dev, now - 10, [(0, 20.7, 49.0)])),
            (f"cs/v1/d/{dev}/up", telemetry(dev, now - 10, [(0, 20.7, 49.0)])),  # redelivery
        ]
        for topic, payload in msgs:
            pub.publish(topic, payload, qos=1).wait_for_publish(5)

        counters = worker.counters
        wait_until(lambda: counters.stored + counters.rejected == len(msgs))
        with fleet_ctx.sessions() as s:
            assert s.scalar(select(func.count()).select_from(Reading)) == 6
            reasons = sorted(s.scalars(select(RejectedMessage.reason)).all())
        assert reasons == ["malformed_json", "malformed_json", "unknown_device", "unknown_topic"]
        assert worker.counters.stored == 4


class _CutAfterCommit(IngestHandler):
    """Ends the broker connection after the first batch with a reject commits and before
    the worker acknowledges it, as a lost network would."""

    worker: IngestWorker

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.cut = False

    def store(self, decoded):  # type: ignore[no-untyped-def]
        outcomes = super().store(decoded)
        if not self.cut and any(m.rejected for m in decoded):
            self.cut = True
            client = self.worker._client
            client._call(client._drop, "connection cut after the commit")
            wait_until(lambda: not self.worker.connected.is_set())
        return outcomes


@pytest.mark.mosquitto
def test_a_reject_redelivered_after_a_lost_connection_is_recorded_once(
    fleet_ctx: FleetContext, mosquitto: BrokerAddress
) -> None:
    # Mosquitto only: amqtt (the embedded broker) forgets a message whose delivery was cut
    # off instead of sending it again on the next connection.
    broker = mosquitto
    dev = "cs-test-0003"
    with fleet_ctx.sessions.begin() as session:
        register_device(session, device_id=dev)
    handler = _CutAfterCommit(fleet_ctx.sessions)
    worker = handler.worker = IngestWorker(handler, broker, client_id="ingest-redelivery")
    with _running(worker, broker, "redelivery") as pub:
        now = float(int(time.time()))
        pub.publish(f"cs/v1/d/{dev}/up", telemetry(dev, now - 30, [(0, 20.5, 48.0)]), qos=1)
        pub.publish(f"cs/v1/d/{dev}/up", b"not json at all", qos=1).wait_for_publish(5)
        # Both are delivered again (flagged DUP) on the next connection and handled again.
        counters = worker.counters
        wait_until(lambda: handler.cut and worker.connected.is_set())
        wait_until(lambda: counters.rejected == 2)
        with fleet_ctx.sessions() as s:
            assert s.scalar(select(func.count()).select_from(Reading)) == 2
            assert s.scalars(select(RejectedMessage.reason)).all() == ["malformed_json"]


def _devices_on_two_lanes() -> tuple[str, str]:
    """Two device ids that the worker's two lanes split between them (by hash, as it does)."""
    first = "cs-test-0100"
    other = next(
        f"cs-test-{n:04d}"
        for n in range(101, 200)
        if hash(f"cs-test-{n:04d}") % 2 != hash(first) % 2
    )
    return first, other


class _FirstLaneSlow(IngestHandler):
    """Holds the slow device's first batch until a later message, on the other lane, has
    committed: the lanes then finish in the opposite order to the messages' arrival."""

    def __init__(self, *args, slow: str, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.slow = slow
        self.overtaken = threading.Event()

    def store(self, decoded):  # type: ignore[no-untyped-def]
        if any(m.device_id == self.slow for m in decoded) and not self.overtaken.is_set():
            assert self.overtaken.wait(20), "the other lane never committed"
            return super().store(decoded)
        outcomes = super().store(decoded)
        self.overtaken.set()
        return outcomes


@pytest.mark.mosquitto
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_acknowledgements_follow_arrival_order_across_lanes(
    fleet_ctx: FleetContext, mosquitto: BrokerAddress
) -> None:
    slow, fast = _devices_on_two_lanes()
    with fleet_ctx.sessions.begin() as session:
        register_device(session, device_id=slow)
        register_device(session, device_id=fast)
    handler = _FirstLaneSlow(fleet_ctx.sessions, slow=slow)
    worker = IngestWorker(handler, mosquitto, client_id="ingest-ack-order", writers=2)
    acked: list[int] = []
    send_acks = worker._client.ack
    worker._client.ack = lambda mids, generation: (acked.extend(mids), send_acks(mids, generation))  # type: ignore[method-assign]
    with _running(worker, mosquitto, "ack-order") as pub:
        now = float(int(time.time()))
        for i, dev in enumerate([slow, fast, fast, fast]):
            payload = telemetry(dev, now - 60 + i, [(0, 20.0 + i, 50.0)])
            pub.publish(f"cs/v1/d/{dev}/up", payload, qos=1).wait_for_publish(5)
        wait_until(lambda: len(acked) == 4)
        assert handler.overtaken.is_set()
        # Mosquitto numbers a fresh session's deliveries 1, 2, 3, ... in the order it sends
        # them: acknowledgements in arrival order are in ascending order.
        assert acked == sorted(acked), acked
        assert worker.counters.stored == 4


def test_acks_wait_for_every_earlier_message_of_their_connection() -> None:
    from fleet.ingest.worker import _AckOrder

    order = _AckOrder()
    order.arrived(1, [7, 8, 9, 10])
    assert order.committed(1, [9, 10]) == []  # 7 and 8 are not in the database yet
    assert order.committed(1, [7]) == [7]
    order.arrived(1, [11])
    assert order.committed(1, [8]) == [8, 9, 10]
    order.arrived(2, [1, 2])  # a new connection: the old one's messages come again
    assert order.committed(1, [11]) == []  # a stale ack means nothing on the new connection
    assert order.committed(2, [2, 1]) == [1, 2]


def test_a_status_replayed_on_subscribe_is_not_a_sign_of_life(
    fleet_ctx: FleetContext, broker: BrokerAddress
) -> None:
    """A battery device that died asleep keeps "sleeping" as its retained status. The broker
    replays it whenever the ingest subscribes (every restart): that must not make the
    device look alive again. A device the fleet knows nothing of takes the status, and the
    same status sent live still counts."""
    tag = uuid.uuid4().hex[:6]
    asleep, unknown = f"cs-asleep-{tag}", f"cs-unknown-{tag}"
    long_ago = utcnow() - timedelta(hours=6)
    with fleet_ctx.sessions.begin() as s:
        register_device(s, device_id=asleep, power_mode="battery")
        register_device(s, device_id=unknown)
        device = s.scalars(select(Device).where(Device.device_id == asleep)).one()
        device.status, device.status_at, device.last_seen_at = "sleeping", long_ago, long_ago
    topics = {d: f"cs/v1/d/{d}/status" for d in (asleep, unknown)}
    before = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"devices-{tag}")
    before.connect(broker.host, broker.port)
    before.loop_start()
    try:
        before.publish(topics[asleep], status("sleeping"), qos=1, retain=True).wait_for_publish(5)
        before.publish(topics[unknown], status("online"), qos=1, retain=True).wait_for_publish(5)
        worker = IngestWorker(
            IngestHandler(fleet_ctx.sessions), broker, client_id=f"ingest-retained-{tag}"
        )
        with _running(worker, broker, f"retained-{tag}") as pub:
            counters = worker.counters
            wait_until(lambda: counters.stored == 2)
            with fleet_ctx.sessions() as s:
                rows = {
                    d.device_id: d
                    for d in s.scalars(select(Device).where(Device.device_id.in_(topics)))
                }
                assert (rows[asleep].status, rows[asleep].last_seen_at) == ("sleeping", long_ago)
                assert (rows[unknown].status, rows[unknown].last_seen_at) == ("online", None)
            # Retained, as the firmware sends it: a live copy comes without the flag.
            live = pub.publish(topics[asleep], status("sleeping"), qos=1, retain=True)
            live.wait_for_publish(5)
            wait_until(lambda: counters.stored == 3)
            with fleet_ctx.sessions() as s:
                seen = s.scalars(select(Device.last_seen_at).where(Device.device_id == asleep))
                assert seen.one() > long_ago + timedelta(hours=5)
    finally:
        for topic in topics.values():  # the shared broker keeps retained messages
            before.publish(topic, b"", qos=1, retain=True).wait_for_publish(5)
        before.loop_stop()
        before.disconnect()
