"""The `cs-senml/1` profile: metric names, units and wire constants shared with the firmware."""

from __future__ import annotations

import re
from datetime import UTC, datetime

TOPIC_ROOT = "cs/v1"
BASE_NAME_PREFIX = "urn:dev:cs:"
SUPPORTED_SCHEMA_VERSIONS = frozenset({1})
DEVICE_ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]{2,63}$")

# Metric name -> SenML unit. Changing a unit is a new schema version.
METRIC_UNITS: dict[str, str] = {
    "temperature": "Cel",
    "humidity": "%RH",
    "surface_temperature": "Cel",
    "co2": "ppm",
    "pressure": "Pa",
    "battery_voltage": "V",
    "battery": "%EL",
}

# Physically possible ranges; anything outside is a broken sensor or a forged message.
METRIC_RANGES: dict[str, tuple[float, float]] = {
    "temperature": (-40.0, 125.0),
    "humidity": (0.0, 100.0),
    "surface_temperature": (-55.0, 125.0),
    "co2": (0.0, 40000.0),
    "pressure": (30000.0, 110000.0),
    "battery_voltage": (0.0, 15.0),
    "battery": (0.0, 100.0),
}

# Readings before this come from a clock that was never set.
EARLIEST_VALID_TIME = datetime(2020, 1, 1, tzinfo=UTC).timestamp()
# Tolerated clock drift into the future before a reading is refused.
MAX_FUTURE_SKEW_S = 3600.0
MAX_RECORDS_PER_PACK = 512

STATUS_STATES = frozenset({"online", "sleeping", "offline"})


def base_name(device_id: str) -> str:
    return f"{BASE_NAME_PREFIX}{device_id}:"


def device_topic(device_id: str, leaf: str) -> str:
    return f"{TOPIC_ROOT}/d/{device_id}/{leaf}"


def supported_version(value: object) -> bool:
    # Payload values may be lists or dicts (unhashable): test the type before set membership.
    return type(value) is int and value in SUPPORTED_SCHEMA_VERSIONS
