"""Device certificates: issue from the fleet's CA, record, rotate before expiry, revoke."""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from sqlalchemy import select
from sqlalchemy.orm import Session

from fleet.access.principal import Forbidden, Principal
from fleet.access.roles import Role
from fleet.core.settings import Settings
from fleet.enrolment import crl
from fleet.enrolment.errors import CANotReady, CertificateNotFound, RotationNotDue
from fleet.identity import CAStore, CertificateAuthority, IdentityError
from fleet.identity.files import write_public
from fleet.identity.rotation import ROTATE_BEFORE_DAYS
from fleet.models import Device, DeviceCertificate
from fleet.models.base import utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True, repr=False)
class CertificateBundle:
    """What a device needs to prove who it is: its certificate, its key, and the CA."""

    serial: str
    fingerprint: str
    not_after: datetime
    certificate_pem: str
    private_key_pem: str
    ca_pem: str

    def __repr__(self) -> str:  # never print key material
        return f"CertificateBundle(serial={self.serial}, not_after={self.not_after.isoformat()})"


def load_ca(settings: Settings) -> CertificateAuthority:
    """The device CA; created on first use outside production so one command runs everything."""
    store = CAStore(settings.resolved_ca_dir)
    try:
        if not store.exists():
            if settings.environment == "production":
                raise CANotReady(
                    f"no device CA in {store.directory}: run `python -m fleet.identity bootstrap` "
                    "and set FLEET_CA_DIR to its ca/ folder"
                )
            log.warning("no device CA in %s: creating one (development only)", store.directory)
            store.create(passphrase=settings.ca_passphrase)
        return store.load(passphrase=settings.ca_passphrase, crl_url=settings.crl_url)
    except IdentityError as exc:
        raise CANotReady(f"the device CA cannot be used: {exc}") from exc


def serial_hex(serial: int) -> str:
    return f"{serial:x}"


def issue(
    session: Session,
    *,
    ca: CertificateAuthority,
    device: Device,
    principal: Principal,
    reason: str,
    now: datetime | None = None,
) -> CertificateBundle:
    """Issue a fresh certificate and key for `device` and record it (not the key)."""
    issued = ca.issue_device(device.device_id, now=now)
    cert = issued.certificate
    fingerprint = hashlib.sha256(issued.certificate_der()).hexdigest()
    session.add(
        DeviceCertificate(
            device_pk=device.id,
            serial=serial_hex(issued.serial),
            fingerprint=fingerprint,
            not_before=cert.not_valid_before_utc,
            not_after=cert.not_valid_after_utc,
            issued_at=now or utcnow(),
            issued_by=principal.actor,
            reason=reason,
        )
    )
    return CertificateBundle(
        serial=serial_hex(issued.serial),
        fingerprint=fingerprint,
        not_after=cert.not_valid_after_utc,
        certificate_pem=issued.certificate_pem().decode(),
        private_key_pem=issued.private_key_pem().decode(),
        ca_pem=ca.certificate_pem().decode(),
    )


def current_certificate(session: Session, *, device: Device) -> DeviceCertificate | None:
    """The newest certificate of `device` that is not revoked."""
    stmt = (
        select(DeviceCertificate)
        .where(DeviceCertificate.device_pk == device.id, DeviceCertificate.revoked_at.is_(None))
        .order_by(DeviceCertificate.not_after.desc(), DeviceCertificate.id.desc())
    )
    return session.scalars(stmt).first()


def check_rotation_due(
    record: DeviceCertificate | None,
    *,
    now: datetime,
    before_days: int = ROTATE_BEFORE_DAYS,
) -> None:
    """Raise RotationNotDue unless the current certificate is within `before_days` of expiry."""
    if record is None:
        return
    if now < record.not_after - timedelta(days=before_days):
        due = (record.not_after - timedelta(days=before_days)).date().isoformat()
        raise RotationNotDue(
            f"certificate {record.serial} is valid until {record.not_after.date().isoformat()}; "
            f"rotation is due from {due} (pass force to rotate now, e.g. after a key leak)"
        )


def revoke(
    session: Session,
    *,
    settings: Settings,
    principal: Principal,
    serial: str,
    reason: x509.ReasonFlags = x509.ReasonFlags.unspecified,
    now: datetime | None = None,
) -> DeviceCertificate:
    """Revoke a certificate (admins only), sign a new CRL and publish it for the broker."""
    if principal.role is not Role.ADMIN:
        raise Forbidden("only an admin may revoke device certificates")
    serial = serial.lower().removeprefix("0x")
    record = session.scalars(
        select(DeviceCertificate).where(DeviceCertificate.serial == serial)
    ).one_or_none()
    if record is None:
        raise CertificateNotFound(f"no certificate with serial {serial} was issued by this fleet")
    _revoke(session, settings, [record], reason=reason, when=now or utcnow())
    return record


def revoke_live(
    session: Session, *, settings: Settings, device: Device, now: datetime | None = None
) -> list[str]:
    """Revoke every certificate of `device` that still works (it is being removed: a lost or
    stolen sensor must not keep a broker identity); returns their serials."""
    when = now or utcnow()
    live = session.scalars(
        select(DeviceCertificate).where(
            DeviceCertificate.device_pk == device.id,
            DeviceCertificate.revoked_at.is_(None),
            DeviceCertificate.not_after > when,
        )
    ).all()
    if live:
        _revoke(session, settings, live, reason=x509.ReasonFlags.cessation_of_operation, when=when)
    return [r.serial for r in live]


def _revoke(
    session: Session,
    settings: Settings,
    records: Sequence[DeviceCertificate],
    *,
    reason: x509.ReasonFlags,
    when: datetime,
) -> None:
    """Mark the records revoked (the database is the register every replica signs from), add
    them to a writable CA folder's register too (its `python -m fleet.identity crl` re-signs
    keep them), and copy a fresh CRL to the broker's crlfile when one is configured."""
    ca = load_ca(settings)
    for record in records:
        if record.revoked_at is None:
            record.revoked_at = when
            record.revoke_reason = reason.value
    session.flush()
    store = CAStore(settings.resolved_ca_dir)
    if os.access(store.directory, os.W_OK):
        store.revoke(ca, [int(r.serial, 16) for r in records], reason=reason, now=when)
    else:
        log.info("CA folder %s is read-only: revocations are kept in the database", store.directory)
    if settings.crl_publish_path is not None:
        # OpenSSL refuses certificates without a distribution point against a CRL that names
        # one, so the broker's file is signed without it.
        pem = crl.sign(session, ca, store, distribution_point=None, now=when)
        write_public(settings.crl_publish_path, pem)


def crl_pem(session: Session, settings: Settings) -> bytes:
    """The current CRL, naming FLEET_CRL_URL as its distribution point when that is set."""
    store = CAStore(settings.resolved_ca_dir)
    return crl.sign(session, load_ca(settings), store, distribution_point=settings.crl_url)
