"""The intake MQTT client against a real Mosquitto: batches, acks, backpressure, sessions,
publishes, refusals and a broker that speaks garbage."""

from __future__ import annotations

import logging
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from fleet.broker.intake import IntakeCallbacks, IntakeClient
from fleet.broker.url import BrokerAddress
from fleet.broker.wire import Delivery
from fleet.loadgen import harness
from fleet.loadgen.infra import PrivateMosquitto, ServiceUnavailable
from tests.conftest import free_port, missing_service, wait_for_port

TOPIC = "cs/v1/d/#"


class Owner:
    """Collects deliveries; `limit` caps how many it holds un-released (its room)."""

    def __init__(self, limit: int = 10**9) -> None:
        self.limit = limit
        self.held: list[tuple[Delivery, int]] = []
        self.seen: list[Delivery] = []
        self.most_held = 0
        self.ups: list[bool] = []
        self.downs: list[str] = []
        self.changed = threading.Condition()

    def client(self, broker: BrokerAddress, client_id: str, **options: Any) -> IntakeClient:
        """A client reporting to this owner that retries within a fraction of a second."""
        return IntakeClient(
            broker,
            client_id=client_id,
            topic_filter=TOPIC,
            callbacks=self.callbacks(),
            reconnect_min_s=0.1,
            reconnect_max_s=0.2,
            **options,
        )

    def callbacks(self) -> IntakeCallbacks:
        return IntakeCallbacks(
            on_batch=self.on_batch, room=self.room, on_up=self.on_up, on_down=self.on_down
        )

    def room(self) -> int:
        return self.limit - len(self.held)

    def on_batch(self, batch: list[Delivery], generation: int) -> None:
        with self.changed:
            self.held += [(d, generation) for d in batch]
            self.seen += batch
            self.most_held = max(self.most_held, len(self.held))
            self.changed.notify_all()

    def on_up(self, session_present: bool) -> None:
        with self.changed:
            self.ups.append(session_present)
            self.changed.notify_all()

    def on_down(self, reason: str) -> None:
        with self.changed:
            self.downs.append(reason)
            self.changed.notify_all()

    def wait(self, predicate: object, timeout: float = 10.0) -> None:
        with self.changed:
            assert self.changed.wait_for(predicate, timeout), "timed out"  # type: ignore[arg-type]

    def release(self) -> list[tuple[Delivery, int]]:
        with self.changed:
            taken, self.held = self.held, []
        return taken


def _publish(port: int, count: int, prefix: str = "cs/v1/d/dev") -> None:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="sender")
    client.connect("127.0.0.1", port)
    client.loop_start()
    infos = [client.publish(f"{prefix}-{i % 7}/up", f"m{i}".encode(), qos=1) for i in range(count)]
    for info in infos:
        info.wait_for_publish(10)
    client.disconnect()
    client.loop_stop()


@pytest.fixture
def intake(mosquitto: BrokerAddress) -> Iterator[tuple[Owner, IntakeClient]]:
    harness.prime_session(mosquitto.port, "intake-test", TOPIC)
    owner = Owner()
    client = IntakeClient(
        mosquitto, client_id="intake-test", topic_filter=TOPIC, callbacks=owner.callbacks()
    )
    yield owner, client
    client.stop()


def test_a_backlog_arrives_in_order_and_acked_messages_are_not_redelivered(
    mosquitto: BrokerAddress, intake: tuple[Owner, IntakeClient]
) -> None:
    owner, client = intake
    _publish(mosquitto.port, 300)
    client.start()
    kept: list[Delivery] = []
    released = 0
    while released < 300:
        owner.wait(lambda: owner.held)
        taken = owner.release()
        released += len(taken)
        acked = [d for d, _ in taken if int(d.payload[1:]) < 295]
        kept += [d for d, _ in taken if int(d.payload[1:]) >= 295]
        client.ack([d.mid for d in acked], taken[0][1])
    owner.wait(lambda: owner.ups)  # the backlog may come before the SUBACK
    assert owner.ups == [True]  # the primed session was resumed
    assert [d.payload for d in owner.seen] == [f"m{i}".encode() for i in range(300)]
    assert all(d.qos == 1 and d.topic.endswith("/up") for d in owner.seen)
    assert len(kept) == 5
    # Reconnect: exactly the five never acknowledged come back.
    client.stop()
    owner.seen.clear()
    client.start()
    owner.wait(lambda: len(owner.seen) == 5)
    assert [d.payload for d in owner.seen] == [f"m{i}".encode() for i in range(295, 300)]


def test_no_room_stops_reading_until_the_owner_resumes(
    mosquitto: BrokerAddress, intake: tuple[Owner, IntakeClient]
) -> None:
    owner, client = intake
    owner.limit = 7  # below the broker's in-flight window (20), so the owner is what stops it
    _publish(mosquitto.port, 400)
    client.start()
    while len(owner.seen) < 400:
        owner.wait(lambda: len(owner.held) == owner.limit or len(owner.seen) == 400)
        taken = owner.release()
        client.ack([d.mid for d, _ in taken], taken[0][1])
        client.resume()
    assert owner.most_held == 7
    assert [d.payload for d in owner.seen] == [f"m{i}".encode() for i in range(400)]


def test_an_ack_from_an_earlier_connection_is_not_sent_on_the_next(
    mosquitto: BrokerAddress, intake: tuple[Owner, IntakeClient]
) -> None:
    owner, client = intake
    _publish(mosquitto.port, 5)
    client.start()
    owner.wait(lambda: len(owner.seen) == 5)
    stale = owner.release()
    client.stop()
    owner.seen.clear()
    client.start()
    owner.wait(lambda: len(owner.seen) == 5)
    # Message ids are reused across connections: this ack names the old delivery.
    client.ack([d.mid for d, _ in stale], stale[0][1])
    client.stop()
    owner.seen.clear()
    client.start()
    owner.wait(lambda: len(owner.seen) == 5)  # still unacknowledged, so redelivered


def test_publishes_reach_subscribers_and_fail_fast_when_offline(
    mosquitto: BrokerAddress, intake: tuple[Owner, IntakeClient]
) -> None:
    owner, client = intake
    assert not client.publish("cs/v1/d/dev-1/cmd", b"early", qos=1)
    got: list[bytes] = []
    arrived = threading.Event()
    listener = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="listener")

    def on_message(c: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        got.append(bytes(msg.payload))
        arrived.set()

    listener.on_message = on_message
    listener.connect("127.0.0.1", mosquitto.port)
    listener.subscribe("cs/v1/d/+/cmd", qos=1)
    listener.loop_start()
    try:
        client.start()
        owner.wait(lambda: owner.ups)
        assert client.publish("cs/v1/d/dev-1/cmd", b'{"id":"c1"}', qos=1)
        assert arrived.wait(10)
        assert got == [b'{"id":"c1"}']
    finally:
        listener.loop_stop()
        listener.disconnect()


def test_a_restarted_broker_is_reconnected_to_and_the_session_resumed(tmp_path: Path) -> None:
    try:
        mq = PrivateMosquitto(tmp_path / "mq").start()
    except ServiceUnavailable as exc:
        missing_service(str(exc))
    owner = Owner()
    client = owner.client(BrokerAddress("127.0.0.1", mq.port), "intake-restart")
    client.start()
    try:
        owner.wait(lambda: len(owner.ups) == 1)
        first = client.generation
        mq.restart()
        owner.wait(lambda: len(owner.ups) == 2, timeout=20)
        assert owner.downs and owner.ups == [False, True]  # the broker kept the session
        assert client.generation > first
        _publish(mq.port, 3)
        owner.wait(lambda: len(owner.seen) == 3)
    finally:
        client.stop()
        mq.stop()


def test_a_refused_connection_is_logged_with_the_reason(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    try:
        binary = PrivateMosquitto(tmp_path / "unused").binary
    except ServiceUnavailable as exc:
        missing_service(str(exc))
    port = free_port()
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous false\n")
    proc = subprocess.Popen(
        [binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    owner = Owner()
    client = owner.client(
        BrokerAddress("127.0.0.1", port, username="nobody", password="wrong"), "intake-refused"
    )
    try:
        wait_for_port("127.0.0.1", port)
        with caplog.at_level(logging.WARNING, logger="fleet.broker.intake"):
            client.start()
            owner.wait(lambda: "refused" in caplog.text)
        assert "not authorised" in caplog.text or "username or password" in caplog.text
        assert owner.ups == []
    finally:
        client.stop()
        proc.kill()


class FakeBroker:
    """Accepts connections, answers CONNECT and SUBSCRIBE, then sends `after_suback` and
    records what the client sends until it hangs up."""

    def __init__(self, after_suback: bytes = b"") -> None:
        self._server = socket.create_server(("127.0.0.1", 0))
        self.address = BrokerAddress("127.0.0.1", self._server.getsockname()[1])
        self._after = after_suback
        self.sessions: list[bytes] = []  # what the client sent after SUBSCRIBE, per connection
        self.ended = threading.Semaphore(0)
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            with conn:
                conn.recv(1024)  # CONNECT
                conn.sendall(b"\x20\x02\x00\x00")  # CONNACK, accepted
                conn.recv(1024)  # SUBSCRIBE
                conn.sendall(b"\x90\x03\x00\x01\x01" + self._after)  # SUBACK
                received = b""
                while chunk := conn.recv(1024):
                    received += chunk
                self.sessions.append(received)
            self.ended.release()

    def close(self) -> None:
        self._server.close()


def test_a_broker_sending_garbage_is_dropped_and_retried(caplog: pytest.LogCaptureFixture) -> None:
    broker = FakeBroker(after_suback=b"\x36\x03\x00\x01t")  # a QoS 3 PUBLISH
    owner = Owner()
    client = owner.client(broker.address, "intake-garbage")
    with caplog.at_level(logging.ERROR, logger="fleet.broker.intake"):
        client.start()
        try:
            assert broker.ended.acquire(timeout=10)
            assert broker.ended.acquire(timeout=10)  # it came back after dropping the first
        finally:
            client.stop()
            broker.close()
    assert "malformed" in caplog.text
    assert owner.seen == []


def test_a_silent_broker_is_pinged_then_given_up_on() -> None:
    broker = FakeBroker()  # never answers PINGREQ
    owner = Owner()
    client = owner.client(broker.address, "intake-silent", keepalive_s=1)
    client.start()
    try:
        assert broker.ended.acquire(timeout=10)
        owner.wait(lambda: owner.downs)
    finally:
        client.stop()
        broker.close()
    assert b"\xc0\x00" in broker.sessions[0]  # PINGREQ within the keepalive
    assert "no reply" in owner.downs[0]
