"""The device CA: chains, names, key usage, validity and rotation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from fleet.identity import (
    LEAF_VALIDITY_DAYS,
    CAKeyMismatchError,
    CertificateAuthority,
    InvalidNameError,
    needs_rotation,
)

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def ca() -> CertificateAuthority:
    return CertificateAuthority.create(now=NOW)


def _verify_chain(ca: CertificateAuthority, leaf: x509.Certificate, at: datetime) -> None:
    """Raises unless `leaf` chains to `ca` as a client certificate at `at`."""
    store = x509.verification.Store([ca.certificate])
    verifier = x509.verification.PolicyBuilder().store(store).time(at).build_client_verifier()
    verifier.verify(leaf, [])


def test_ca_is_a_p256_root_that_signs_only_leaves(ca: CertificateAuthority) -> None:
    cert = ca.certificate
    assert cert.issuer == cert.subject
    constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical
    assert constraints.value.ca is True
    assert constraints.value.path_length == 0
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign and usage.crl_sign
    key = cert.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey)
    assert isinstance(key.curve, ec.SECP256R1)
    cert.verify_directly_issued_by(cert)


def test_device_certificate_identifies_the_device(ca: CertificateAuthority) -> None:
    issued = ca.issue_device("cs-3c71bf0a12f4", now=NOW)
    cert = issued.certificate

    cert.verify_directly_issued_by(ca.certificate)
    _verify_chain(ca, cert, NOW + timedelta(days=1))
    cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    assert [a.value for a in cn] == ["cs-3c71bf0a12f4"]
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == ["urn:dev:cs:cs-3c71bf0a12f4"]
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    assert isinstance(issued.private_key.curve, ec.SECP256R1)
    assert issued.private_key.public_key().public_numbers() == (
        cert.public_key().public_numbers()  # type: ignore[union-attr]
    )


def test_device_validity_defaults_to_397_days_and_is_configurable(
    ca: CertificateAuthority,
) -> None:
    default = ca.issue_device("cs-000000000001", now=NOW).certificate
    short = ca.issue_device("cs-000000000002", validity_days=30, now=NOW).certificate

    assert default.not_valid_after_utc == NOW + timedelta(days=LEAF_VALIDITY_DAYS)
    assert short.not_valid_after_utc == NOW + timedelta(days=30)
    assert default.not_valid_before_utc < NOW  # tolerates a device clock slightly behind


def test_leaf_never_outlives_its_ca() -> None:
    short_ca = CertificateAuthority.create(validity_days=100, now=NOW)
    leaf = short_ca.issue_device("cs-000000000003", now=NOW).certificate
    assert leaf.not_valid_after_utc == short_ca.certificate.not_valid_after_utc


def test_serials_are_random_and_distinct(ca: CertificateAuthority) -> None:
    serials = {ca.issue_device("cs-000000000004", now=NOW).serial for _ in range(20)}
    assert len(serials) == 20
    assert all(s.bit_length() > 64 for s in serials)


def test_server_certificate_lists_names_and_addresses(ca: CertificateAuthority) -> None:
    cert = ca.issue_server(["mqtt.example.org", "192.0.2.10", "::1"], now=NOW).certificate

    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["mqtt.example.org"]
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["192.0.2.10", "::1"]
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    cert.verify_directly_issued_by(ca.certificate)


def test_service_certificate_has_the_account_as_cn(ca: CertificateAuthority) -> None:
    issued = ca.issue_service("fleet-ingest", now=NOW)
    assert issued.common_name == "fleet-ingest"
    san = issued.certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert san.value.get_values_for_type(x509.UniformResourceIdentifier) == [
        "urn:cs:service:fleet-ingest"
    ]
    _verify_chain(ca, issued.certificate, NOW + timedelta(hours=1))


@pytest.mark.parametrize(
    "device_id",
    ["", "ab", "CS-UPPER", "cs_underscore", "cs/slash", "cs+plus", "cs#hash", "-leading", "a" * 65],
)
def test_invalid_device_ids_are_refused(ca: CertificateAuthority, device_id: str) -> None:
    with pytest.raises(InvalidNameError, match="device id"):
        ca.issue_device(device_id)


def test_device_ids_cannot_take_service_account_names(ca: CertificateAuthority) -> None:
    with pytest.raises(InvalidNameError, match="reserved for service accounts"):
        ca.issue_device("fleet-ingest")


@pytest.mark.parametrize("name", ["ingest", "fleet-", "fleet-UPPER", "fleet-a/b"])
def test_invalid_service_names_are_refused(ca: CertificateAuthority, name: str) -> None:
    with pytest.raises(InvalidNameError, match="service account"):
        ca.issue_service(name)


@pytest.mark.parametrize("hosts", [[], ["bad host"], ["-x.example.org"], ["a..b"]])
def test_invalid_broker_hosts_are_refused(ca: CertificateAuthority, hosts: list[str]) -> None:
    with pytest.raises(InvalidNameError):
        ca.issue_server(hosts)


def test_ca_refuses_a_key_that_is_not_its_own(ca: CertificateAuthority) -> None:
    other = CertificateAuthority.create(now=NOW)
    with pytest.raises(CAKeyMismatchError, match="restore the matching pair"):
        CertificateAuthority(ca.certificate, other.private_key)


def test_repr_never_shows_key_material(ca: CertificateAuthority) -> None:
    issued = ca.issue_device("cs-000000000005", now=NOW)
    text = repr(issued) + repr(ca)
    assert "PRIVATE" not in text
    assert str(issued.private_key.private_numbers().private_value) not in text


@pytest.mark.parametrize(
    ("days_left", "due"),
    [(100, False), (31, False), (30, True), (29, True), (0, True), (-5, True)],
)
def test_rotation_window(ca: CertificateAuthority, days_left: int, due: bool) -> None:
    cert = ca.issue_device("cs-000000000006", validity_days=397, now=NOW).certificate
    at = cert.not_valid_after_utc - timedelta(days=days_left)
    assert needs_rotation(cert, at) is due


def test_rotation_window_is_configurable(ca: CertificateAuthority) -> None:
    cert = ca.issue_device("cs-000000000007", validity_days=397, now=NOW).certificate
    at = cert.not_valid_after_utc - timedelta(days=60)
    assert needs_rotation(cert, at, before_days=90)
    assert not needs_rotation(cert, at, before_days=30)


def test_rotation_refuses_naive_time(ca: CertificateAuthority) -> None:
    cert = ca.issue_device("cs-000000000008", now=NOW).certificate
    with pytest.raises(ValueError, match="aware datetime"):
        needs_rotation(cert, datetime(2030, 6, 1))
