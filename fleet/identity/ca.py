"""The device certificate authority: an ECDSA P-256 root that signs device and service certs."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from ipaddress import ip_address
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from fleet.identity.errors import CAKeyMismatchError, UnsupportedKeyError
from fleet.identity.issued import IssuedCertificate
from fleet.identity.keys import generate_key
from fleet.identity.names import (
    check_device_id,
    check_service_name,
    device_urn,
    service_urn,
    split_hosts,
)

log = logging.getLogger(__name__)

DEFAULT_CA_NAME = "City Sensor Fleet Device CA"
DEFAULT_ORGANISATION = "City Sensor Fleet"
CA_VALIDITY_DAYS = 3650
# 397 days is the CA/Browser Forum ceiling for leaf certificates, and a yearly rotation habit.
LEAF_VALIDITY_DAYS = 397
# Leaves start slightly in the past so a device whose clock lags a little still accepts them.
CLOCK_SKEW = timedelta(minutes=5)


def utcnow() -> datetime:
    return datetime.now(UTC)


def check_crl_url(url: str) -> str:
    """A CRL distribution point brokers can fetch: an absolute http(s) URL, no credentials."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"CRL URL {url!r} must be an absolute http:// or https:// URL")
    if parts.username or parts.password:
        raise ValueError("CRL URL must not carry credentials: brokers fetch it anonymously")
    return url


@dataclass(frozen=True)
class Revocation:
    serial: int
    revoked_at: datetime
    reason: x509.ReasonFlags = x509.ReasonFlags.unspecified


class CertificateAuthority:
    """Signs leaves; holds its key in memory only (see `fleet.identity.store` for files).

    With `crl_url`, client certificates name it as their CRL distribution point: brokers that
    fetch CRLs from certificates (EMQX) need it, and `sign_crl(distribution_point=...)` signs
    the matching CRL."""

    def __init__(
        self,
        certificate: x509.Certificate,
        private_key: ec.EllipticCurvePrivateKey,
        *,
        crl_url: str | None = None,
    ):
        public = certificate.public_key()
        if not isinstance(public, ec.EllipticCurvePublicKey) or not isinstance(
            public.curve, ec.SECP256R1
        ):
            raise UnsupportedKeyError("the CA certificate does not hold an ECDSA P-256 key")
        if public.public_numbers() != private_key.public_key().public_numbers():
            raise CAKeyMismatchError(
                "the CA key does not belong to the CA certificate: restore the matching pair"
            )
        self.certificate = certificate
        self._key = private_key
        self.crl_url = check_crl_url(crl_url) if crl_url else None

    def __repr__(self) -> str:
        return f"CertificateAuthority(subject={self.certificate.subject.rfc4514_string()!r})"

    @property
    def private_key(self) -> ec.EllipticCurvePrivateKey:
        return self._key

    @classmethod
    def create(
        cls,
        *,
        common_name: str = DEFAULT_CA_NAME,
        organisation: str = DEFAULT_ORGANISATION,
        validity_days: int = CA_VALIDITY_DAYS,
        now: datetime | None = None,
    ) -> CertificateAuthority:
        """A self-signed CA that may sign leaves only (CA:true, pathlen 0)."""
        now = now or utcnow()
        key = generate_key()
        name = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
                x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            ]
        )
        ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - CLOCK_SKEW)
            .not_valid_after(now + timedelta(days=validity_days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(ski, critical=False)
            .sign(key, hashes.SHA256())
        )
        log.info("created device CA %r, serial %#x", common_name, cert.serial_number)
        return cls(cert, key)

    def certificate_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def issue_device(
        self,
        device_id: str,
        *,
        validity_days: int = LEAF_VALIDITY_DAYS,
        now: datetime | None = None,
    ) -> IssuedCertificate:
        """A client certificate whose CN is the device id (the broker's MQTT username)."""
        check_device_id(device_id)
        san = x509.SubjectAlternativeName([x509.UniformResourceIdentifier(device_urn(device_id))])
        issued = self._issue_client(device_id, san, validity_days=validity_days, now=now)
        log.info("issued device certificate for %s, serial %#x", device_id, issued.serial)
        return issued

    def issue_service(
        self, name: str, *, validity_days: int = LEAF_VALIDITY_DAYS, now: datetime | None = None
    ) -> IssuedCertificate:
        """A client certificate for a service account such as `fleet-ingest` (SAN URI
        `urn:cs:service:<name>`, never mistaken for a device's `urn:dev:cs:<id>`)."""
        check_service_name(name)
        san = x509.SubjectAlternativeName([x509.UniformResourceIdentifier(service_urn(name))])
        issued = self._issue_client(name, san, validity_days=validity_days, now=now)
        log.info("issued service certificate for %s, serial %#x", name, issued.serial)
        return issued

    def issue_server(
        self,
        hosts: Sequence[str],
        *,
        validity_days: int = LEAF_VALIDITY_DAYS,
        now: datetime | None = None,
    ) -> IssuedCertificate:
        """The broker's certificate; clients verify it against the same CA."""
        dns, ips = split_hosts(list(hosts))
        names: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
        names += [x509.IPAddress(ip_address(i)) for i in ips]
        issued = self._issue(
            common_name=(dns or ips)[0],
            san=x509.SubjectAlternativeName(names),
            usage=ExtendedKeyUsageOID.SERVER_AUTH,
            validity_days=validity_days,
            now=now,
        )
        log.info("issued broker certificate for %s, serial %#x", ", ".join(hosts), issued.serial)
        return issued

    def sign_crl(
        self,
        revocations: Iterable[Revocation],
        *,
        crl_number: int,
        next_update_days: int,
        now: datetime | None = None,
        distribution_point: str | None = None,
    ) -> x509.CertificateRevocationList:
        """A CRL listing `revocations`; brokers refuse every client once `next_update` passes.

        `distribution_point` adds the Issuing Distribution Point extension naming that URL:
        EMQX enforces a CRL only when it has one matching the certificate's distribution point,
        while OpenSSL (Mosquitto) refuses a certificate *without* a distribution point against
        such a CRL, so the broker's crlfile is signed without it."""
        now = now or utcnow()
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.certificate.subject)
            .last_update(now - CLOCK_SKEW)
            .next_update(now + timedelta(days=next_update_days))
            .add_extension(x509.CRLNumber(crl_number), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()),
                critical=False,
            )
        )
        for entry in revocations:
            revoked = (
                x509.RevokedCertificateBuilder()
                .serial_number(entry.serial)
                .revocation_date(entry.revoked_at)
            )
            if entry.reason is not x509.ReasonFlags.unspecified:
                revoked = revoked.add_extension(x509.CRLReason(entry.reason), critical=False)
            builder = builder.add_revoked_certificate(revoked.build())
        if distribution_point:
            idp = x509.IssuingDistributionPoint(
                full_name=[x509.UniformResourceIdentifier(check_crl_url(distribution_point))],
                relative_name=None,
                only_contains_user_certs=False,
                only_contains_ca_certs=False,
                only_some_reasons=None,
                indirect_crl=False,
                only_contains_attribute_certs=False,
            )
            builder = builder.add_extension(idp, critical=True)  # RFC 5280 5.2.5: critical
        return builder.sign(self._key, hashes.SHA256())

    def _issue_client(
        self,
        common_name: str,
        san: x509.SubjectAlternativeName,
        *,
        validity_days: int,
        now: datetime | None,
    ) -> IssuedCertificate:
        return self._issue(
            common_name=common_name,
            san=san,
            usage=ExtendedKeyUsageOID.CLIENT_AUTH,
            validity_days=validity_days,
            now=now,
            crl_url=self.crl_url,
        )

    def _issue(
        self,
        *,
        common_name: str,
        san: x509.SubjectAlternativeName,
        usage: x509.ObjectIdentifier,
        validity_days: int,
        now: datetime | None,
        crl_url: str | None = None,
    ) -> IssuedCertificate:
        if validity_days < 1:
            raise ValueError(f"validity must be at least one day, not {validity_days}")
        now = now or utcnow()
        not_after = now + timedelta(days=validity_days)
        if not_after > self.certificate.not_valid_after_utc:
            not_after = self.certificate.not_valid_after_utc
            log.warning("leaf for %s cut short to the CA's own expiry %s", common_name, not_after)
        key = generate_key()
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - CLOCK_SKEW)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()),
                critical=False,
            )
            .add_extension(san, critical=False)
        )
        if crl_url:
            point = x509.DistributionPoint(
                full_name=[x509.UniformResourceIdentifier(crl_url)],
                relative_name=None,
                reasons=None,
                crl_issuer=None,
            )
            builder = builder.add_extension(x509.CRLDistributionPoints([point]), critical=False)
        return IssuedCertificate(builder.sign(self._key, hashes.SHA256()), key)
