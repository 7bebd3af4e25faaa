"""A connection's client id is its certificate's CN, on a real Mosquitto with the shipped config.

A client id names a persistent session. If any valid certificate could choose it, a device
certificate read out of a sensor's flash could connect as the ingest or as another device,
close that client's connection and take its session with the messages queued for it.
"""

from __future__ import annotations

import contextlib
import queue
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fleet.core.settings import Settings
from tests.security.clients import DEADLINE_S, TlsClient
from tests.security.conftest import API_0, DEVICE_A, DEVICE_B, INGEST_0, INGEST_1, Broker

pytestmark = pytest.mark.mosquitto

UP_B = f"cs/v1/d/{DEVICE_B}/up"
CMD_B = f"cs/v1/d/{DEVICE_B}/cmd"


@pytest.fixture
def opened() -> Iterator[list[TlsClient]]:
    clients: list[TlsClient] = []
    yield clients
    for client in clients:
        client.close()


def _connected(
    opened: list[TlsClient], broker: Broker, client_id: str, identity: str, **kw: bool
) -> TlsClient:
    pki = broker.pki
    files = pki.devices[identity] if identity in pki.devices else pki.service(identity)
    client = broker.client(client_id, files, **kw)
    opened.append(client)
    assert client.connect(), broker.log_text()[-2000:]
    return client


def _impostor(opened: list[TlsClient], broker: Broker, client_id: str) -> None:
    """Device A's certificate asking for `client_id`'s persistent session: it may be refused
    or given its own; it must never resume the other client's session."""
    client = broker.client(client_id, broker.pki.devices[DEVICE_A], clean_session=False)
    opened.append(client)
    if client.connect():
        assert client.session_present is False, f"{DEVICE_A} resumed {client_id}'s session"
        client.subscribe("#")
    client.close()


def test_a_device_certificate_cannot_take_the_ingest_session(
    fresh_broker: Broker, opened: list[TlsClient]
) -> None:
    ingest = _connected(opened, fresh_broker, INGEST_0, INGEST_0, clean_session=False)
    ingest.subscribe("cs/v1/d/+/up")
    ingest.close()
    device_b = _connected(opened, fresh_broker, DEVICE_B, DEVICE_B)
    queued = [(UP_B, f"reading-{n}".encode()) for n in range(5)]
    for topic, payload in queued:
        device_b.publish(topic, payload)

    _impostor(opened, fresh_broker, INGEST_0)

    ingest = _connected(opened, fresh_broker, INGEST_0, INGEST_0, clean_session=False)
    assert ingest.session_present is True
    assert ingest.receive_until(*queued[-1]) == queued


def test_a_device_certificate_cannot_disconnect_the_ingest(
    broker: Broker, opened: list[TlsClient]
) -> None:
    ingest = _connected(opened, broker, INGEST_0, INGEST_0)
    ingest.subscribe("cs/v1/d/+/up")

    _impostor(opened, broker, INGEST_0)
    # Mosquitto closes a taken-over connection before it answers the new one, so the marker
    # below, published after the impostor's CONNACK, would find the ingest already gone.
    device_b = _connected(opened, broker, DEVICE_B, DEVICE_B)
    device_b.publish(UP_B, b"marker")

    assert ingest.receive_until(UP_B, b"marker") == [(UP_B, b"marker")]
    assert not ingest.disconnected.is_set()


def test_a_device_certificate_cannot_take_another_devices_session(
    fresh_broker: Broker, opened: list[TlsClient]
) -> None:
    device_b = _connected(opened, fresh_broker, DEVICE_B, DEVICE_B, clean_session=False)
    device_b.subscribe(CMD_B)
    device_b.close()
    api = _connected(opened, fresh_broker, API_0, API_0)
    api.publish(CMD_B, b"reboot")

    _impostor(opened, fresh_broker, DEVICE_B)

    device_b = _connected(opened, fresh_broker, DEVICE_B, DEVICE_B, clean_session=False)
    assert device_b.session_present is True
    assert device_b.receive_until(CMD_B, b"reboot") == [(CMD_B, b"reboot")]


def _client_id(cert: Path, key: Path) -> str:
    """The client id the fleet's ingest derives from its certificate."""
    return Settings(mqtt_cert_file=cert, mqtt_key_file=key).ingest_identity().client_id


def test_ingest_workers_with_their_own_certificates_share_the_load(
    broker: Broker, opened: list[TlsClient]
) -> None:
    workers = []
    for name in (INGEST_0, INGEST_1):
        client_id = _client_id(*broker.pki.result.services[name])
        worker = _connected(opened, broker, client_id, name)
        worker.subscribe("$share/ingest/cs/v1/d/+/up")
        workers.append(worker)
    device_b = _connected(opened, broker, DEVICE_B, DEVICE_B)
    sent = {f"pack-{n}".encode() for n in range(20)}
    for payload in sorted(sent):
        device_b.publish(UP_B, payload)

    received: list[list[bytes]] = [[], []]
    deadline = time.monotonic() + DEADLINE_S
    while sum(map(len, received)) < len(sent) and time.monotonic() < deadline:
        for worker, got in zip(workers, received, strict=True):
            with contextlib.suppress(queue.Empty):
                got.append(worker.messages.get(timeout=0.05)[1])

    assert sorted(received[0] + received[1]) == sorted(sent)  # each message once
    assert received[0] and received[1]  # both workers took a share
    assert not any(w.disconnected.is_set() for w in workers)
