"""Privacy rules of the feed: dataset policy, keyed pseudonyms and coarsened locations."""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import secrets
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from fleet.models.base import utcnow
from fleet.models.feed import FeedKey, FeedPolicy

PRECISIONS = ("postcode_district", "grid_1km", "borough")
WITHDRAWAL_ACTIONS = ("delete", "keep_internal")
DEFAULT_RETENTION_DAYS = 730
# About 1.1 km north-south; the longitude step gives about 1 km east-west at London's latitude.
GRID_LAT_STEP = 0.01
GRID_LON_STEP = 0.015
_OUTWARD = re.compile(r"^([A-Z]{1,2}[0-9][A-Z0-9]?)\s*[0-9][A-Z]{2}$")


@dataclass(frozen=True)
class Policy:
    """A borough's effective dataset policy (its stored row, or the defaults)."""

    borough_id: int | None
    public_feed: bool = True
    location_precision: str = "postcode_district"
    retention_days: int = DEFAULT_RETENTION_DAYS
    metric_retention_days: dict[str, int] = field(default_factory=dict)
    withdrawal_action: str = "delete"
    decided_by: str | None = None
    contact: str | None = None

    def retention_for(self, metric: str) -> int:
        return int(self.metric_retention_days.get(metric, self.retention_days))

    @classmethod
    def from_row(cls, row: FeedPolicy | None, borough_id: int | None) -> Policy:
        if row is None:
            return cls(borough_id=borough_id)
        return cls(
            borough_id=row.borough_id,
            public_feed=row.public_feed,
            location_precision=row.location_precision,
            retention_days=row.retention_days,
            metric_retention_days={k: int(v) for k, v in (row.metric_retention_days or {}).items()},
            withdrawal_action=row.withdrawal_action,
            decided_by=row.decided_by,
            contact=row.contact,
        )


def policies(session: Session) -> dict[int, Policy]:
    rows = session.scalars(select(FeedPolicy)).all()
    return {row.borough_id: Policy.from_row(row, row.borough_id) for row in rows}


# -- pseudonyms ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Pseudonymiser:
    """HMAC-SHA256 under a versioned key; the version is part of the pseudonym."""

    version: int
    secret: bytes

    def property(self, borough_id: int, property_id: int) -> str:
        message = f"property:{borough_id}:{property_id}".encode()
        digest = hmac.new(self.secret, message, hashlib.sha256).hexdigest()
        return f"p{self.version}-{digest[:20]}"


def active_key(session: Session) -> FeedKey:
    """The newest unretired key, created on first use so a fresh fleet needs no set-up."""
    key = session.scalars(
        select(FeedKey).where(FeedKey.retired_at.is_(None)).order_by(FeedKey.version.desc())
    ).first()
    if key is None:
        newest = session.scalars(select(FeedKey.version).order_by(FeedKey.version.desc())).first()
        key = FeedKey(version=(newest or 0) + 1, secret=secrets.token_urlsafe(32))
        session.add(key)
        session.flush()
    return key


def pseudonymiser(session: Session) -> Pseudonymiser:
    key = active_key(session)
    return Pseudonymiser(key.version, key.secret.encode())


def rotate_key(session: Session) -> FeedKey:
    """Retire the current key and start a new version: old pseudonyms no longer link up."""
    current = active_key(session)
    current.retired_at = utcnow()
    # A fresh secret is the whole point; the old one is kept only to explain old pseudonyms.
    key = FeedKey(version=current.version + 1, secret=secrets.token_urlsafe(32))
    session.add(key)
    session.flush()
    return key


# -- locations ----------------------------------------------------------------------------------
# Room names are free text typed by staff; the public feed only ever shows one of these types.
ROOM_TYPES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("bathroom", ("bath", "shower", "wc", "toilet")),
    ("kitchen", ("kitchen",)),
    ("bedroom", ("bed",)),
    ("living room", ("living", "lounge", "sitting", "reception")),
    ("hallway", ("hall", "landing", "corridor", "stair")),
)


def room_type(room: str) -> str:
    """A coarse room type for publication ("Bedroom 2 (Amy's)" -> "bedroom")."""
    text = room.lower()
    for name, words in ROOM_TYPES:
        if any(word in text for word in words):
            return name
    return "other room"


def postcode_district(postcode: str | None) -> str | None:
    """The outward code ("E8 3AB" -> "E8"), or None for anything that is not a UK postcode."""
    if not postcode:
        return None
    match = _OUTWARD.match(postcode.strip().upper())
    return match.group(1) if match else None


def grid_cell(lat: float, lon: float) -> tuple[str, list[list[float]]]:
    """The ~1 km cell holding a point: its name and closed polygon ring (lon, lat)."""
    row = math.floor(lat / GRID_LAT_STEP)
    col = math.floor(lon / GRID_LON_STEP)
    south, west = row * GRID_LAT_STEP, col * GRID_LON_STEP
    north, east = south + GRID_LAT_STEP, west + GRID_LON_STEP
    ring = [
        [round(west, 4), round(south, 4)],
        [round(east, 4), round(south, 4)],
        [round(east, 4), round(north, 4)],
        [round(west, 4), round(north, 4)],
        [round(west, 4), round(south, 4)],
    ]
    return f"grid1km:{row}:{col}", ring


def coarse_feature(
    *,
    precision: str,
    borough_name: str,
    postcode: str | None,
    geo: tuple[float, float] | None,
) -> dict[str, Any]:
    """A GeoJSON Feature no finer than ``precision``, falling back to coarser areas."""
    if precision == "grid_1km" and geo is not None:
        name, ring = grid_cell(*geo)
        return {
            "type": "Feature",
            "geometry": {"type": "Polygon", "coordinates": [ring]},
            "properties": {"precision": "grid_1km", "area": name, "borough": borough_name},
        }
    district = postcode_district(postcode) if precision != "borough" else None
    if district is not None:
        return {
            "type": "Feature",
            "geometry": None,
            "properties": {
                "precision": "postcode_district",
                "area": district,
                "borough": borough_name,
            },
        }
    return {
        "type": "Feature",
        "geometry": None,
        "properties": {"precision": "borough", "area": borough_name, "borough": borough_name},
    }


def exact_feature(
    *, borough_name: str, postcode: str | None, geo: tuple[float, float] | None
) -> dict[str, Any]:
    """The borough-internal location: the property's point and postcode."""
    geometry = None if geo is None else {"type": "Point", "coordinates": [geo[1], geo[0]]}
    return {
        "type": "Feature",
        "geometry": geometry,
        "properties": {"precision": "exact", "postcode": postcode, "borough": borough_name},
    }


def area_label(feature: dict[str, Any]) -> str:
    props = feature.get("properties") or {}
    return str(props.get("area") or props.get("postcode") or props.get("borough") or "")
