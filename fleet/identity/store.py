"""The CA folder: certificate, encrypted key, revocation register and the current CRL."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from fleet.identity.ca import CA_VALIDITY_DAYS, DEFAULT_CA_NAME, CertificateAuthority, Revocation
from fleet.identity.ca import utcnow as _utcnow
from fleet.identity.errors import CAExistsError, CAMissingError, RevocationStoreError
from fleet.identity.files import write_private, write_public
from fleet.identity.keys import Passphrase, load_private_key, private_key_pem

log = logging.getLogger(__name__)

CA_CERT_FILE = "ca.crt"
CA_KEY_FILE = "ca.key"
REGISTER_FILE = "revoked.json"
CRL_FILE = "crl.pem"
# Mosquitto refuses *every* client once the CRL's next-update passes: re-sign it well before
# (`python -m fleet.identity crl`, e.g. daily from a timer) and reload the broker.
CRL_VALIDITY_DAYS = 30


class CAStore:
    """Files of one CA in `directory`; the key file is 0600 and optionally encrypted."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    @property
    def cert_path(self) -> Path:
        return self.directory / CA_CERT_FILE

    @property
    def key_path(self) -> Path:
        return self.directory / CA_KEY_FILE

    @property
    def register_path(self) -> Path:
        return self.directory / REGISTER_FILE

    @property
    def crl_path(self) -> Path:
        return self.directory / CRL_FILE

    def exists(self) -> bool:
        return self.cert_path.exists() or self.key_path.exists()

    def create(
        self,
        *,
        passphrase: Passphrase | None = None,
        common_name: str = DEFAULT_CA_NAME,
        validity_days: int = CA_VALIDITY_DAYS,
        now: datetime | None = None,
    ) -> CertificateAuthority:
        """Create the CA, its key (0600) and an empty CRL; never overwrites an existing CA."""
        if self.exists():
            raise CAExistsError(
                f"a CA already exists in {self.directory}; use it, or move it away first "
                "(replacing it invalidates every certificate it issued)"
            )
        ca = CertificateAuthority.create(
            common_name=common_name, validity_days=validity_days, now=now
        )
        write_private(self.key_path, private_key_pem(ca.private_key, passphrase=passphrase))
        write_public(self.cert_path, ca.certificate_pem())
        self._save_register(0, [])
        self.write_crl(ca, now=now)
        if passphrase is None:
            log.warning("CA key in %s is not encrypted; keep the folder offline", self.directory)
        return ca

    def load(
        self, *, passphrase: Passphrase | None = None, crl_url: str | None = None
    ) -> CertificateAuthority:
        if not self.cert_path.exists():
            raise CAMissingError(
                f"no CA certificate at {self.cert_path}: run `python -m fleet.identity bootstrap` "
                "or pass the folder that holds ca.crt and ca.key"
            )
        if not self.key_path.exists():
            raise CAMissingError(
                f"CA key missing at {self.key_path}: restore ca.key from the offline backup "
                "(it is needed to issue certificates and sign CRLs)"
            )
        cert = x509.load_pem_x509_certificate(self.cert_path.read_bytes())
        key = load_private_key(
            self.key_path.read_bytes(), passphrase=passphrase, source=f"CA key {self.key_path}"
        )
        return CertificateAuthority(cert, key, crl_url=crl_url)

    def revocations(self) -> list[Revocation]:
        return self._load_register()[1]

    def revoke(
        self,
        ca: CertificateAuthority,
        serial: int | Iterable[int],
        *,
        reason: x509.ReasonFlags = x509.ReasonFlags.unspecified,
        now: datetime | None = None,
        publish_to: Path | None = None,
    ) -> Path:
        """Record the serial(s) as revoked (idempotent) and write one fresh CRL for them all;
        returns its path."""
        number, entries = self._load_register()
        known = {e.serial for e in entries}
        added = False
        for one in [serial] if isinstance(serial, int) else serial:
            if one in known:
                log.info("serial %#x was already revoked", one)
                continue
            entries.append(Revocation(one, now or _utcnow(), reason))
            known.add(one)
            added = True
            log.info("revoked serial %#x (%s)", one, reason.value)
        if added:
            self._save_register(number, entries)
        return self.write_crl(ca, now=now, publish_to=publish_to)

    def write_crl(
        self,
        ca: CertificateAuthority,
        *,
        next_update_days: int = CRL_VALIDITY_DAYS,
        now: datetime | None = None,
        publish_to: Path | None = None,
    ) -> Path:
        """Sign the CRL with the next CRL number; optionally copy it to the broker's crlfile."""
        number, entries = self._load_register()
        number += 1
        crl = ca.sign_crl(entries, crl_number=number, next_update_days=next_update_days, now=now)
        write_public(self.crl_path, crl.public_bytes(serialization.Encoding.PEM))
        self._save_register(number, entries)
        if publish_to is not None:
            publish_crl(self.crl_path, publish_to)
        return self.crl_path

    def _load_register(self) -> tuple[int, list[Revocation]]:
        if not self.register_path.exists():
            return 0, []
        try:
            raw = json.loads(self.register_path.read_text())
            entries = [
                Revocation(
                    serial=int(item["serial"], 16),
                    revoked_at=datetime.fromisoformat(item["revoked_at"]),
                    reason=x509.ReasonFlags(item.get("reason", "unspecified")),
                )
                for item in raw["revoked"]
            ]
            return int(raw["crl_number"]), entries
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise RevocationStoreError(
                f"{self.register_path} is unreadable ({exc}); restore it from backup — "
                "rebuilding it by hand would un-revoke certificates"
            ) from exc

    def _save_register(self, crl_number: int, entries: list[Revocation]) -> None:
        doc = {
            "crl_number": crl_number,
            "revoked": [
                {
                    "serial": f"{e.serial:x}",
                    "revoked_at": e.revoked_at.isoformat(),
                    "reason": e.reason.value,
                }
                for e in entries
            ],
        }
        write_public(self.register_path, (json.dumps(doc, indent=2) + "\n").encode())


def publish_crl(source: Path, target: Path) -> None:
    """Copy a CRL into place atomically, so the broker never reads a half-written file."""
    write_public(target, source.read_bytes())
