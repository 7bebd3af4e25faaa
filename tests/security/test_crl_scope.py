"""CRL distribution points, checked by a real OpenSSL: EMQX fetches a CRL from the URL a
client certificate names and enforces it only when the CRL carries a matching Issuing
Distribution Point; Mosquitto (OpenSSL) reads a file and must keep accepting certificates
issued before the fleet had a CRL URL."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from fleet.identity import CertificateAuthority, IssuedCertificate, Revocation
from fleet.identity.ca import utcnow

URL = "http://fleet-api.fleet.svc.cluster.local/pki/crl.pem"

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")


def _verify(tmp_path: Path, ca: CertificateAuthority, crl: bytes, leaf: IssuedCertificate) -> str:
    (tmp_path / "ca.crt").write_bytes(ca.certificate_pem())
    (tmp_path / "crl.pem").write_bytes(crl)
    (tmp_path / "leaf.crt").write_bytes(leaf.certificate_pem())
    done = subprocess.run(
        ["openssl", "verify", "-crl_check", "-CAfile", "ca.crt", "-CRLfile", "crl.pem", "leaf.crt"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    return "OK" if done.returncode == 0 else done.stdout + done.stderr


def _crl(ca: CertificateAuthority, revoked: IssuedCertificate, point: str | None) -> bytes:
    crl = ca.sign_crl(
        [Revocation(revoked.serial, utcnow())],
        crl_number=7,
        next_update_days=30,
        distribution_point=point,
    )
    return crl.public_bytes(serialization.Encoding.PEM)


def test_client_certificates_name_the_crl_url_and_the_crl_names_it_back() -> None:
    ca = CertificateAuthority.create()
    with_url = CertificateAuthority(ca.certificate, ca.private_key, crl_url=URL)
    for leaf in (with_url.issue_device("cs-3c71bf0a12f4"), with_url.issue_service("fleet-api-0")):
        points = leaf.certificate.extensions.get_extension_for_class(x509.CRLDistributionPoints)
        assert [n.value for p in points.value for n in p.full_name or []] == [URL]
    server = with_url.issue_server(["mqtt.example.org"]).certificate
    with pytest.raises(x509.ExtensionNotFound):  # clients do not check the broker's CRL
        server.extensions.get_extension_for_class(x509.CRLDistributionPoints)

    crl = x509.load_pem_x509_crl(_crl(ca, ca.issue_device("cs-000000000001"), URL))
    idp = crl.extensions.get_extension_for_class(x509.IssuingDistributionPoint)
    assert idp.critical
    assert [n.value for n in idp.value.full_name or []] == [URL]
    assert crl.is_signature_valid(ca.certificate.public_key())  # type: ignore[arg-type]


def test_a_crl_naming_its_url_revokes_certificates_that_name_it(tmp_path: Path) -> None:
    ca = CertificateAuthority.create()
    with_url = CertificateAuthority(ca.certificate, ca.private_key, crl_url=URL)
    revoked, kept = (
        with_url.issue_device("cs-000000000001"),
        with_url.issue_device("cs-000000000002"),
    )
    crl = _crl(ca, revoked, URL)
    assert "certificate revoked" in _verify(tmp_path, ca, crl, revoked)
    assert _verify(tmp_path, ca, crl, kept) == "OK"


def test_the_broker_file_keeps_accepting_certificates_without_a_distribution_point(
    tmp_path: Path,
) -> None:
    """Why the crlfile is signed without the extension: OpenSSL refuses a certificate that
    names no distribution point against a CRL that names one ("different CRL scope")."""
    ca = CertificateAuthority.create()
    with_url = CertificateAuthority(ca.certificate, ca.private_key, crl_url=URL)
    revoked, older = with_url.issue_device("cs-000000000001"), ca.issue_device("cs-000000000003")
    assert "different CRL scope" in _verify(tmp_path, ca, _crl(ca, revoked, URL), older)
    plain = _crl(ca, revoked, None)
    assert _verify(tmp_path, ca, plain, older) == "OK"
    assert "certificate revoked" in _verify(tmp_path, ca, plain, revoked)


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("ftp://ca.example.org/crl.pem", "absolute http"),
        ("/pki/crl.pem", "absolute http"),
        ("https://user:pw@ca.example.org/crl.pem", "credentials"),
    ],
)
def test_a_crl_url_brokers_cannot_fetch_is_refused(url: str, why: str) -> None:
    ca = CertificateAuthority.create()
    with pytest.raises(ValueError, match=why):
        CertificateAuthority(ca.certificate, ca.private_key, crl_url=url)
