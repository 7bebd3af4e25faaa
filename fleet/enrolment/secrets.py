"""Encryption at rest for secrets the fleet must hand back later (Wi-Fi passwords).

A key-derivation step turns the configured secret (any length) into a Fernet key, so the
same `FLEET_SECRET_KEY` can later derive other keys without reuse.
"""

from __future__ import annotations

import base64
import logging
import os
import secrets
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from fleet.core.settings import Settings

log = logging.getLogger(__name__)

SECRET_FILE = "secret-key"
_WIFI_INFO = b"city-sensor-fleet/wifi-password/v1"


class SecretUnreadable(Exception):
    """A stored secret cannot be decrypted: the secret key changed since it was written."""


def secret_key(settings: Settings) -> str:
    """The configured key, or one generated into the data folder (0600) outside production."""
    if settings.secret_key:
        return settings.secret_key
    path = settings.data_dir / SECRET_FILE
    if path.exists():
        return path.read_text().strip()
    return _generate(path)


def _generate(path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process won the race: use its key
        return path.read_text().strip()
    with os.fdopen(fd, "w") as fh:
        fh.write(key + "\n")
    log.info("generated a secret key in %s", path)
    return key


class SecretBox:
    """Encrypts and decrypts short secrets with a key derived from the fleet's secret key."""

    def __init__(self, key: str) -> None:
        derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_WIFI_INFO).derive(
            key.encode()
        )
        self._fernet = Fernet(base64.urlsafe_b64encode(derived))

    @classmethod
    def from_settings(cls, settings: Settings) -> SecretBox:
        return cls(secret_key(settings))

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken as exc:
            raise SecretUnreadable(
                "a stored Wi-Fi password cannot be decrypted: FLEET_SECRET_KEY changed since it "
                "was saved; restore the old key or set the Wi-Fi profile again"
            ) from exc
