"""Who gets a connection at all: only holders of an unrevoked certificate from the device CA."""

from __future__ import annotations

import socket
import ssl

import pytest
from cryptography import x509

from fleet.identity import CertificateAuthority
from tests.security.clients import Identity
from tests.security.conftest import DEVICE_A, Broker

pytestmark = pytest.mark.mosquitto


def test_device_with_certificate_connects(broker: Broker) -> None:
    client = broker.client("tls-ok", broker.pki.devices[DEVICE_A])
    try:
        assert client.connect()
    finally:
        client.close()


def test_client_without_certificate_is_refused(broker: Broker) -> None:
    anonymous = Identity(broker.pki.result.services_dir / "ca.crt")
    client = broker.client("no-cert", anonymous)
    try:
        assert not client.connect()
    finally:
        client.close()


def test_certificate_from_another_ca_is_refused(broker: Broker) -> None:
    impostor_ca = CertificateAuthority.create(common_name="Impostor CA")
    issued = impostor_ca.issue_device(DEVICE_A)  # same CN as a genuine device
    folder = broker.pki.root / "impostor"
    issued.write(folder / "device.crt", folder / "device.key")
    identity = Identity(
        broker.pki.result.services_dir / "ca.crt", folder / "device.crt", folder / "device.key"
    )
    client = broker.client("impostor", identity)
    try:
        assert not client.connect()
    finally:
        client.close()
    assert "certificate verify failed" in broker.log_text()


def test_plain_mqtt_on_the_tls_port_gets_nothing(broker: Broker) -> None:
    connect_packet = bytes.fromhex("101000044d5154540402003c0004706c61696e")
    with socket.create_connection((broker.host, broker.port), timeout=5) as sock:
        sock.sendall(connect_packet)
        try:
            reply = sock.recv(4)
        except (ConnectionResetError, TimeoutError):
            reply = b""
    assert not reply.startswith(b"\x20")  # never a CONNACK


def test_broker_certificate_names_the_broker(broker: Broker) -> None:
    context = ssl.create_default_context(cafile=str(broker.pki.result.services_dir / "ca.crt"))
    cert, key = broker.pki.result.services["fleet-ingest-0"]
    context.load_cert_chain(cert, key)
    with (
        socket.create_connection((broker.host, broker.port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        assert tls.version() in ("TLSv1.2", "TLSv1.3")


def test_revoked_certificate_is_refused_after_sighup(fresh_broker: Broker) -> None:
    pki = fresh_broker.pki
    victim = pki.add_device("cs-cccccccccccc")
    before = fresh_broker.client("victim-before", victim)
    try:
        assert before.connect()
    finally:
        before.close()

    serial = _serial(victim)
    pki.store.revoke(pki.ca, serial, publish_to=pki.result.broker_files.crlfile)
    fresh_broker.reload()

    after = fresh_broker.client("victim-after", victim)
    bystander = fresh_broker.client("bystander", pki.devices[DEVICE_A])
    try:
        assert not after.connect()
        assert bystander.connect()
    finally:
        after.close()
        bystander.close()


def _serial(identity: Identity) -> int:
    if identity.cert is None:
        raise ValueError("identity without a certificate has no serial")
    return x509.load_pem_x509_certificate(identity.cert.read_bytes()).serial_number
