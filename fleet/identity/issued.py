"""A certificate together with the private key generated for it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from fleet.identity.files import write_private, write_public
from fleet.identity.keys import private_key_der, private_key_pem


@dataclass(frozen=True, repr=False)
class IssuedCertificate:
    """Hand the key to its owner once; the CA keeps no copy."""

    certificate: x509.Certificate
    private_key: ec.EllipticCurvePrivateKey

    def __repr__(self) -> str:  # never print key material
        return f"IssuedCertificate(subject={self.common_name!r}, serial={self.serial:#x})"

    @property
    def serial(self) -> int:
        return self.certificate.serial_number

    @property
    def common_name(self) -> str:
        attrs = self.certificate.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
        return str(attrs[0].value) if attrs else ""

    def certificate_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def certificate_der(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.DER)

    def private_key_pem(self) -> bytes:
        return private_key_pem(self.private_key)

    def private_key_der(self) -> bytes:
        return private_key_der(self.private_key)

    def write(self, cert_path: Path, key_path: Path) -> None:
        """Write the certificate (0644) and the unencrypted key (0600)."""
        write_private(key_path, self.private_key_pem())
        write_public(cert_path, self.certificate_pem())
