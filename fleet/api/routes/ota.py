"""Releases, rollouts, pins and device update history; the blob endpoint devices fetch from."""

from __future__ import annotations

import base64
import re
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fleet.access.principal import Principal
from fleet.access.roles import Scope
from fleet.api.deps import get_session, require, wake_rollouts
from fleet.api.schemas import MAX_ID, DbId
from fleet.models import Device
from fleet.models.ota import Release, Rollout, RolloutDevice
from fleet.ota import rollout as rollouts
from fleet.ota import service
from fleet.ota.errors import Invalid, NoBroker, NotFound, OtaError
from fleet.ota.package import ReleaseFile

router = APIRouter(tags=["ota"])
RolloutId = Annotated[int, Path(ge=1, le=MAX_ID)]
DeviceId = Annotated[str, Path(min_length=1, max_length=64)]
DEFAULT_WAVES: list[int | str] = [1, "10%", "50%", "100%"]
_RANGE = re.compile(r"^bytes=(\d{1,12})-(\d{0,12})$")


class ReleaseIn(BaseModel):
    manifest: str = Field(max_length=64_000, description="The signed manifest text")
    sigs: list[list[str]] = Field(max_length=8, description="[[key id, signature hex], ...]")
    blob_b64: str = Field(description="The blob, base64")
    raw_size: int = Field(0, ge=0, le=MAX_ID)
    notes: str = Field("", max_length=2000)


class ReleaseOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    version: str
    kind: str
    signer_kid: str
    size: int
    sha256: str
    raw_size: int
    floor: str | None = Field(
        description="Anti-rollback floor the release declares: a device that confirmed it "
        "refuses any release below it (and devices enrolled later start from the highest)"
    )
    notes: str
    created_by: str
    created_at: datetime


class KeyIn(BaseModel):
    public_hex: str = Field(min_length=64, max_length=64)
    name: str = Field("", max_length=200)


class TargetIn(BaseModel):
    """All given must match; every device (in the borough) only with "all": true."""

    model_config = ConfigDict(extra="forbid")  # a misspelt key must not widen the target
    borough_id: DbId | None = None
    estate_id: DbId | None = None
    tag: str | None = Field(None, max_length=64)
    board: str | None = Field(None, max_length=64)
    device_ids: list[Annotated[str, Field(max_length=64)]] | None = Field(None, max_length=10_000)
    all: bool = Field(False, description="Every device (in the borough, with borough_id)")


class RolloutIn(BaseModel):
    release_id: DbId
    target: TargetIn
    waves: list[int | str] = Field(default_factory=lambda: list(DEFAULT_WAVES), max_length=20)
    soak_s: int = Field(3600, ge=0, le=30 * 86400)
    failure_threshold: float = Field(0.1, ge=0, le=1)


class PauseIn(BaseModel):
    reason: str = Field("paused by an operator", max_length=400)


class MemberOut(BaseModel):
    device_id: str
    wave: int
    state: str
    reason: str | None
    from_version: str | None


class RolloutOut(BaseModel):
    id: int
    release_id: int
    version: str
    borough_id: int | None
    target: dict[str, Any]
    waves: list[Any]
    wave: int
    soak_s: int
    failure_threshold: float
    state: str
    pause_reason: str | None
    created_by: str
    counts: dict[str, dict[str, int]] = Field(description="{wave: {state: devices}}")
    members: list[MemberOut] = []


class PinIn(BaseModel):
    version: str | None = Field(
        None,
        max_length=32,
        description="A published release's or the device's own version; "
        "default: the version it runs now",
    )
    reason: str = Field(max_length=400, description="Why the device is held (required)")


class EventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    at: datetime
    job_id: str | None
    state: str
    version: str | None
    app: str | None
    step: str | None
    pct: int | None
    reason: str | None


def _fail(exc: OtaError) -> HTTPException:
    if isinstance(exc, NotFound):
        return HTTPException(status.HTTP_404_NOT_FOUND, str(exc))
    if isinstance(exc, Invalid):
        return HTTPException(422, str(exc))
    if isinstance(exc, NoBroker):
        return HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc))
    return HTTPException(status.HTTP_409_CONFLICT, str(exc))


def rollout_out(session: Session, rollout: Rollout, members: bool = False) -> RolloutOut:
    release = session.get(Release, rollout.release_id)
    counts: dict[str, dict[str, int]] = {}
    for wave, state, n in session.execute(
        select(RolloutDevice.wave, RolloutDevice.state, func.count())
        .where(RolloutDevice.rollout_id == rollout.id)
        .group_by(RolloutDevice.wave, RolloutDevice.state)
    ):
        counts.setdefault(str(wave + 1), {})[state] = int(n)
    rows = []
    if members:
        rows = [
            MemberOut(
                device_id=d,
                wave=m.wave + 1,
                state=m.state,
                reason=m.reason,
                from_version=m.from_version,
            )
            for m, d in session.execute(
                select(RolloutDevice, Device.device_id)
                .join(Device, Device.id == RolloutDevice.device_pk)
                .where(RolloutDevice.rollout_id == rollout.id)
                .order_by(RolloutDevice.wave, Device.device_id)
            )
        ]
    return RolloutOut(
        id=rollout.id,
        release_id=rollout.release_id,
        version=release.version if release else "?",
        borough_id=rollout.borough_id,
        target=rollout.target,
        waves=rollout.waves,
        wave=rollout.wave + 1,
        soak_s=rollout.soak_s,
        failure_threshold=rollout.failure_threshold,
        state=rollout.state,
        pause_reason=rollout.pause_reason,
        created_by=rollout.created_by,
        counts=counts,
        members=rows,
    )


@router.get("/api/v1/releases", response_model=list[ReleaseOut])
def list_releases(
    session: Session = Depends(get_session),
    principal: Principal = Depends(require(Scope.DEVICES_READ)),
) -> list[Release]:
    return service.list_releases(session)


@router.post("/api/v1/releases", response_model=ReleaseOut, status_code=201)
def upload_release(
    body: ReleaseIn,
    session: Session = Depends(get_session),
    principal: Principal = Depends(require(Scope.RELEASES_WRITE)),
) -> Release:
    """Publish a signed release; refused if unsigned or not signed by a trusted key."""
    try:
        blob = base64.b64decode(body.blob_b64, validate=True)
    except ValueError as exc:
        raise HTTPException(422, f"blob_b64 is not base64: {exc}") from exc
    release = ReleaseFile(body.manifest.encode(), blob, body.sigs, body.raw_size)
    try:
        row = service.publish_release(session, principal, release, body.notes)
    except OtaError as exc:
        raise _fail(exc) from exc
    session.commit()
    return row


@router.post("/api/v1/release-keys", status_code=201)
def trust_key(
    body: KeyIn,
    session: Session = Depends(get_session),
    principal: Principal = Depends(require(Scope.RELEASES_WRITE)),
) -> dict[str, str]:
    try:
        key = service.trust_key(session, principal, body.public_hex, body.name)
    except OtaError as exc:
        raise HTTPException(422, str(exc)) from exc
    session.commit()
    return {"kid": key.kid}


@router.get("/api/v1/rollouts", response_model=list[RolloutOut])
def list_rollouts(
    session: Session = Depends(get_session),
    principal: Principal = Depends(require(Scope.DEVICES_READ)),
) -> list[RolloutOut]:
    return [rollout_out(session, r) for r in rollouts.visible_rollouts(session, principal)]


@router.post("/api/v1/rollouts", response_model=RolloutOut, status_code=201)
def create_rollout(
    body: RolloutIn,
    request: Request,
    session: Session = Depends(get_session),
    principal: Principal = Depends(require(Scope.RELEASES_WRITE)),
) -> RolloutOut:
    try:
        rollout = rollouts.create_rollout(
            session,
            principal,
            release_id=body.release_id,
            target=body.target.model_dump(exclude_defaults=True),
            waves=body.waves,
            soak_s=body.soak_s,
            failure_threshold=body.failure_threshold,
        )
    except OtaError as exc:
        raise _fail(exc) from exc
    session.commit()
    wake_rollouts(request)
    return rollout_out(session, rollout)


@router.get("/api/v1/rollouts/{rollout_id}", response_model=RolloutOut)
def get_rollout(
    rollout_id: RolloutId,
    session: Session = Depends(get_session),
    principal: Principal = Depends(require(Scope.DEVICES_READ)),
) -> RolloutOut:
    try:
        rollout = rollouts.visible_rollout(session, principal, rollout_id)
    except OtaError as exc:
        raise _fail(exc) from exc
    return rollout_out(session, rollout, members=True)


@router.post("/api/v1/rollouts/{rollout_id}/{action}", response_model=RolloutOut)
def rollout_action(
    rollout_id: RolloutId,
    action: Annotated[str, Path(pattern="^(pause|resume|abort)$")],
    request: Request,
    body: PauseIn | None = None,
    session: Session = Depends(get_session),
    principal: Principal = Depends(require(Scope.RELEASES_WRITE)),
) -> RolloutOut:
    """pause (offers not yet taken are withdrawn), resume (failed devices are offered again),
    abort."""
    try:
        rollout = rollouts.visible_rollout(session, principal, rollout_id)
        reason = body.reason if body else "paused by an operator"
        rollouts.act(session, principal, rollout, action, request.app.state.commands, reason)
    except OtaError as exc:
        raise _fail(exc) from exc
    session.commit()
    wake_rollouts(request)
    return rollout_out(session, rollout, members=True)


@router.put("/api/v1/devices/{device_id}/ota/pin", status_code=204)
def pin_device(
    device_id: DeviceId,
    body: PinIn,
    session: Session = Depends(get_session),
    principal: Principal = Depends(require(Scope.RELEASES_WRITE)),
) -> Response:
    try:
        service.pin(session, principal, device_id, body.version, body.reason, known_only=True)
    except OtaError as exc:
        raise _fail(exc) from exc
    session.commit()
    return Response(status_code=204)


@router.delete("/api/v1/devices/{device_id}/ota/pin", status_code=204)
def unpin_device(
    device_id: DeviceId,
    session: Session = Depends(get_session),
    principal: Principal = Depends(require(Scope.RELEASES_WRITE)),
) -> Response:
    try:
        service.unpin(session, principal, device_id)
    except OtaError as exc:
        raise _fail(exc) from exc
    session.commit()
    return Response(status_code=204)


@router.get("/api/v1/devices/{device_id}/ota/history", response_model=list[EventOut])
def device_history(
    device_id: DeviceId,
    session: Session = Depends(get_session),
    principal: Principal = Depends(require(Scope.DEVICES_READ)),
) -> list[Any]:
    try:
        device = service.visible_device(session, principal, device_id)
    except OtaError as exc:
        raise _fail(exc) from exc
    return list(service.history(session, device))


@router.get("/ota/blobs/{blob_path}", include_in_schema=False)
def blob(
    blob_path: Annotated[str, Path(min_length=20, max_length=64)],
    request: Request,
    session: Session = Depends(get_session),
) -> Response:
    """A release blob for devices, with HTTP Range; the unguessable path is the credential."""
    data = service.blob_by_path(session, blob_path)
    if data is None:
        raise HTTPException(404, "no such release blob")
    header = request.headers.get("range")
    if header is None:
        return Response(
            data, media_type="application/octet-stream", headers={"Accept-Ranges": "bytes"}
        )
    match = _RANGE.match(header.strip())
    if match is None or int(match.group(1)) >= len(data):
        return Response(status_code=416, headers={"Content-Range": f"bytes */{len(data)}"})
    start = int(match.group(1))
    end = min(int(match.group(2)) if match.group(2) else len(data) - 1, len(data) - 1)
    if end < start:
        return Response(status_code=416, headers={"Content-Range": f"bytes */{len(data)}"})
    return Response(
        data[start : end + 1],
        status_code=206,
        media_type="application/octet-stream",
        headers={"Content-Range": f"bytes {start}-{end}/{len(data)}", "Accept-Ranges": "bytes"},
    )
