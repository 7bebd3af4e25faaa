"""Request and response bodies of the REST API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

DEVICE_ID_PATTERN = r"^[a-z0-9][a-z0-9-]{2,63}$"


class DeviceCreate(BaseModel):
    device_id: str = Field(pattern=DEVICE_ID_PATTERN, examples=["cs-3c71bf0a12f4"])
    name: str | None = Field(default=None, max_length=200)
    board: str = Field(default="devkitc-sht41", pattern=r"^[a-z0-9][a-z0-9-]{1,63}$")


class LatestValue(BaseModel):
    v: float
    u: str
    t: float


class DeviceOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    device_id: str
    name: str | None
    board: str
    status: str
    status_at: datetime | None
    state: str
    state_at: datetime | None
    power_mode: str
    report_interval_s: int
    last_seen_at: datetime | None
    fw_version: str | None
    latest: dict[str, LatestValue] | None
    latest_at: datetime | None
    health: dict[str, Any] | None
    health_at: datetime | None
    created_at: datetime


class ReadingOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    metric: str
    ts: datetime
    value: float
    unit: str


class RejectOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    received_at: datetime
    topic: str
    device_id: str | None
    reason: str
    detail: str
    payload_excerpt: str
    payload_size: int
