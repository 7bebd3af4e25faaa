"""ECDSA P-256 keys: generate, serialise (optionally encrypted) and load with clear errors."""

from __future__ import annotations

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from fleet.identity.errors import (
    PassphraseRequiredError,
    UnsupportedKeyError,
    WrongPassphraseError,
)

Passphrase = str | bytes


def generate_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _as_bytes(passphrase: Passphrase) -> bytes:
    return passphrase.encode() if isinstance(passphrase, str) else passphrase


def private_key_pem(
    key: ec.EllipticCurvePrivateKey, *, passphrase: Passphrase | None = None
) -> bytes:
    """PKCS#8 PEM; encrypted with the best available scheme when a passphrase is given."""
    if passphrase is not None and not _as_bytes(passphrase):
        raise WrongPassphraseError("an empty passphrase protects nothing; give a real one or none")
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(_as_bytes(passphrase))
        if passphrase is not None
        else serialization.NoEncryption()
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )


def private_key_der(key: ec.EllipticCurvePrivateKey) -> bytes:
    """Unencrypted SEC1 DER, the most compact form mbedTLS on the device accepts."""
    return key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


def load_private_key(
    data: bytes, *, passphrase: Passphrase | None = None, source: str = "key"
) -> ec.EllipticCurvePrivateKey:
    """Load a PEM private key; the errors never echo key material."""
    pw = _as_bytes(passphrase) if passphrase is not None else None
    try:
        key = serialization.load_pem_private_key(data, password=pw)
    except TypeError as exc:
        if pw is None:
            raise PassphraseRequiredError(
                f"{source} is encrypted: pass its passphrase (--passphrase or FLEET_CA_PASSPHRASE)"
            ) from exc
        raise WrongPassphraseError(
            f"{source} is not encrypted: load it without a passphrase"
        ) from exc
    except ValueError as exc:
        if pw is not None and b"ENCRYPTED" in data[:64]:
            raise WrongPassphraseError(
                f"the passphrase does not decrypt {source}: check it and try again"
            ) from exc
        raise UnsupportedKeyError(
            f"{source} is not a readable PEM private key; restore it from backup"
        ) from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise UnsupportedKeyError(f"{source} is not an ECDSA P-256 key")
    return key
