"""The enrolment endpoints: placement, certificates, idempotency, scoping, rotation, revocation."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from fleet.access.principal import SYSTEM
from fleet.api.app import create_app
from fleet.core.context import FleetContext
from fleet.enrolment.secrets import SecretBox, SecretUnreadable
from fleet.identity import CAStore
from fleet.models import AuditEntry, Device, DeviceCertificate, Placement, Property, WifiProfile
from fleet.models.ota import TrustedKey
from fleet.ota import bundle, signing
from fleet.ota import service as ota_service
from fleet.ota.package import ReleaseFile
from tests.fleet.conftest import World

DEVICE = "cs-0a0b0c0d0e0f"
PLACE = {"borough": "hackney", "property_reference": "HACKNEY-0042", "room": "bathroom"}


@pytest.fixture
def client(fleet_ctx: FleetContext) -> Iterator[TestClient]:
    with TestClient(create_app(fleet_ctx)) as c:
        yield c


def _wifi(client: TestClient, world: World, borough: str = "hackney") -> None:
    r = client.put(
        f"/api/v1/enrolments/wifi-profiles/{borough}/default",
        json={"ssid": "Estate-IoT", "password": "correct-horse"},
        headers=world.headers("admin"),
    )
    assert r.status_code == 200, r.text


def _enrol(client: TestClient, world: World, who: str = "tech_hackney", **over: str):  # type: ignore[no-untyped-def]
    body = {"device_id": DEVICE, **PLACE, **over}
    return client.post("/api/v1/enrolments", json=body, headers=world.headers(who))


def _count(ctx: FleetContext, model: type) -> int:
    with ctx.sessions() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def test_enrolment_places_registers_and_certifies(
    client: TestClient, world: World, fleet_ctx: FleetContext
) -> None:
    _wifi(client, world)
    r = _enrol(client, world, position="external wall")
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["created"] is True and body["wifi"] == {
        "ssid": "Estate-IoT",
        "password": "correct-horse",
    }
    cert = x509.load_pem_x509_certificate(body["certificate"]["certificate_pem"].encode())
    ca = x509.load_pem_x509_certificate(body["certificate"]["ca_pem"].encode())
    key = serialization.load_pem_private_key(body["certificate"]["private_key_pem"].encode(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP256R1)
    assert key.public_key().public_numbers() == cert.public_key().public_numbers()
    assert cert.subject.rfc4514_string() == f"CN={DEVICE}" and cert.issuer == ca.subject
    cert.verify_directly_issued_by(ca)
    assert f"{cert.serial_number:x}" == body["certificate"]["serial"]
    with fleet_ctx.sessions() as s:
        device = s.scalars(select(Device).where(Device.device_id == DEVICE)).one()
        placement = s.get(Placement, device.placement_id)
        assert placement is not None and placement.room == "bathroom"
        prop = s.get(Property, placement.property_id)
        assert prop is not None and prop.reference == "HACKNEY-0042"
        assert device.borough_id == world.borough_ids["hackney"]
        audit = s.scalars(select(AuditEntry).where(AuditEntry.action == "device.enrol")).one()
        assert "tech_hackney@example.org" in audit.actor and audit.target_id == DEVICE
        record = s.scalars(select(DeviceCertificate)).one()
        assert record.serial == body["certificate"]["serial"] and record.revoked_at is None
        # The Wi-Fi password is stored encrypted, never in clear.
        stored = s.scalars(select(WifiProfile)).one().password_encrypted
        assert stored and "correct-horse" not in stored


def test_re_enrolling_in_place_is_idempotent(
    client: TestClient, world: World, fleet_ctx: FleetContext
) -> None:
    _wifi(client, world)
    first = _enrol(client, world).json()
    devices, placements = _count(fleet_ctx, Device), _count(fleet_ctx, Placement)
    again = _enrol(client, world)
    assert again.status_code == 200 and again.json()["created"] is False
    assert again.json()["certificate"]["serial"] != first["certificate"]["serial"]
    assert again.json()["placement_id"] == first["placement_id"]
    assert (_count(fleet_ctx, Device), _count(fleet_ctx, Placement)) == (devices, placements)
    assert _count(fleet_ctx, DeviceCertificate) == 2


def test_enrolment_carries_the_release_keys_the_fleet_trusts(
    client: TestClient, world: World, fleet_ctx: FleetContext, tmp_path: Path
) -> None:
    """Without them in its ota/trust.json a sensor refuses every update."""
    _wifi(client, world)
    assert _enrol(client, world).json()["release_keys"] == {}
    kept, revoked = signing.generate(tmp_path / "k"), signing.generate(tmp_path / "k")
    with fleet_ctx.sessions.begin() as s:
        ota_service.trust_key(s, SYSTEM, kept.public_hex)
        ota_service.trust_key(s, SYSTEM, revoked.public_hex)
        s.scalars(
            select(TrustedKey).where(TrustedKey.kid == revoked.kid)
        ).one().revoked_at = datetime.now(UTC)
    assert _enrol(client, world).json()["release_keys"] == {kept.kid: kept.public_hex}


def test_enrolment_carries_the_highest_floor_the_releases_declare(
    client: TestClient, world: World, fleet_ctx: FleetContext, tmp_path: Path
) -> None:
    """A sensor flashed afresh must not accept again a release the fleet put below its floor."""
    _wifi(client, world)
    assert _enrol(client, world).json()["release_floor"] == "0.0.0"
    key = signing.generate(tmp_path / "k")
    files = {"cs/app.mpy": b"M\x06app"}
    with fleet_ctx.sessions.begin() as s:
        ota_service.trust_key(s, SYSTEM, key.public_hex)
        for version, floor in (("0.9.1", "0.9.0"), ("0.10.0", "0.10.0"), ("0.10.1", None)):
            rel = ReleaseFile.from_built(bundle.build_app(version, floor=floor, files=files))
            rel.sign(key)
            ota_service.publish_release(s, SYSTEM, rel)
    assert _enrol(client, world).json()["release_floor"] == "0.10.0"  # by number, not text


def test_enrolled_elsewhere_is_a_conflict_naming_the_place(
    client: TestClient, world: World, fleet_ctx: FleetContext
) -> None:
    _wifi(client, world)
    assert _enrol(client, world).status_code == 201
    r = _enrol(client, world, room="kitchen")
    assert r.status_code == 409
    assert r.json()["detail"]["code"] == "already_enrolled_elsewhere"
    assert "HACKNEY-0042, bathroom" in r.json()["detail"]["message"]
    # A device of another borough is refused without revealing where it is.
    r = _enrol(client, world, device_id="cs-camden-0001")
    assert r.status_code == 409
    assert "another borough" in r.json()["detail"]["message"]
    assert "CAMDEN" not in r.json()["detail"]["message"]


def test_enrolling_again_names_the_place_as_a_technician_types_it(
    client: TestClient, world: World, fleet_ctx: FleetContext
) -> None:
    """Enrolling again (to renew a sensor's files) need not repeat the position, nor the
    room's capitals; a different position is refused, saying how to keep the place."""
    _wifi(client, world)
    first = _enrol(client, world, position="external wall").json()
    placements = _count(fleet_ctx, Placement)
    for again in (_enrol(client, world), _enrol(client, world, room=" Bathroom ")):
        assert again.status_code == 200, again.text
        body = again.json()
        assert (body["placement_id"], body["room"], body["position"]) == (
            first["placement_id"],
            "bathroom",
            "external wall",
        )
    assert _count(fleet_ctx, Placement) == placements

    moved = _enrol(client, world, position="internal wall")
    assert moved.status_code == 409
    said = moved.json()["detail"]["message"]
    assert "HACKNEY-0042, bathroom, external wall, in another position than 'internal wall'" in (
        said
    )
    assert "leave the position out (or give 'external wall') to keep its place" in said

    # A second sensor in the same room, typed differently, joins the same placement.
    other = _enrol(
        client, world, device_id="cs-0a0b0c0d0e10", room="BATHROOM", position="External wall"
    )
    assert other.status_code == 201 and other.json()["placement_id"] == first["placement_id"]


def test_borough_scope_token_and_permission(client: TestClient, world: World) -> None:
    _wifi(client, world, "camden")
    r = _enrol(client, world, borough="camden")
    assert r.status_code == 403 and r.json()["detail"]["code"] == "borough_not_permitted"
    r = _enrol(client, world, who="readonly_hackney")
    assert r.status_code == 403 and "devices:enrol" in r.json()["detail"]
    r = client.post(
        "/api/v1/enrolments",
        json={"device_id": DEVICE, **PLACE},
        headers={"Authorization": "Bearer fst_not-a-token"},
    )
    assert r.status_code == 401


def test_missing_wifi_profile_changes_nothing(
    client: TestClient, world: World, fleet_ctx: FleetContext
) -> None:
    devices = _count(fleet_ctx, Device)
    r = _enrol(client, world)
    assert r.status_code == 409 and r.json()["detail"]["code"] == "wifi_profile_missing"
    assert "hackney" in r.json()["detail"]["message"]
    assert _count(fleet_ctx, Device) == devices and _count(fleet_ctx, Property) == 2


def test_rotation_only_when_due_unless_forced(client: TestClient, world: World) -> None:
    _wifi(client, world)
    first = _enrol(client, world).json()["certificate"]
    url = f"/api/v1/enrolments/{DEVICE}/rotate"
    r = client.post(url, json={}, headers=world.headers("tech_hackney"))
    assert r.status_code == 409 and r.json()["detail"]["code"] == "rotation_not_due"
    # Within the window (a window longer than the validity makes it due now).
    r = client.post(url, json={"before_days": 398}, headers=world.headers("tech_hackney"))
    assert r.status_code == 200 and r.json()["serial"] != first["serial"]
    r = client.post(url, json={"force": True}, headers=world.headers("tech_hackney"))
    assert r.status_code == 200
    listed = client.get(
        f"/api/v1/enrolments/{DEVICE}/certificates", headers=world.headers("tech_hackney")
    ).json()
    assert [c["reason"] for c in listed] == ["enrol", "rotate", "rotate"]
    r = client.post(
        "/api/v1/enrolments/cs-camden-0001/rotate",
        json={"force": True},
        headers=world.headers("tech_hackney"),
    )
    assert r.status_code == 404


def test_revocation_is_admin_only_and_publishes_the_crl(
    client: TestClient, world: World, fleet_ctx: FleetContext, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    fleet_ctx.settings.crl_publish_path = tmp_path / "broker" / "crl.pem"
    _wifi(client, world)
    serial = _enrol(client, world).json()["certificate"]["serial"]
    url = f"/api/v1/enrolments/certificates/{serial}/revoke"
    r = client.post(url, json={"reason": "key_compromise"}, headers=world.headers("tech_hackney"))
    assert r.status_code == 403
    r = client.post(url, json={"reason": "key_compromise"}, headers=world.headers("admin"))
    assert r.status_code == 200 and r.json()["revoke_reason"] == "keyCompromise"
    crl = x509.load_pem_x509_crl(fleet_ctx.settings.crl_publish_path.read_bytes())
    revoked = crl.get_revoked_certificate_by_serial_number(int(serial, 16))
    assert revoked is not None
    served = client.get("/api/v1/enrolments/crl", headers=world.headers("admin"))
    assert x509.load_pem_x509_crl(served.content).get_revoked_certificate_by_serial_number(
        int(serial, 16)
    )
    assert CAStore(fleet_ctx.settings.resolved_ca_dir).revocations()[0].serial == int(serial, 16)
    r = client.post(
        "/api/v1/enrolments/certificates/abc123/revoke", json={}, headers=world.headers("admin")
    )
    assert r.status_code == 404


def test_a_decommissioned_sensor_loses_its_broker_identity(
    client: TestClient, world: World, fleet_ctx: FleetContext, tmp_path: Path
) -> None:
    """A sensor taken out (lost, stolen, or just removed) must not keep working certificates:
    every live one is revoked and published in the CRL the broker checks."""
    fleet_ctx.settings.crl_publish_path = tmp_path / "broker" / "crl.pem"
    _wifi(client, world)
    first = _enrol(client, world).json()["certificate"]["serial"]
    second = client.post(
        f"/api/v1/enrolments/{DEVICE}/rotate",
        json={"force": True},
        headers=world.headers("tech_hackney"),
    ).json()["serial"]
    gone = client.delete(f"/api/v1/devices/{DEVICE}", headers=world.headers("staff_hackney"))
    assert gone.status_code == 204
    crl = x509.load_pem_x509_crl(fleet_ctx.settings.crl_publish_path.read_bytes())
    for serial in (first, second):
        entry = crl.get_revoked_certificate_by_serial_number(int(serial, 16))
        assert entry is not None
        reason = entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
        assert reason is x509.ReasonFlags.cessation_of_operation
    with fleet_ctx.sessions() as s:
        entry = s.scalars(
            select(AuditEntry).where(AuditEntry.action == "device.decommission")
        ).one()
    assert sorted(entry.detail["certificates_revoked"]) == sorted([first, second])


def test_secret_box_refuses_a_changed_key() -> None:
    token = SecretBox("first-key-" * 4).encrypt("wifi-password")
    assert SecretBox("first-key-" * 4).decrypt(token) == "wifi-password"
    with pytest.raises(SecretUnreadable, match="FLEET_SECRET_KEY changed"):
        SecretBox("other-key-" * 4).decrypt(token)


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"FLEET_SECRET_KEY": ""}, "FLEET_SECRET_KEY must be set"),
        ({"FLEET_SECRET_KEY": "changeme-changeme-changeme-changeme"}, "placeholder"),
    ],
)
def test_production_needs_a_real_secret_key(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], fragment: str
) -> None:
    from pydantic import ValidationError

    from fleet.core.settings import Settings

    monkeypatch.setenv("FLEET_ENVIRONMENT", "production")
    monkeypatch.setenv("FLEET_ADMIN_TOKEN", "a" * 32)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ValidationError, match=fragment):
        Settings()


def test_certificate_expiry_window_is_computed_from_not_after(
    client: TestClient, world: World, fleet_ctx: FleetContext
) -> None:
    _wifi(client, world)
    _enrol(client, world)
    with fleet_ctx.sessions() as s:
        record = s.scalars(select(DeviceCertificate)).one()
        lifetime = record.not_after - datetime.now(UTC)
        assert timedelta(days=396) < lifetime <= timedelta(days=397)


def test_a_wifi_profile_no_sensor_could_join_is_refused_without_echoing_it(
    client: TestClient, world: World
) -> None:
    url = "/api/v1/enrolments/wifi-profiles/hackney/default"
    admin = world.headers("admin")
    for body, said in (
        ({"ssid": "Hackney-" + "é" * 20, "password": "correct-horse"}, "48 bytes in UTF-8"),
        ({"ssid": "Estate", "password": "z" * 64}, "64 hex digits"),
        ({"ssid": "Estate", "password": "pässwörd-1"}, "printable ASCII"),
        ({"ssid": "Estate", "password": "pw-42"}, "at least 8 characters"),
        ({"password": "correct-horse"}, "Field required"),
    ):
        refused = client.put(url, json=body, headers=admin)
        assert refused.status_code == 422 and said in refused.text, (body, refused.text)
        assert body["password"] not in refused.text  # not even in a whole-body echo
    for ssid, password in (("Estate-IoT", "a" * 64), ("Café 32 bytes" + "x" * 18, None)):
        kept = client.put(url, json={"ssid": ssid, "password": password}, headers=admin)
        assert kept.status_code == 200, kept.text
