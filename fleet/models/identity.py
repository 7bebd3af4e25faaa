"""Device identity held by the fleet: issued certificates and per-borough Wi-Fi profiles."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from fleet.models.base import Base, UTCDateTime, utcnow


class DeviceCertificate(Base):
    """One client certificate issued to a device; the private key went to the device only."""

    __tablename__ = "device_certificates"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    device_pk: Mapped[int] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"), index=True)
    serial: Mapped[str] = mapped_column(String(40), unique=True)  # lower-case hex
    fingerprint: Mapped[str] = mapped_column(String(64))  # SHA-256 of the DER, hex
    not_before: Mapped[datetime] = mapped_column(UTCDateTime())
    not_after: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    issued_by: Mapped[str] = mapped_column(String(200))  # the principal's audit actor
    reason: Mapped[str] = mapped_column(String(16), default="enrol")  # enrol | rotate
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoke_reason: Mapped[str | None] = mapped_column(String(32))


class WifiProfile(Base):
    """The network a borough's sensors join; the password is encrypted with the secret key."""

    __tablename__ = "wifi_profiles"
    __table_args__ = (UniqueConstraint("borough_id", "name", name="uq_wifi_profiles_borough_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    borough_id: Mapped[int] = mapped_column(ForeignKey("boroughs.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64), default="default")
    ssid: Mapped[str] = mapped_column(String(32))
    password_encrypted: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
