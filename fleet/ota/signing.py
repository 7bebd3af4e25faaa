"""Release signing keys (Ed25519) kept by the fleet, and signature checks.

A key's id is the first 8 bytes of the SHA-256 of its raw public key, in hex. Private keys
live as PEM files (mode 0600) in a folder of their own; the database holds only public keys
(`TrustedKey`), so more than one can be trusted at a time and keys can be rotated.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
)

from fleet.ota.errors import OtaError


def key_id(public_raw: bytes) -> str:
    return hashlib.sha256(public_raw).hexdigest()[:16]


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private: Ed25519PrivateKey

    @property
    def public_hex(self) -> str:
        return self.private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()

    def sign(self, data: bytes) -> list[str]:
        """[kid, signature hex], the form releases carry."""
        return [self.kid, self.private.sign(data).hex()]


def generate(folder: Path) -> SigningKey:
    """A new key, saved as <kid>.pem readable by the owner only."""
    private = Ed25519PrivateKey.generate()
    raw = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    key = SigningKey(key_id(raw), private)
    if folder.exists() and not folder.is_dir():
        raise OtaError(f"{folder} is a file; --keys names the folder that holds the keys")
    pem = private.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    path = folder / f"{key.kid}.pem"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
    except OSError as exc:
        raise OtaError(f"cannot save the key in {folder}: {exc.strerror or exc}") from exc
    return key


def load(path: Path) -> SigningKey:
    try:
        private = load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError) as exc:
        raise OtaError(f"cannot read signing key {path}: {exc}") from exc
    if not isinstance(private, Ed25519PrivateKey):
        raise OtaError(f"{path} is not an Ed25519 key; make one with `fleet release keygen`")
    raw = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return SigningKey(key_id(raw), private)


def verify(public_hex: str, data: bytes, signature_hex: str) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_hex)).verify(
            bytes.fromhex(signature_hex), data
        )
    except (InvalidSignature, ValueError):
        return False
    return True


def check_signatures(manifest: bytes, sigs: list[list[str]], trusted: dict[str, str]) -> str:
    """The id of a trusted key that signed `manifest`; OtaError if there is none."""
    if not sigs:
        raise OtaError("the release is unsigned; sign it with `fleet release sign` first")
    for sig in sigs:
        if len(sig) == 2 and sig[0] in trusted and verify(trusted[sig[0]], manifest, sig[1]):
            return sig[0]
    broken = [s[0] for s in sigs if len(s) == 2 and s[0] in trusted]
    if broken:
        # The key is trusted but its signature does not cover these bytes: the manifest (or
        # the signature) changed after signing.
        raise OtaError(
            f"the signature by {', '.join(broken)} does not match the manifest (changed after "
            "signing?); build the release again and sign it"
        )
    kids = ", ".join(s[0] for s in sigs if s)
    raise OtaError(
        f"no valid signature by a trusted key (signed by: {kids}); "
        "trust the key with `fleet release trust` or sign with a trusted key"
    )
