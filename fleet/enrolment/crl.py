"""The fleet's certificate revocation list, signed from the database on demand.

The revocations the fleet makes are rows in `device_certificates`, so every API replica
signs the same list without shared files; revocations made offline with
`python -m fleet.identity revoke` (service certificates, say) are added from the CA folder's
register when it has one."""

from __future__ import annotations

from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from sqlalchemy import select
from sqlalchemy.orm import Session

from fleet.identity import CRL_VALIDITY_DAYS, CAStore, CertificateAuthority, Revocation
from fleet.models import DeviceCertificate
from fleet.models.base import utcnow


def revocations(session: Session, store: CAStore, *, now: datetime) -> list[Revocation]:
    """Every revoked certificate that has not expired: the database's and the CA folder's."""
    found: dict[int, Revocation] = {entry.serial: entry for entry in store.revocations()}
    rows = session.scalars(
        select(DeviceCertificate).where(
            DeviceCertificate.revoked_at.is_not(None), DeviceCertificate.not_after > now
        )
    )
    for row in rows:
        serial = int(row.serial, 16)
        if serial not in found and row.revoked_at is not None:
            found[serial] = Revocation(serial, row.revoked_at, _reason(row.revoke_reason))
    return sorted(found.values(), key=lambda entry: (entry.revoked_at, entry.serial))


def sign(
    session: Session,
    ca: CertificateAuthority,
    store: CAStore,
    *,
    distribution_point: str | None,
    now: datetime | None = None,
) -> bytes:
    """A fresh CRL (PEM). Its number is the signing second, so replicas that sign without
    shared state still number their lists in increasing order."""
    now = now or utcnow()
    crl = ca.sign_crl(
        revocations(session, store, now=now),
        crl_number=int(now.timestamp()),
        next_update_days=CRL_VALIDITY_DAYS,
        now=now,
        distribution_point=distribution_point,
    )
    return crl.public_bytes(serialization.Encoding.PEM)


def _reason(value: str | None) -> x509.ReasonFlags:
    try:
        return x509.ReasonFlags(value or "unspecified")
    except ValueError:
        return x509.ReasonFlags.unspecified
