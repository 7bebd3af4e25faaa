"""Enrolment: devices into places with their identity bundle; rotation, revocation, Wi-Fi.

Refusals carry `{"detail": {"code": ..., "message": ...}}` so the provisioning CLI can map
each one to its own exit code and remedy without parsing prose.
"""

from __future__ import annotations

from datetime import datetime

from cryptography import x509
from fastapi import APIRouter, Depends, HTTPException, Response, status
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from fleet.access import audit
from fleet.access.principal import Forbidden, Principal
from fleet.access.roles import Scope
from fleet.api.deps import get_context, get_session, require
from fleet.api.schemas import WifiProfileIn
from fleet.core.context import FleetContext
from fleet.enrolment import certificates, errors, service, wifi
from fleet.enrolment.certificates import CertificateBundle
from fleet.enrolment.secrets import SecretBox, SecretUnreadable
from fleet.identity.names import DEVICE_ID_RE
from fleet.identity.rotation import ROTATE_BEFORE_DAYS
from fleet.models import Device, DeviceCertificate
from fleet.registry import places

router = APIRouter(prefix="/api/v1/enrolments", tags=["enrolment"])
# Routes without the prefix or a sign-in.
public = APIRouter(tags=["enrolment"])

_STATUS: dict[type[errors.EnrolmentError], tuple[int, str]] = {
    errors.BoroughNotPermitted: (status.HTTP_403_FORBIDDEN, "borough_not_permitted"),
    errors.AlreadyEnrolledElsewhere: (status.HTTP_409_CONFLICT, "already_enrolled_elsewhere"),
    errors.WifiProfileMissing: (status.HTTP_409_CONFLICT, "wifi_profile_missing"),
    errors.DeviceNotEnrolled: (status.HTTP_404_NOT_FOUND, "device_not_enrolled"),
    errors.RotationNotDue: (status.HTTP_409_CONFLICT, "rotation_not_due"),
    errors.CertificateNotFound: (status.HTTP_404_NOT_FOUND, "certificate_not_found"),
    errors.CANotReady: (status.HTTP_503_SERVICE_UNAVAILABLE, "ca_not_ready"),
}


def _refusal(code: int, kind: str, message: str) -> HTTPException:
    return HTTPException(code, {"code": kind, "message": message})


def _http(exc: errors.EnrolmentError) -> HTTPException:
    code, kind = _STATUS.get(type(exc), (status.HTTP_400_BAD_REQUEST, "enrolment_refused"))
    return _refusal(code, kind, str(exc))


class EnrolmentIn(BaseModel):
    device_id: str = Field(pattern=DEVICE_ID_RE.pattern, examples=["cs-3c71bf0a12f4"])
    borough: str = Field(min_length=1, max_length=32)
    property_reference: str = Field(min_length=1, max_length=64)
    room: str = Field(min_length=1, max_length=64)
    position: str | None = Field(default=None, max_length=64)
    board: str = Field(default="devkitc-sht41", pattern=r"^[a-z0-9][a-z0-9-]{1,63}$")
    wifi_profile: str = Field(default=wifi.DEFAULT_PROFILE, min_length=1, max_length=64)
    power_mode: str = Field(default="mains", pattern=r"^(mains|battery)$")
    sample_interval_s: int | None = Field(
        default=None, ge=1, le=86400, description="as in the device's config.json"
    )
    health_interval_s: int | None = Field(
        default=None, ge=1, le=86400, description="as in the device's config.json"
    )


class CertificateOut(BaseModel):
    serial: str
    fingerprint: str
    not_after: datetime
    certificate_pem: str
    private_key_pem: str
    ca_pem: str

    @classmethod
    def of(cls, bundle: CertificateBundle) -> CertificateOut:
        return cls(
            serial=bundle.serial,
            fingerprint=bundle.fingerprint,
            not_after=bundle.not_after,
            certificate_pem=bundle.certificate_pem,
            private_key_pem=bundle.private_key_pem,
            ca_pem=bundle.ca_pem,
        )


class BrokerOut(BaseModel):
    host: str
    port: int
    tls: bool


class WifiOut(BaseModel):
    ssid: str
    password: str | None


class NeighbourOut(BaseModel):
    device_id: str
    status: str
    last_seen_at: datetime | None


class EnrolmentOut(BaseModel):
    device_id: str
    borough: str
    property_reference: str
    placement_id: int
    room: str
    position: str | None
    board: str
    created: bool
    certificate: CertificateOut
    mqtt: BrokerOut
    wifi: WifiOut
    release_keys: dict[str, str] = Field(
        description="Release signing keys the fleet trusts (key id -> Ed25519 public key hex), "
        "for the device's ota/trust.json"
    )
    release_floor: str = Field(
        description="The highest anti-rollback floor the fleet's releases declare: the device "
        "refuses any release below it from the start"
    )
    also_here: list[NeighbourOut] = Field(
        default_factory=list,
        description="Other devices in service at the same placement. Not refused (a room may "
        "have two sensors), but a replaced sensor stays in service until borough staff "
        "decommission it",
    )


class RotateIn(BaseModel):
    force: bool = False
    before_days: int = Field(default=ROTATE_BEFORE_DAYS, ge=0, le=400)


class RevokeIn(BaseModel):
    reason: str = Field(default="unspecified", examples=["key_compromise", "superseded"])


class CertificateRecordOut(BaseModel):
    model_config = {"from_attributes": True}

    serial: str
    fingerprint: str
    not_before: datetime
    not_after: datetime
    issued_at: datetime
    issued_by: str
    reason: str
    revoked_at: datetime | None
    revoke_reason: str | None


class WifiProfileOut(BaseModel):
    borough: str
    name: str
    ssid: str
    has_password: bool
    updated_at: datetime


@router.post("", response_model=EnrolmentOut, status_code=status.HTTP_201_CREATED)
def enrol(
    body: EnrolmentIn,
    response: Response,
    ctx: FleetContext = Depends(get_context),
    session: Session = Depends(get_session),
    principal: Principal = Depends(require(Scope.ENROL)),
) -> EnrolmentOut:
    """Place, register and certify a device; 200 instead of 201 when re-enrolled in place."""
    try:
        result = service.enrol(
            session,
            settings=ctx.settings,
            principal=principal,
            request=service.EnrolmentRequest(**body.model_dump()),
        )
        session.commit()
    except errors.EnrolmentError as exc:
        raise _http(exc) from exc
    except SecretUnreadable as exc:
        raise _refusal(500, "secret_unreadable", str(exc)) from exc
    except IntegrityError as exc:  # two technicians enrolling the same thing at once
        session.rollback()
        raise _refusal(409, "concurrent_change", "the registry changed meanwhile; retry") from exc
    if not result.created:
        response.status_code = status.HTTP_200_OK
    return EnrolmentOut(
        device_id=result.device_id,
        borough=result.borough,
        property_reference=result.property_reference,
        placement_id=result.placement_id,
        room=result.room,
        position=result.position,
        board=result.board,
        created=result.created,
        certificate=CertificateOut.of(result.certificate),
        mqtt=BrokerOut(host=result.broker.host, port=result.broker.port, tls=result.broker.tls),
        wifi=WifiOut(ssid=result.wifi.ssid, password=result.wifi.password),
        release_keys=result.release_keys,
        release_floor=result.release_floor,
        also_here=[
            NeighbourOut(device_id=n.device_id, status=n.status, last_seen_at=n.last_seen_at)
            for n in result.also_here
        ],
    )


@router.post("/{device_id}/rotate", response_model=CertificateOut)
def rotate(
    device_id: str,
    body: RotateIn,
    ctx: FleetContext = Depends(get_context),
    session: Session = Depends(get_session),
    principal: Principal = Depends(require(Scope.ENROL)),
) -> CertificateOut:
    """A new certificate once the current one is within `before_days` of expiry (or forced)."""
    try:
        bundle = service.rotate(
            session,
            settings=ctx.settings,
            principal=principal,
            device_id=device_id,
            force=body.force,
            before_days=body.before_days,
        )
    except errors.EnrolmentError as exc:
        raise _http(exc) from exc
    session.commit()
    return CertificateOut.of(bundle)


@router.get("/{device_id}/certificates", response_model=list[CertificateRecordOut])
def list_certificates(
    device_id: str,
    session: Session = Depends(get_session),
    principal: Principal = Depends(require(Scope.DEVICES_READ)),
) -> list[CertificateRecordOut]:
    device = session.scalars(select(Device).where(Device.current(device_id))).one_or_none()
    if device is None or not principal.can_see(device.borough_id):
        raise _refusal(404, "device_not_enrolled", f"no device {device_id}")
    rows = session.scalars(
        select(DeviceCertificate)
        .where(DeviceCertificate.device_pk == device.id)
        .order_by(DeviceCertificate.issued_at)
    ).all()
    return [CertificateRecordOut.model_validate(r) for r in rows]


@router.post("/certificates/{serial}/revoke", response_model=CertificateRecordOut)
def revoke(
    serial: str,
    body: RevokeIn,
    ctx: FleetContext = Depends(get_context),
    session: Session = Depends(get_session),
    principal: Principal = Depends(require(Scope.ENROL)),
) -> CertificateRecordOut:
    """Revoke (admins); the new CRL goes to FLEET_CRL_PUBLISH_PATH. Reload the broker after."""
    # Names as the identity CLI spells them (key_compromise) or RFC 5280 values (keyCompromise).
    reason = x509.ReasonFlags.__members__.get(body.reason) or next(
        (r for r in x509.ReasonFlags if r.value == body.reason), None
    )
    if reason is None:
        known = ", ".join(x509.ReasonFlags.__members__)
        raise _refusal(422, "bad_reason", f"unknown reason {body.reason!r}; use {known}")
    try:
        record = certificates.revoke(
            session, settings=ctx.settings, principal=principal, serial=serial, reason=reason
        )
    except Forbidden as exc:
        raise _refusal(403, "admin_only", str(exc)) from exc
    except errors.EnrolmentError as exc:
        raise _http(exc) from exc
    device = session.get(Device, record.device_pk)
    audit.record(
        session,
        principal,
        "device.certificate.revoke",
        target_type="device",
        target_id=device.device_id if device else None,
        borough_id=device.borough_id if device else None,
        detail={"serial": record.serial, "reason": reason.value},
    )
    session.commit()
    return CertificateRecordOut.model_validate(record)


@router.get("/crl", response_class=Response)
def crl(
    ctx: FleetContext = Depends(get_context),
    session: Session = Depends(get_session),
    principal: Principal = Depends(require(Scope.DEVICES_READ)),
) -> Response:
    """The device CA's current certificate revocation list (PEM), as `/pki/crl.pem` serves it."""
    return _crl_response(ctx, session)


@public.get("/pki/crl.pem", response_class=Response)
def public_crl(
    ctx: FleetContext = Depends(get_context), session: Session = Depends(get_session)
) -> Response:
    """The CRL for brokers that fetch it from certificates' distribution point
    (`FLEET_CRL_URL`, e.g. EMQX). Anonymous: a CRL is signed and public by design."""
    return _crl_response(ctx, session)


def _crl_response(ctx: FleetContext, session: Session) -> Response:
    try:
        pem = certificates.crl_pem(session, ctx.settings)
    except errors.EnrolmentError as exc:
        raise _http(exc) from exc
    # Brokers cache it themselves (EMQX refreshes every 15 minutes); proxies must not.
    return Response(pem, media_type="application/x-pem-file", headers={"Cache-Control": "no-store"})


@router.put("/wifi-profiles/{borough}/{name}", response_model=WifiProfileOut)
def set_wifi_profile(
    borough: str,
    name: str,
    body: WifiProfileIn,
    ctx: FleetContext = Depends(get_context),
    session: Session = Depends(get_session),
    principal: Principal = Depends(require(Scope.REGISTRY_WRITE)),
) -> WifiProfileOut:
    """Create or replace a borough's Wi-Fi profile; the password is stored encrypted."""
    try:
        found = places.borough_by_code(session, code=borough, principal=principal)
    except places.NotFound as exc:
        raise _refusal(404, "borough_not_permitted", str(exc)) from exc
    profile = wifi.set_profile(
        session,
        box=SecretBox.from_settings(ctx.settings),
        borough=found,
        ssid=body.ssid,
        password=body.password,
        name=name,
        principal=principal,
    )
    session.commit()
    return WifiProfileOut(
        borough=found.code,
        name=profile.name,
        ssid=profile.ssid,
        has_password=profile.password_encrypted is not None,
        updated_at=profile.updated_at,
    )


@router.get("/wifi-profiles/{borough}", response_model=list[WifiProfileOut])
def list_wifi_profiles(
    borough: str,
    session: Session = Depends(get_session),
    principal: Principal = Depends(require(Scope.DEVICES_READ)),
) -> list[WifiProfileOut]:
    try:
        found = places.borough_by_code(session, code=borough, principal=principal)
    except places.NotFound as exc:
        # As enrolment words it: a borough outside the token's scope is not "missing".
        message = f"borough {borough!r} does not exist or your token does not cover it"
        raise _refusal(404, "borough_not_permitted", message) from exc
    return [
        WifiProfileOut(
            borough=found.code,
            name=p.name,
            ssid=p.ssid,
            has_password=p.password_encrypted is not None,
            updated_at=p.updated_at,
        )
        for p in wifi.list_profiles(session, borough=found)
    ]
