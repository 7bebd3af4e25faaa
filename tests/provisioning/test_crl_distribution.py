"""The CRL a fleet serves at its distribution point: every API replica signs the same list
from the database, so a revocation made on one is in the CRL another serves."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from fastapi.testclient import TestClient
from pydantic import ValidationError

from fleet.api.app import create_app
from fleet.core.context import FleetContext
from fleet.core.settings import Settings
from fleet.identity import CAStore
from tests.fleet.conftest import World
from tests.provisioning.test_enrolment_api import DEVICE, _enrol, _wifi

URL = "https://fleet.example.org/pki/crl.pem"


@pytest.fixture
def client(fleet_ctx: FleetContext) -> Iterator[TestClient]:
    with TestClient(create_app(fleet_ctx)) as c:
        yield c


def _uris(names: list[x509.GeneralName] | None) -> list[str]:
    return [str(n.value) for n in names or []]


def test_a_revocation_on_one_replica_is_in_the_crl_another_serves(
    client: TestClient,
    world: World,
    fleet_ctx: FleetContext,
    tmp_path: Path,
) -> None:
    fleet_ctx.settings.crl_url = URL
    _wifi(client, world)
    enrolled = _enrol(client, world).json()["certificate"]
    cert = x509.load_pem_x509_certificate(enrolled["certificate_pem"].encode())
    points = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    assert [uri for p in points for uri in _uris(p.full_name)] == [URL]

    revoked = client.post(
        f"/api/v1/enrolments/certificates/{enrolled['serial']}/revoke",
        json={"reason": "key_compromise"},
        headers=world.headers("admin"),
    )
    assert revoked.status_code == 200, revoked.text

    # Another replica: the same CA from its own copy (a mounted secret), no register file.
    other = tmp_path / "replica-ca"
    source = CAStore(fleet_ctx.settings.resolved_ca_dir)
    other.mkdir()
    shutil.copy2(source.cert_path, other / "ca.crt")
    shutil.copy2(source.key_path, other / "ca.key")
    fleet_ctx.settings.ca_dir = other
    served = client.get("/pki/crl.pem")  # anonymous: brokers fetch it without a sign-in
    assert served.status_code == 200, served.text
    assert served.headers["cache-control"] == "no-store"
    crl = x509.load_pem_x509_crl(served.content)
    assert crl.is_signature_valid(source.load().certificate.public_key())  # type: ignore[arg-type]
    entry = crl.get_revoked_certificate_by_serial_number(int(enrolled["serial"], 16))
    assert entry is not None
    reason = entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
    assert reason is x509.ReasonFlags.key_compromise
    idp = crl.extensions.get_extension_for_class(x509.IssuingDistributionPoint).value
    assert _uris(idp.full_name) == [URL]

    signed_in = client.get("/api/v1/enrolments/crl", headers=world.headers("admin"))
    assert x509.load_pem_x509_crl(signed_in.content).get_revoked_certificate_by_serial_number(
        int(enrolled["serial"], 16)
    )


def test_offline_revocations_are_listed_beside_the_fleets(
    client: TestClient,
    world: World,
    fleet_ctx: FleetContext,
) -> None:
    """A service certificate revoked with the identity CLI (the CA folder's register) is listed
    beside the fleet's own revocations; no distribution point is named without FLEET_CRL_URL."""
    store = CAStore(fleet_ctx.settings.resolved_ca_dir)
    ca = store.load() if store.exists() else store.create()
    service = ca.issue_service("fleet-ingest-0")
    store.revoke(ca, service.serial)
    _wifi(client, world)
    device_serial = int(_enrol(client, world).json()["certificate"]["serial"], 16)
    gone = client.delete(f"/api/v1/devices/{DEVICE}", headers=world.headers("staff_hackney"))
    assert gone.status_code == 204

    crl = x509.load_pem_x509_crl(client.get("/pki/crl.pem").content)
    listed = {entry.serial_number for entry in crl}
    assert listed == {service.serial, device_serial}
    with pytest.raises(x509.ExtensionNotFound):
        crl.extensions.get_extension_for_class(x509.IssuingDistributionPoint)


@pytest.mark.parametrize("url", ["ftp://ca.example.org/crl.pem", "https://u:p@ca.example.org/c"])
def test_a_crl_url_brokers_cannot_fetch_is_a_settings_error(url: str) -> None:
    with pytest.raises(ValidationError, match="FLEET_CRL_URL"):
        Settings(crl_url=url)
