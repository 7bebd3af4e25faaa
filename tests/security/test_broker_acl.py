"""Topic rights of the shipped ACL, on a real Mosquitto with real TLS client certificates.

Mosquitto drops an unauthorised MQTT 3.1.1 publish silently (the publisher still gets its
PUBACK) and silently withholds messages a subscriber may not read. Non-delivery is therefore
shown by an authorised marker that arrives at the same subscriber after the forbidden message
would have: whatever precedes the marker is everything that was delivered.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest

from fleet.identity import FEED_ACCOUNT
from tests.security.clients import Identity, TlsClient
from tests.security.conftest import API_0, DEVICE_A, DEVICE_B, INGEST_0, INGEST_1, Broker

pytestmark = pytest.mark.mosquitto

Connect = Callable[[str, Identity], TlsClient]


def _id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _up(device_id: str) -> str:
    return f"cs/v1/d/{device_id}/up"


def _cmd(device_id: str) -> str:
    return f"cs/v1/d/{device_id}/cmd"


def test_device_publishes_own_telemetry_to_ingest(broker: Broker, connect: Connect) -> None:
    ingest = connect(_id("ingest"), broker.pki.service(INGEST_0))
    ingest.subscribe("cs/v1/d/+/up")
    device = connect(DEVICE_A, broker.pki.devices[DEVICE_A])

    device.publish(_up(DEVICE_A), b"reading-1")

    assert ingest.receive_until(_up(DEVICE_A), b"reading-1") == [(_up(DEVICE_A), b"reading-1")]


@pytest.mark.parametrize("leaf", ["up", "health", "status", "cmd/ack", "ota/progress"])
def test_device_cannot_publish_as_another_device(
    broker: Broker, connect: Connect, leaf: str
) -> None:
    ingest = connect(_id("ingest"), broker.pki.service(INGEST_0))
    ingest.subscribe(f"cs/v1/d/+/{leaf}")
    device_a = connect(_id(DEVICE_A), broker.pki.devices[DEVICE_A])
    forged = f"cs/v1/d/{DEVICE_B}/{leaf}"
    marker = f"cs/v1/d/{DEVICE_A}/{leaf}"

    device_a.publish(forged, b"forged")
    device_a.publish(marker, b"marker")

    assert ingest.receive_until(marker, b"marker") == [(marker, b"marker")]


def test_device_cannot_read_another_devices_commands(broker: Broker, connect: Connect) -> None:
    device_a = connect(_id(DEVICE_A), broker.pki.devices[DEVICE_A])
    device_b = connect(_id(DEVICE_B), broker.pki.devices[DEVICE_B])
    device_a.subscribe(_cmd(DEVICE_B))
    device_a.subscribe(_cmd(DEVICE_A))
    device_b.subscribe(_cmd(DEVICE_B))
    ingest = connect(_id("ingest"), broker.pki.service(INGEST_0))

    ingest.publish(_cmd(DEVICE_B), b"for-b")
    ingest.publish(_cmd(DEVICE_A), b"for-a")

    assert device_b.receive_until(_cmd(DEVICE_B), b"for-b") == [(_cmd(DEVICE_B), b"for-b")]
    assert device_a.receive_until(_cmd(DEVICE_A), b"for-a") == [(_cmd(DEVICE_A), b"for-a")]


def test_device_cannot_read_the_telemetry_tree(broker: Broker, connect: Connect) -> None:
    device_a = connect(_id(DEVICE_A), broker.pki.devices[DEVICE_A])
    device_a.subscribe("cs/v1/#")
    device_b = connect(_id(DEVICE_B), broker.pki.devices[DEVICE_B])
    ingest = connect(_id("ingest"), broker.pki.service(INGEST_0))

    device_b.publish(_up(DEVICE_B), b"b-reading")
    device_a.publish(_up(DEVICE_A), b"a-reading")  # its own, but write-only for a device
    ingest.publish(_cmd(DEVICE_A), b"marker")

    assert device_a.receive_until(_cmd(DEVICE_A), b"marker") == [(_cmd(DEVICE_A), b"marker")]


def test_ingest_cannot_forge_telemetry_but_can_send_commands(
    broker: Broker, connect: Connect
) -> None:
    watcher = connect(_id("ingest-watch"), broker.pki.service(INGEST_1))
    watcher.subscribe("cs/v1/d/+/up")
    device_a = connect(_id(DEVICE_A), broker.pki.devices[DEVICE_A])
    device_a.subscribe(_cmd(DEVICE_A))
    ingest = connect(_id("ingest"), broker.pki.service(INGEST_0))

    # PUBACK means Mosquitto has routed (or dropped) it, before the device's marker exists.
    ingest.publish(_up(DEVICE_A), b"forged")
    ingest.publish(f"cs/v1/d/{INGEST_0}/up", b"own-name")
    ingest.publish(_cmd(DEVICE_A), b"reboot")
    device_a.publish(_up(DEVICE_A), b"genuine")

    assert watcher.receive_until(_up(DEVICE_A), b"genuine") == [(_up(DEVICE_A), b"genuine")]
    assert device_a.receive_until(_cmd(DEVICE_A), b"reboot") == [(_cmd(DEVICE_A), b"reboot")]


def test_ingest_wildcard_subscription_sees_only_device_leaves(
    broker: Broker, connect: Connect
) -> None:
    ingest = connect(_id("ingest"), broker.pki.service(INGEST_0))
    ingest.subscribe("cs/v1/#")
    feed = connect(_id("feed"), broker.pki.service(FEED_ACCOUNT))
    sender = connect(_id("api-send"), broker.pki.service(API_0))
    device_a = connect(_id(DEVICE_A), broker.pki.devices[DEVICE_A])

    sender.publish(_cmd(DEVICE_A), b"cmd")  # the ingest writes commands but does not read them
    feed.publish("cs/v1/feed/x", b"feed")  # outside the device tree
    device_a.publish(f"cs/v1/d/{DEVICE_A}/health", b"health")

    marker = (f"cs/v1/d/{DEVICE_A}/health", b"health")
    assert ingest.receive_until(*marker) == [marker]


def test_feed_account_owns_only_the_public_feed(broker: Broker, connect: Connect) -> None:
    feed = connect(_id("feed"), broker.pki.service(FEED_ACCOUNT))
    feed.subscribe("#")
    device_a = connect(_id(DEVICE_A), broker.pki.devices[DEVICE_A])
    ingest = connect(_id("ingest"), broker.pki.service(INGEST_0))
    watcher = connect(_id("ingest-watch"), broker.pki.service(INGEST_1))
    watcher.subscribe("cs/v1/d/+/up")

    device_a.publish(_up(DEVICE_A), b"reading")  # the feed never sees raw device traffic
    ingest.publish(_cmd(DEVICE_A), b"cmd")
    feed.publish(_up(DEVICE_A), b"forged")  # nor can it write there
    feed.publish("v1.1/Datastreams(1)/Observations", b"obs")
    feed.publish("cs/v1/feed/senml", b"pack")

    assert feed.receive_until("cs/v1/feed/senml", b"pack") == [
        ("v1.1/Datastreams(1)/Observations", b"obs"),
        ("cs/v1/feed/senml", b"pack"),
    ]
    device_a.publish(_up(DEVICE_A), b"marker")
    assert watcher.receive_until(_up(DEVICE_A), b"marker") == [
        (_up(DEVICE_A), b"reading"),
        (_up(DEVICE_A), b"marker"),
    ]


def test_device_reads_retained_config_of_its_own_only(fresh_broker: Broker) -> None:
    pki = fresh_broker.pki
    config_a = f"cs/v1/d/{DEVICE_A}/config"
    config_b = f"cs/v1/d/{DEVICE_B}/config"
    ingest = fresh_broker.client("ingest", pki.service(INGEST_0))
    device_a = fresh_broker.client(DEVICE_A, pki.devices[DEVICE_A])
    try:
        assert ingest.connect()
        ingest.publish(config_b, b'{"version": 1}', retain=True)
        ingest.publish(config_a, b'{"version": 2}', retain=True)
        assert device_a.connect()

        device_a.subscribe(config_b)
        device_a.subscribe(config_a)

        expected = (config_a, b'{"version": 2}')
        assert device_a.receive_until(*expected) == [expected]
    finally:
        device_a.close()
        ingest.close()


def test_ingest_shared_subscription_receives_device_telemetry(
    broker: Broker, connect: Connect
) -> None:
    worker = connect(_id("ingest-worker"), broker.pki.service(INGEST_0))
    worker.subscribe("$share/ingest/cs/v1/#")
    device_a = connect(_id(DEVICE_A), broker.pki.devices[DEVICE_A])
    sender = connect(_id("api-send"), broker.pki.service(API_0))

    sender.publish(_cmd(DEVICE_A), b"not-for-ingest")
    device_a.publish(_up(DEVICE_A), b"shared")

    assert worker.receive_until(_up(DEVICE_A), b"shared") == [(_up(DEVICE_A), b"shared")]
