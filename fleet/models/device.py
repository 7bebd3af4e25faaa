"""Devices as the fleet knows them: identity, board, last reported state."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from fleet.models.base import Base, UTCDateTime, utcnow


class Device(Base):
    __tablename__ = "devices"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    device_id: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    name: Mapped[str | None] = mapped_column(String(200))
    board: Mapped[str] = mapped_column(String(64), default="devkitc-sht41")
    # "unknown" until the device first reports; liveness rules refine this later.
    status: Mapped[str] = mapped_column(String(16), default="unknown")
    status_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    fw_version: Mapped[str | None] = mapped_column(String(32))
    health: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    health_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Newest value per metric: {"temperature": {"v": 21.4, "u": "Cel", "t": 1763850000.0}}
    latest: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    latest_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
