"""A stop ends within Kubernetes' grace period however many parts are still busy: the parts
stop at once within one budget, and the ingest's writers share one timeout."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import paho.mqtt.client as mqtt
import pytest

from fleet.broker.embedded import EmbeddedBroker, free_port
from fleet.broker.url import BrokerAddress
from fleet.core.context import FleetContext
from fleet.ingest.handler import IngestHandler
from fleet.ingest.worker import IngestWorker
from fleet.registry.devices import register_device
from fleet.runtime import FleetRuntime
from tests.fleet.packs import telemetry
from tests.fleet.test_ingest_broker import _devices_on_two_lanes


class Busy:
    """A part whose stop waits for work that does not end by itself (a long UPDATE)."""

    def __init__(self) -> None:
        self.asked = threading.Event()
        self.done = threading.Event()

    def stop(self) -> None:
        self.asked.set()
        self.done.wait(60)


def test_the_runtime_stops_its_parts_at_once_within_one_budget(
    fleet_ctx: FleetContext,
) -> None:
    parts = [Busy() for _ in range(4)]
    runtime = FleetRuntime(fleet_ctx)
    runtime.ota, runtime.feed, runtime.sweeper, runtime.ingest = parts  # type: ignore[assignment]
    started = time.monotonic()
    try:
        runtime.stop(budget_s=1.0)
        elapsed = time.monotonic() - started
        assert all(p.asked.is_set() for p in parts)  # every part was told, none waited its turn
        assert elapsed < 3.0, elapsed  # one budget, not one per part
        assert (runtime.ota, runtime.feed, runtime.sweeper, runtime.ingest) == (None,) * 4
    finally:
        for p in parts:
            p.done.set()


class Held(IngestHandler):
    """Holds every batch inside `store` (as a commit waiting on a lock would) until released."""

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.entered = threading.Semaphore(0)
        self.release = threading.Event()

    def store(self, decoded):  # type: ignore[no-untyped-def]
        self.entered.release()
        self.release.wait(60)
        return super().store(decoded)


@pytest.fixture
def embedded() -> Iterator[BrokerAddress]:
    broker = EmbeddedBroker("127.0.0.1", free_port())
    address = broker.start()
    try:
        yield address
    finally:
        broker.stop()


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)  # two writers
def test_busy_ingest_writers_share_one_stop_timeout(
    fleet_ctx: FleetContext, embedded: BrokerAddress
) -> None:
    devices = _devices_on_two_lanes()
    with fleet_ctx.sessions.begin() as s:
        for dev in devices:
            register_device(s, device_id=dev)
    handler = Held(fleet_ctx.sessions)
    worker = IngestWorker(handler, embedded, client_id="ingest-stop", writers=2)
    acked: list[int] = []
    send_acks = worker._client.ack
    worker._client.ack = lambda mids, generation: (acked.extend(mids), send_acks(mids, generation))  # type: ignore[method-assign]
    worker.start()
    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="pub-stop")
    try:
        assert worker.connected.wait(10)
        pub.connect(embedded.host, embedded.port)
        pub.loop_start()
        now = float(int(time.time()))
        for dev in devices:
            pub.publish(f"cs/v1/d/{dev}/up", telemetry(dev, now - 30, [(0, 20.5, 48.0)]), qos=1)
        assert handler.entered.acquire(timeout=20) and handler.entered.acquire(timeout=20)
        started = time.monotonic()
        worker.stop(timeout=3.0)
        elapsed = time.monotonic() - started
        assert 3.0 <= elapsed < 5.5, elapsed  # one timeout for both writers, not one each
        assert acked == []  # nothing committed, nothing acknowledged
    finally:
        handler.release.set()
        pub.loop_stop()
        pub.disconnect()
