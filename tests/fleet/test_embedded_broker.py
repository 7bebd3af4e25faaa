"""The embedded broker: many devices connecting at once, and no retained-message leaks."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import paho.mqtt.client as mqtt
import pytest

from fleet.broker.embedded import EmbeddedBroker
from fleet.broker.url import BrokerAddress


@pytest.fixture
def broker() -> Iterator[BrokerAddress]:
    embedded = EmbeddedBroker("127.0.0.1", 0)
    address = embedded.start()
    try:
        yield address
    finally:
        embedded.stop()


def client(address: BrokerAddress, name: str) -> tuple[mqtt.Client, list[str], threading.Event]:
    got: list[str] = []
    subscribed = threading.Event()
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=name)
    c.on_message = lambda _c, _u, m: got.append(m.topic)
    c.on_subscribe = lambda *_: subscribed.set()
    c.connect(address.host, address.port)
    c.loop_start()
    return c, got, subscribed


def test_a_device_never_receives_another_devices_retained_messages(broker: BrokerAddress) -> None:
    ingest, ingest_got, ingest_sub = client(broker, "ingest")
    ingest.subscribe("cs/v1/#", qos=1)
    assert ingest_sub.wait(5)
    a, _, _ = client(broker, "cs-dev-a")
    a.publish(
        "cs/v1/d/cs-dev-a/status", b'{"sv":1,"state":"online"}', qos=1, retain=True
    ).wait_for_publish(5)
    b, b_got, b_sub = client(broker, "cs-dev-b")
    b.subscribe("cs/v1/d/cs-dev-b/cmd", qos=1)
    assert b_sub.wait(5)
    # A marker on B's own topic: once it arrives, anything leaked would have arrived first.
    ingest.publish("cs/v1/d/cs-dev-b/cmd", b"marker", qos=1).wait_for_publish(5)
    deadline = time.monotonic() + 10
    while "cs/v1/d/cs-dev-b/cmd" not in b_got and time.monotonic() < deadline:
        time.sleep(0.02)
    assert b_got == ["cs/v1/d/cs-dev-b/cmd"]
    assert "cs/v1/d/cs-dev-a/status" in ingest_got
    for c in (ingest, a, b):
        c.loop_stop()
        c.disconnect()


def test_many_devices_connecting_together_all_stay_connected(broker: BrokerAddress) -> None:
    disconnects: list[str] = []
    clients = []
    for i in range(12):
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"cs-many-{i:02d}")
        c.on_connect = lambda cl, *_: cl.subscribe(f"cs/v1/d/{cl._client_id.decode()}/cmd", qos=1)
        c.on_disconnect = lambda cl, *_: disconnects.append(cl._client_id.decode())
        c.connect_async(broker.host, broker.port)
        clients.append(c)
    for c in clients:
        c.loop_start()
    listener, got, sub = client(broker, "listener")
    listener.subscribe("done/#", qos=1)
    assert sub.wait(5)
    for c in clients:
        deadline = time.monotonic() + 10
        while not c.is_connected() and time.monotonic() < deadline:
            time.sleep(0.02)
        c.publish(f"done/{c._client_id.decode()}", b"1", qos=1).wait_for_publish(10)
    deadline = time.monotonic() + 10
    while len(got) < len(clients) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(got) == len(clients)
    assert disconnects == []
    for c in [*clients, listener]:
        c.loop_stop()
        c.disconnect()
