"""Releases, trusted keys, pins and device update history in the database."""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from fleet.access import audit
from fleet.access.principal import Principal
from fleet.access.roles import Scope
from fleet.health.alert_rules import version_tuple
from fleet.models import Device
from fleet.models.base import utcnow
from fleet.models.ota import (
    Release,
    ReleaseBlob,
    RolloutDevice,
    TrustedKey,
    UpdateEvent,
    VersionPin,
)
from fleet.ota import signing
from fleet.ota.bundle import check_floor, check_manifest_size, check_version
from fleet.ota.errors import Invalid, NotFound, OtaError
from fleet.ota.package import ReleaseFile
from fleet.ota.progress import TERMINAL
from fleet.ota.waves import PRESUMED

MAX_PIN_REASON = 400
MAX_VERSION = 32  # the width of the version columns


def trusted_keys(session: Session) -> dict[str, str]:
    rows = session.scalars(select(TrustedKey).where(TrustedKey.revoked_at.is_(None)))
    return {k.kid: k.public_hex for k in rows}


def release_floor(session: Session) -> str:
    """The highest anti-rollback floor any published release has declared ("0.0.0" if none).

    A sensor provisioned afresh starts from it: one re-flashed after its updates would
    otherwise accept again a signed release the fleet had already put below its floor.
    """
    floor, key = "0.0.0", version_tuple("0.0.0")
    for release in session.scalars(select(Release)):
        declared = release.floor
        if declared is not None and version_tuple(declared) > key:
            floor, key = declared, version_tuple(declared)
    return floor


def trust_key(
    session: Session, principal: Principal, public_hex: str, name: str = ""
) -> TrustedKey:
    principal.require(Scope.RELEASES_WRITE)
    try:
        raw = bytes.fromhex(public_hex)
    except ValueError as exc:
        raise OtaError("the public key must be hex (64 characters, raw Ed25519)") from exc
    if len(raw) != 32:
        raise OtaError(f"an Ed25519 public key is 32 bytes; got {len(raw)}")
    kid = signing.key_id(raw)
    key = session.scalars(select(TrustedKey).where(TrustedKey.kid == kid)).one_or_none()
    if key is None:
        key = TrustedKey(kid=kid, public_hex=raw.hex(), name=name, created_by=principal.actor)
        session.add(key)
    key.revoked_at = None
    session.flush()
    audit.record(session, principal, "ota.key.trust", target_type="ota_key", target_id=kid)
    return key


def publish_release(
    session: Session, principal: Principal, release: ReleaseFile, notes: str = ""
) -> Release:
    """Store a signed release; refused unless a trusted key signed it and the blob matches."""
    principal.require(Scope.RELEASES_WRITE)
    try:
        info = json.loads(release.manifest)
    except ValueError as exc:
        raise OtaError(f"the manifest is not JSON: {exc}") from exc
    if not isinstance(info, dict) or info.get("kind") not in ("app", "image"):
        raise OtaError("the manifest must name its kind: app or image")
    version = check_version(str(info.get("version", "")))
    check_floor(version, info.get("floor"))
    check_manifest_size(release.manifest)
    signer = signing.check_signatures(release.manifest, release.sigs, trusted_keys(session))
    import hashlib

    digest = hashlib.sha256(release.blob).hexdigest()
    if digest != info.get("sha256") or len(release.blob) != info.get("size"):
        raise OtaError("the blob does not match the manifest's size and SHA-256; rebuild it")
    exists = session.scalars(
        select(Release).where(Release.kind == info["kind"], Release.version == version)
    ).one_or_none()
    if exists is not None:
        raise OtaError(f"{info['kind']} release {version} exists already (id {exists.id})")
    row = Release(
        version=version,
        kind=info["kind"],
        manifest=release.manifest.decode(),
        sigs=release.sigs,
        signer_kid=signer,
        blob_path=secrets.token_urlsafe(32),
        size=len(release.blob),
        sha256=digest,
        raw_size=release.raw_size,
        notes=notes or str(info.get("notes", "")),
        created_by=principal.actor,
    )
    session.add(row)
    session.flush()
    session.add(ReleaseBlob(release_id=row.id, data=release.blob))
    audit.record(
        session,
        principal,
        "ota.release.publish",
        target_type="ota_release",
        target_id=row.id,
        detail={"version": version, "kind": row.kind, "signer": signer},
    )
    return row


def list_releases(session: Session, limit: int = 500) -> list[Release]:
    """The newest releases; they are fleet-wide, so everyone who may read devices sees them."""
    return list(session.scalars(select(Release).order_by(Release.id.desc()).limit(limit)))


def get_release(session: Session, release_id: int) -> Release:
    row = session.get(Release, release_id)
    if row is None:
        raise NotFound(f"release {release_id} not found")
    return row


def blob_by_path(session: Session, blob_path: str) -> bytes | None:
    row = session.execute(
        select(ReleaseBlob.data)
        .join(Release, Release.id == ReleaseBlob.release_id)
        .where(Release.blob_path == blob_path)
    ).scalar_one_or_none()
    return None if row is None else bytes(row)


def visible_device(session: Session, principal: Principal, device_id: str) -> Device:
    device = session.scalars(select(Device).where(Device.current(device_id))).one_or_none()
    if device is None or not principal.can_see(device.borough_id):
        raise NotFound(f"device {device_id!r} not found")
    return device


def pin(
    session: Session,
    principal: Principal,
    device_id: str,
    version: str | None,
    reason: str,
    *,
    known_only: bool = False,
) -> VersionPin:
    """Hold a device on a version (default: the one it runs), with a reason. With
    `known_only` the version must be the device's own or a published release's."""
    principal.require(Scope.RELEASES_WRITE)
    device = visible_device(session, principal, device_id)
    reason = reason.strip()
    if not reason:
        raise Invalid("say why the device is pinned (reason)")
    if len(reason) > MAX_PIN_REASON:
        raise Invalid(f"the reason is over {MAX_PIN_REASON} characters")
    version = _pin_version(session, device, version, known_only)
    row = session.get(VersionPin, device.id)
    if row is None:
        row = VersionPin(device_pk=device.id, created_by=principal.actor)
        session.add(row)
    row.version = version
    row.reason = reason
    audit.record(
        session,
        principal,
        "ota.pin",
        target_type="device",
        target_id=device_id,
        borough_id=device.borough_id,
        detail={"version": row.version, "reason": reason},
    )
    return row


def _pin_version(session: Session, device: Device, version: str | None, known_only: bool) -> str:
    if version is None or not version.strip():
        if device.fw_version is None:
            raise Invalid(
                f"device {device.device_id!r} has not reported a version: name the version"
            )
        return device.fw_version
    version = version.strip()
    if len(version) > MAX_VERSION:
        raise Invalid(f"version {version[:40]!r} is over {MAX_VERSION} characters")
    try:
        check_version(version)
    except OtaError as exc:
        raise Invalid(str(exc)) from exc
    if not known_only or version == device.fw_version:
        return version
    if session.scalars(select(Release.id).where(Release.version == version)).first() is None:
        raise Invalid(
            f"no release {version} is published and the device runs {device.fw_version}: "
            "pin it to a published release or the version it runs"
        )
    return version


def unpin(session: Session, principal: Principal, device_id: str) -> None:
    principal.require(Scope.RELEASES_WRITE)
    device = visible_device(session, principal, device_id)
    row = session.get(VersionPin, device.id)
    if row is None:
        raise NotFound(f"device {device_id!r} is not pinned")
    session.delete(row)
    audit.record(
        session,
        principal,
        "ota.unpin",
        target_type="device",
        target_id=device_id,
        borough_id=device.borough_id,
    )


def history(session: Session, device: Device, limit: int = 200) -> Sequence[UpdateEvent]:
    return session.scalars(
        select(UpdateEvent)
        .where(UpdateEvent.device_pk == device.id)
        .order_by(UpdateEvent.at.desc(), UpdateEvent.id.desc())
        .limit(limit)
    ).all()


def _text(doc: dict[str, Any], key: str, limit: int) -> str | None:
    value = doc.get(key)
    return str(value)[:limit] if value is not None else None


def record_progress(
    session: Session, device_pk: int, doc: dict[str, Any], at: datetime | None = None
) -> None:
    """Keep a device's `ota/progress` report and move its rollout membership along."""
    at = at or utcnow()
    pct = doc.get("pct")
    job = _text(doc, "id", 64)
    session.add(
        UpdateEvent(
            device_pk=device_pk,
            at=at,
            job_id=job,
            state=str(doc["state"]),
            version=_text(doc, "version", 32),
            app=_text(doc, "app", 32),
            step=_text(doc, "step", 64),
            pct=pct if isinstance(pct, int) and not isinstance(pct, bool) else None,
            reason=_text(doc, "reason", 2000),
        )
    )
    if job is None:
        return
    member = session.scalars(
        select(RolloutDevice).where(
            RolloutDevice.device_pk == device_pk, RolloutDevice.job_id == job
        )
    ).one_or_none()
    if member is None and doc["state"] != "failed":
        member = _member_by_earlier_job(session, device_pk, job)
    if member is None or (member.state in TERMINAL and not _presumed(member)):
        return  # a late report after the outcome (QoS 1 redelivery) changes nothing
    member.state = str(doc["state"])
    member.updated_at = at
    # A reason belongs to a failure; one left from an earlier state would contradict it.
    member.reason = (
        (_text(doc, "reason", 2000) or "failed without a reason")
        if doc["state"] == "failed"
        else None
    )
    if doc["state"] == "succeeded":
        device = session.get(Device, device_pk)
        if device is not None:
            device.fw_version = _text(doc, "app", 32)


def _presumed(member: RolloutDevice) -> bool:
    """An outcome the engine gave a silent device (stalled, or found on the release): the
    device's own report, arriving after all, says what really happened."""
    return member.reason is not None and member.reason.startswith(PRESUMED)


def _member_by_earlier_job(session: Session, device_pk: int, job: str) -> RolloutDevice | None:
    """The device's membership in the rollout that issued `job` (ids are "r<rollout>-..."),
    when the device goes on with an offer it took up before a pause withdrew it and a resume
    offered it again under a new id: every job of a rollout installs the same release.
    A failure under the old id is not carried over; the new offer is tried."""
    head, sep, _ = job.partition("-")
    if not sep or not head.startswith("r") or not head[1:].isdigit():
        return None
    return session.scalars(
        select(RolloutDevice).where(
            RolloutDevice.rollout_id == int(head[1:]), RolloutDevice.device_pk == device_pk
        )
    ).one_or_none()
