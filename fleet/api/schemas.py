"""Request and response bodies of the REST API."""

from __future__ import annotations

import string
from datetime import datetime
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator, model_validator

from fleet.ingest.profile import DEVICE_ID_RE

# Database ids are 32-bit on every backend; larger numbers cannot name a row.
MAX_ID = 2_147_483_647
WIFI_SSID_BYTES = 32  # IEEE 802.11: an SSID is at most 32 octets
DbId = Annotated[int, Field(ge=1, le=MAX_ID)]


class DeviceCreate(BaseModel):
    device_id: str = Field(pattern=DEVICE_ID_RE.pattern, examples=["cs-3c71bf0a12f4"])
    name: str | None = Field(default=None, max_length=200)
    board: str = Field(default="devkitc-sht41", pattern=r"^[a-z0-9][a-z0-9-]{1,63}$")
    borough: str | None = Field(default=None, description="Borough code; required for staff")
    power_mode: str = Field(default="mains", pattern=r"^(mains|battery)$")
    report_interval_s: int = Field(default=900, ge=1, le=86400)


class LatestValue(BaseModel):
    v: float
    u: str
    t: float


class DeviceOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    device_id: str
    name: str | None
    board: str
    borough_id: int | None
    placement_id: int | None
    status: str
    status_at: datetime | None
    state: str
    state_at: datetime | None
    power_mode: str
    report_interval_s: int
    # The cadence the device runs, as enrolled and as since applied; null: not known.
    sample_interval_s: int | None = None
    health_interval_s: int | None = None
    uplink_every: int | None = None
    last_seen_at: datetime | None
    fw_version: str | None
    latest: dict[str, LatestValue] | None
    latest_at: datetime | None
    health: dict[str, Any] | None
    health_at: datetime | None
    created_at: datetime
    # When the device was decommissioned; null: in service.
    retired_at: datetime | None = None
    tags: list[str] = Field(default_factory=list)

    @field_validator("tags", mode="before")
    @classmethod
    def _tag_names(cls, value: Any) -> list[str]:
        return [t if isinstance(t, str) else t.name for t in value or []]


class ReadingOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    metric: str
    ts: datetime
    value: float
    unit: str


class SeriesPointOut(BaseModel):
    ts: datetime
    mean: float
    low: float
    high: float
    count: int


class RejectOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    received_at: datetime
    topic: str
    device_id: str | None
    reason: str
    detail: str
    payload_excerpt: str
    payload_size: int


class DevicePage(BaseModel):
    total: int
    limit: int
    offset: int
    items: list[DeviceOut]


class BoroughCreate(BaseModel):
    code: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{1,31}$", examples=["hackney"])
    name: str = Field(min_length=1, max_length=200)
    contact_email: str | None = Field(default=None, max_length=200)


class BoroughOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    code: str
    name: str
    contact_email: str | None
    alert_settings: dict[str, Any] | None


class EstateCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    kind: str = Field(default="estate", pattern=r"^(estate|block)$")
    parent_id: DbId | None = None


class EstateOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    borough_id: int
    parent_id: int | None
    name: str
    kind: str


class PropertyCreate(BaseModel):
    reference: str = Field(min_length=1, max_length=64)
    estate_id: DbId | None = None
    housing_type: str | None = Field(default=None, max_length=32)
    construction_age_band: str | None = Field(default=None, max_length=32)
    floor: int | None = Field(default=None, ge=-5, le=200)
    address: str | None = Field(default=None, max_length=400)
    postcode: str | None = Field(default=None, max_length=10)


class PropertyOut(PropertyCreate):
    model_config = ConfigDict(from_attributes=True)

    id: int
    borough_id: int


class WifiProfileIn(BaseModel):
    """A borough's Wi-Fi network as enrolment hands it to devices: what an ESP32 can join,
    checked here so a technician learns of a bad one before a sensor fails to connect."""

    ssid: str = Field(min_length=1, max_length=32)
    password: str | None = Field(default=None, min_length=8, max_length=64)

    @field_validator("ssid")
    @classmethod
    def _ssid_fits(cls, value: str) -> str:
        size = len(value.encode())
        if size > WIFI_SSID_BYTES:
            raise ValueError(
                f"the network name is {size} bytes in UTF-8; Wi-Fi allows at most "
                f"{WIFI_SSID_BYTES} (accented letters take two)"
            )
        return value

    @field_validator("password")
    @classmethod
    def _wpa2_key(cls, value: str | None) -> str | None:
        # WPA2-Personal: a passphrase of 8-63 printable ASCII characters, or the 256-bit
        # key itself as 64 hex digits. Anything else no sensor can join with.
        if value is None:
            return None
        if len(value) == 64:
            if any(c not in string.hexdigits for c in value):
                raise ValueError(
                    "a 64-character Wi-Fi key must be 64 hex digits; a passphrase has 8-63 "
                    "characters"
                )
            return value
        if any(not " " <= c <= "~" for c in value):
            raise ValueError(
                "a WPA2 passphrase may hold only printable ASCII characters (no accents, "
                "emoji or control characters)"
            )
        return value


class PlacementCreate(BaseModel):
    room: str = Field(min_length=1, max_length=64)
    position: str | None = Field(default=None, max_length=64)


class PlacementOut(PlacementCreate):
    model_config = ConfigDict(from_attributes=True)

    id: int
    property_id: int


class DevicePlace(BaseModel):
    placement_id: DbId


class AlertOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    rule: str
    severity: str
    state: str
    message: str
    detail: dict[str, Any] | None
    opened_at: datetime
    last_seen_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    resolved_at: datetime | None
    resolved_by: str | None
    device_id: str | None = None


class AuditOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    at: datetime
    actor: str
    action: str
    target_type: str | None
    target_id: str | None
    borough_id: int | None
    detail: dict[str, Any] | None


class CommandIn(BaseModel):
    op: str = Field(pattern=r"^(reboot|sample-now|identify)$")


class CommandOut(BaseModel):
    id: str
    op: str
    topic: str


class SettingsIn(BaseModel):
    """Any of the remotely settable fields; the rest stay as they are. Other fields are
    refused with the list of what may change."""

    model_config = ConfigDict(extra="allow")

    sample_interval_s: StrictInt | None = Field(default=None, description="10-86400 s")
    health_interval_s: StrictInt | None = Field(default=None, description="60-86400 s")
    uplink_every: StrictInt | None = Field(
        default=None, description="battery sensors: connect every Nth wake, 1-96"
    )
    rh_uplink_above: StrictInt | None = Field(
        default=None, description="battery sensors: connect at once above this RH %, 50-101"
    )


class SettingsOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    version: int
    values: dict[str, int]
    state: str = Field(description="pending (no answer yet), applied, refused or not_sent")
    error: str | None = Field(description="why the device refused them (it kept its config)")
    set_by: str
    set_at: datetime
    answered_at: datetime | None


class CommandStateOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    command_id: str
    op: str
    sent_by: str
    sent_at: datetime
    state: str = Field(description="sent (no answer yet), ok, failed or not_sent")
    answered_at: datetime | None
    result: Any | None = Field(description="what the device returned, e.g. sample-now's values")
    error: str | None = Field(description="why the device refused or failed it")


class _Patch(BaseModel):
    """A partial update: omitted fields stay; fields listed in NOT_NULL cannot be set to null."""

    NOT_NULL: ClassVar[tuple[str, ...]] = ()

    @model_validator(mode="before")
    @classmethod
    def _refuse_nulls(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for name in cls.NOT_NULL:
                if name in data and data[name] is None:
                    raise ValueError(f"{name} cannot be null; omit it to keep the current value")
        return data


class EstateUpdate(_Patch):
    NOT_NULL = ("name", "kind")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    kind: str | None = Field(default=None, pattern=r"^(estate|block)$")


class PropertyUpdate(BaseModel):
    estate_id: DbId | None = None
    housing_type: str | None = Field(default=None, max_length=32)
    construction_age_band: str | None = Field(default=None, max_length=32)
    floor: int | None = Field(default=None, ge=-5, le=200)
    address: str | None = Field(default=None, max_length=400)
    postcode: str | None = Field(default=None, max_length=10)


class PlacementUpdate(_Patch):
    NOT_NULL = ("room",)

    room: str | None = Field(default=None, min_length=1, max_length=64)
    position: str | None = Field(default=None, max_length=64)


class DeviceUpdate(_Patch):
    NOT_NULL = ("power_mode", "report_interval_s", "tags")

    name: str | None = Field(default=None, max_length=200)
    power_mode: str | None = Field(default=None, pattern=r"^(mains|battery)$")
    report_interval_s: int | None = Field(default=None, ge=1, le=86400)
    tags: list[Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]] | None = Field(
        default=None, max_length=20
    )


class HardwareModelIn(BaseModel):
    board: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{1,63}$")
    description: str = Field(default="", max_length=400)
    power: str = Field(default="mains", pattern=r"^(mains|battery)$")
    sensors: list[str] = Field(default_factory=list, max_length=10)


class HardwareModelOut(HardwareModelIn):
    model_config = ConfigDict(from_attributes=True)

    id: int


class AlertSettings(BaseModel):
    """Per-borough alert thresholds; omitted fields keep the fleet defaults."""

    model_config = ConfigDict(extra="forbid")

    offline_after_s: int | None = Field(default=None, ge=60, le=30 * 86400)
    battery_below_pct: float | None = Field(default=None, ge=1, le=99)
    battery_empty_within_days: float | None = Field(default=None, ge=1, le=365)
    reboots_per_hour: int | None = Field(default=None, ge=1, le=60)
    target_fw_version: str | None = Field(default=None, pattern=r"^\d+(\.\d+){0,3}$")


class BoroughUpdate(_Patch):
    NOT_NULL = ("name",)

    name: str | None = Field(default=None, min_length=1, max_length=200)
    contact_email: str | None = Field(default=None, max_length=200)
    alert_settings: AlertSettings | None = None
