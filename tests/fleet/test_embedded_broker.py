"""The embedded broker: many devices connecting at once, no retained-message leaks, QoS 1
kept as MQTT promises (persistent sessions, messages in flight sent again, both bounded),
and all of it kept across a graceful restart."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from fleet.broker import amqtt_delivery, embedded
from fleet.broker.embedded import EmbeddedBroker
from fleet.broker.url import BrokerAddress
from tests.firmware.conftest import wait_until
from tests.fleet.burst import Burst


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


class _Persistent:
    """A subscriber with a persistent session (clean_session off) that acknowledges only when
    told: what a sleeping device or an ingest that acks after its commit looks like."""

    def __init__(self, address: BrokerAddress, name: str, topic: str) -> None:
        self.address, self.name, self.topic = address, name, topic
        self.got: list[tuple[bytes, bool, int]] = []  # (payload, DUP flag, message id)
        self._lock = threading.Lock()
        self.client: mqtt.Client | None = None

    def connect(self, will: tuple[str, bytes] | None = None, *, subscribe: bool = True) -> None:
        subscribed = threading.Event()
        c = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=self.name,
            clean_session=False,
            manual_ack=True,
        )
        if will is not None:
            c.will_set(will[0], will[1], qos=1, retain=False)
        c.on_message = self._on
        c.on_subscribe = lambda *_: subscribed.set()
        c.connect(self.address.host, self.address.port)
        c.loop_start()
        if subscribe:
            c.subscribe(self.topic, qos=1)
            assert subscribed.wait(5)
        self.client = c

    def _on(self, _c: mqtt.Client, _u: object, m: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.got.append((bytes(m.payload), bool(m.dup), m.mid))

    def received(self, n: int, timeout: float = 10) -> list[tuple[bytes, bool, int]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.got) >= n:
                    return list(self.got)
            time.sleep(0.02)
        raise AssertionError(f"{self.name} got {self.got}, expected {n} messages")

    def ack(self, mid: int) -> None:
        assert self.client is not None
        self.client.ack(mid, 1)

    def leave(self) -> None:
        assert self.client is not None
        self.client.disconnect()  # sent by the loop, which then ends: loop_stop waits for it
        self.client.loop_stop()
        self.client = None


def _publish(address: BrokerAddress, topic: str, *payloads: bytes) -> None:
    pub, _, _ = client(address, "fleet-publisher")
    for p in payloads:
        pub.publish(topic, p, qos=1).wait_for_publish(5)
    pub.loop_stop()
    pub.disconnect()


def test_a_persistent_session_gets_what_was_published_while_it_was_away(
    broker: BrokerAddress,
) -> None:
    """A battery device's commands wait for its next uplink, as with Mosquitto."""
    sleeper = _Persistent(broker, "cs-sleeper", "cs/v1/d/cs-sleeper/cmd")
    sleeper.connect()
    sleeper.leave()
    _publish(broker, "cs/v1/d/cs-sleeper/cmd", b"identify", b"sample-now")
    sleeper.connect()
    got = sleeper.received(2)
    assert [p for p, _, _ in got] == [b"identify", b"sample-now"]
    for _, _, mid in got:
        sleeper.ack(mid)
    sleeper.leave()


def test_a_message_never_acknowledged_is_delivered_again_on_the_next_connection(
    broker: BrokerAddress,
) -> None:
    """An ingest acknowledges after its commit. A message it had not acknowledged when its
    connection ended comes again (flagged DUP), even when it was held past 5 s (amqtt's own
    PUBACK timeout, after which amqtt used to forget it); one acknowledged late stays
    acknowledged."""
    ingest = _Persistent(broker, "fleet-ingest-test", "cs/v1/d/+/up")
    ingest.connect()
    _publish(broker, "cs/v1/d/cs-a/up", b"first", b"second")
    (first, second) = ingest.received(2)
    assert (first[0], second[0]) == (b"first", b"second")
    time.sleep(6)  # a commit slower than amqtt's 5 s PUBACK timeout: the condition under test
    ingest.ack(first[2])
    ingest.leave()  # the second was never acknowledged
    ingest.got.clear()
    ingest.connect()
    (again,) = ingest.received(1)
    assert again[:2] == (b"second", True)
    ingest.ack(again[2])
    # Nothing else comes: the late-acknowledged first message is not sent again. A marker
    # published now arrives after anything that was still queued.
    _publish(broker, "cs/v1/d/cs-a/up", b"marker")
    got = ingest.received(2)
    assert [p for p, _, _ in got] == [b"second", b"marker"]
    ingest.leave()


def test_what_a_session_away_may_queue_is_bounded_oldest_dropped_first(
    broker: BrokerAddress, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(embedded, "MAX_QUEUED", 2)
    gone = _Persistent(broker, "cs-gone", "cs/v1/d/cs-gone/cmd")
    gone.connect()
    gone.leave()
    _publish(broker, "cs/v1/d/cs-gone/cmd", b"1", b"2", b"3")
    gone.connect()
    got = gone.received(2)
    _publish(broker, "cs/v1/d/cs-gone/cmd", b"marker")
    got = gone.received(3)
    assert [p for p, _, _ in got] == [b"2", b"3", b"marker"]
    gone.leave()


def test_what_a_subscriber_leaves_unacknowledged_is_bounded(
    broker: BrokerAddress, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A subscriber that never acknowledges cannot use up its packet ids: beyond the bound
    the oldest message in flight is given up."""
    monkeypatch.setattr(amqtt_delivery, "MAX_IN_FLIGHT", 2)
    mute = _Persistent(broker, "mute-subscriber", "cs/v1/d/+/up")
    mute.connect()
    _publish(broker, "cs/v1/d/cs-a/up", b"1", b"2", b"3")
    mute.received(3)
    mute.leave()
    mute.got.clear()
    mute.connect()
    got = mute.received(2)
    for _, _, mid in got:
        mute.ack(mid)
    _publish(broker, "cs/v1/d/cs-a/up", b"marker")
    got = mute.received(3)
    assert [(p, dup) for p, dup, _ in got] == [(b"2", True), (b"3", True), (b"marker", False)]
    mute.leave()


def test_a_client_back_before_its_old_connection_ended_gets_its_messages(
    broker: BrokerAddress,
) -> None:
    """A device whose Wi-Fi dropped reconnects while the broker still holds its old
    connection: the new one takes over, receives what follows, and no will ("offline")
    is published for the old one."""
    watcher, wills, watching = client(broker, "status-watcher")
    watcher.subscribe("cs/v1/d/cs-x/status", qos=1)
    assert watching.wait(5)
    old = _Persistent(broker, "cs-x", "cs/v1/d/cs-x/cmd")
    old.connect(will=("cs/v1/d/cs-x/status", b"offline"))
    assert old.client is not None
    old.client.loop_stop()  # the old link goes quiet: no DISCONNECT, its socket left open
    new = _Persistent(broker, "cs-x", "cs/v1/d/cs-x/cmd")
    new.connect(will=("cs/v1/d/cs-x/status", b"offline"))
    _publish(broker, "cs/v1/d/cs-x/cmd", b"identify")
    ((payload, _, mid),) = new.received(1)
    assert payload == b"identify"
    new.ack(mid)
    # A marker on the status topic: a will published at the take-over would come first.
    _publish(broker, "cs/v1/d/cs-x/status", b"marker")
    wait_until(lambda: "cs/v1/d/cs-x/status" in wills, 10, "the marker on the status topic")
    assert wills == ["cs/v1/d/cs-x/status"]
    new.leave()
    watcher.loop_stop()
    watcher.disconnect()


def _received_later(who: _Persistent, n: int) -> list[tuple[bytes, bool, int]]:
    """What `who` gets from a broker it reaches only after a restart, without subscribing
    again: its session, not a new SUBSCRIBE, must bring the messages."""
    who.connect(subscribe=False)
    got = who.received(n)
    for _, _, mid in got:
        who.ack(mid)
    return got


def test_a_graceful_restart_keeps_retained_messages_sessions_and_messages_in_flight(
    tmp_path: Path,
) -> None:
    """`fleet serve` restarted for an upgrade: a battery device away during it still finds
    its OTA offer and its command, and the ingest gets what it had not acknowledged (DUP)
    and what was published while it was away."""
    state = tmp_path / "broker-state.json"
    first = EmbeddedBroker("127.0.0.1", 0, state_path=state)
    address = first.start()
    ingest = _Persistent(address, "fleet-ingest-restart", "cs/v1/d/+/up")
    ingest.connect()
    device = _Persistent(address, "cs-away", "cs/v1/d/cs-away/cmd")
    device.connect()
    device.leave()
    _publish(address, "cs/v1/d/cs-a/up", b"unacknowledged")
    ingest.received(1)
    ingest.leave()
    ingest.got.clear()
    _publish(address, "cs/v1/d/cs-a/up", b"while away")
    _publish(address, "cs/v1/d/cs-away/cmd", b"identify")
    offer = client(address, "fleet-ota")[0]
    offer.publish("cs/v1/d/cs-away/ota", b"offer", qos=1, retain=True).wait_for_publish(5)
    offer.loop_stop()
    offer.disconnect()
    first.stop()
    assert state.stat().st_mode & 0o777 == 0o600  # it holds readings and commands

    second = EmbeddedBroker("127.0.0.1", 0, state_path=state)
    address = second.start()
    try:
        assert not state.exists()  # restored: a crash from now on must not bring it back
        ingest.address = device.address = address
        got = _received_later(ingest, 2)
        assert sorted((p, dup) for p, dup, _ in got) == [
            (b"unacknowledged", True),
            (b"while away", False),
        ]
        device.topic = "cs/v1/d/cs-away/ota"  # its new subscription brings the retained offer
        device.connect()
        got = device.received(2)
        assert sorted(p for p, _, _ in got) == [b"identify", b"offer"]
        for _, _, mid in got:
            device.ack(mid)
        device.leave()
        # Packet ids go on from the restored ones: a new message is not taken for an old one.
        _publish(address, "cs/v1/d/cs-a/up", b"after")
        got = ingest.received(3)
        assert got[-1][:2] == (b"after", False)
        ingest.leave()
    finally:
        second.stop()


def test_every_message_acknowledged_before_a_stop_is_delivered_after_the_restart(
    tmp_path: Path,
) -> None:
    """A stop while a device publishes as fast as it can: whatever the broker acknowledged,
    whether routed, queued, still to be routed or in flight to the connected ingest, arrives
    after the restart. Which messages are where at the stop varies from run to run; none
    may be lost in any of those places."""
    state = tmp_path / "broker-state.json"
    first = EmbeddedBroker("127.0.0.1", 0, state_path=state)
    address = first.start()
    ingest = _Persistent(address, "fleet-ingest-burst", "cs/v1/d/+/up")
    ingest.connect()  # connected through the stop, acknowledging nothing
    device = Burst(address, "cs-burst", in_flight=100)
    sent = [f"r{i}".encode() for i in range(2000)]
    assert device.send("cs/v1/d/cs-burst/up", sent, wait_for=200, timeout=10)
    first.stop()  # while the device is still sending
    device.stop()
    delivered_before = {p for p, _, _ in ingest.got}
    assert ingest.client is not None
    ingest.client.loop_stop()
    ingest.client = None
    promised = device.acknowledged()
    assert len(promised) < len(sent)  # the stop came mid-stream
    second = EmbeddedBroker("127.0.0.1", 0, state_path=state)
    ingest.address = second.start()
    try:
        ingest.got.clear()
        ingest.connect(subscribe=False)

        def delivered() -> set[bytes]:
            with ingest._lock:
                return {p for p, _, _ in ingest.got}

        wait_until(lambda: promised <= delivered(), 10, "every acknowledged message")
        after = delivered()
        assert promised - after == set(), f"{len(promised - after)} acknowledged, never delivered"
        assert delivered_before <= after  # nor was anything in flight to the ingest
        ingest.leave()
    finally:
        second.stop()


@pytest.mark.parametrize(
    "content",
    [
        '{"version": 1, "retained": [{"topic": 5}]',  # cut short, as by a full disk
        '{"version": 1, "retained": [], "sessions": [{"client_id": 5}], "pending": []}',
        '{"version": 99}',  # written by a later release
    ],
    ids=["cut-short", "malformed-session", "unknown-version"],
)
def test_a_state_file_that_cannot_be_read_is_kept_aside_and_the_broker_starts(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, content: str
) -> None:
    state = tmp_path / "broker-state.json"
    state.write_text(content)
    broker = EmbeddedBroker("127.0.0.1", 0, state_path=state)
    with caplog.at_level(logging.ERROR, logger="fleet.broker.amqtt_state"):
        address = broker.start()
    try:
        (aside,) = tmp_path.glob("broker-state.json.unreadable-*")
        assert aside.read_text() == content
        assert not state.exists()
        assert "cannot be read" in caplog.text and str(aside) in caplog.text
        _publish(address, "cs/v1/d/cs-a/up", b"works")  # and it serves
    finally:
        broker.stop()
    assert state.exists()  # its own state is saved again at the stop
