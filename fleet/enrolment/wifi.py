"""Per-borough Wi-Fi profiles: set by staff, handed to devices at enrolment."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from fleet.access import audit
from fleet.access.principal import Principal
from fleet.enrolment.errors import WifiProfileMissing
from fleet.enrolment.secrets import SecretBox
from fleet.models import Borough, WifiProfile

DEFAULT_PROFILE = "default"


@dataclass(frozen=True)
class WifiCredentials:
    ssid: str
    password: str | None


def set_profile(
    session: Session,
    *,
    box: SecretBox,
    borough: Borough,
    ssid: str,
    password: str | None,
    name: str = DEFAULT_PROFILE,
    principal: Principal | None = None,
) -> WifiProfile:
    """Create or replace the borough's profile `name`; recorded in the audit log (the SSID,
    never the password) when a principal made the change."""
    profile = session.scalars(
        select(WifiProfile).where(WifiProfile.borough_id == borough.id, WifiProfile.name == name)
    ).one_or_none()
    if profile is None:
        profile = WifiProfile(borough_id=borough.id, name=name)
        session.add(profile)
    profile.ssid = ssid
    profile.password_encrypted = box.encrypt(password) if password else None
    session.flush()
    if principal is not None:
        audit.record(
            session,
            principal,
            "wifi_profile.set",
            target_type="wifi_profile",
            target_id=name,
            borough_id=borough.id,
            detail={"ssid": ssid},
        )
    return profile


def list_profiles(session: Session, *, borough: Borough) -> Sequence[WifiProfile]:
    stmt = select(WifiProfile).where(WifiProfile.borough_id == borough.id)
    return session.scalars(stmt.order_by(WifiProfile.name)).all()


def credentials(
    session: Session, *, box: SecretBox, borough: Borough, name: str = DEFAULT_PROFILE
) -> WifiCredentials:
    profile = session.scalars(
        select(WifiProfile).where(WifiProfile.borough_id == borough.id, WifiProfile.name == name)
    ).one_or_none()
    if profile is None:
        raise WifiProfileMissing(
            f"borough {borough.code!r} has no Wi-Fi profile {name!r}: ask borough staff or an "
            "admin to set it on the dashboard's Registry page "
            f"(or PUT /api/v1/enrolments/wifi-profiles/{borough.code}/{name})"
        )
    password = box.decrypt(profile.password_encrypted) if profile.password_encrypted else None
    return WifiCredentials(ssid=profile.ssid, password=password)
