"""What simulated devices send: the firmware's topics and payloads, plus deliberate garbage."""

from __future__ import annotations

import json
import random
from enum import StrEnum
from typing import Any

from fleet.ingest.profile import base_name, device_topic

# Three readings per uplink: one sample time of temperature, humidity and the surface probe.
READINGS_PER_PACK = 3


class Kind(StrEnum):
    TELEMETRY = "up"
    HEALTH = "health"
    STATUS = "status"
    OTA_PROGRESS = "ota/progress"
    BAD = "bad"


def telemetry(device_id: str, bt: float, rng: random.Random) -> bytes:
    records: list[dict[str, Any]] = [
        {
            "bn": base_name(device_id),
            "bt": bt,
            "sv": 1,
            "n": "temperature",
            "u": "Cel",
            "v": round(rng.uniform(15, 24), 2),
        },
        {"n": "humidity", "u": "%RH", "v": round(rng.uniform(40, 90), 1)},
        {"n": "surface_temperature", "u": "Cel", "v": round(rng.uniform(10, 20), 2)},
    ]
    return json.dumps(records, separators=(",", ":")).encode()


def health(device_id: str, bt: float, *, uptime: int, reconnects: int) -> bytes:
    records: list[dict[str, Any]] = [
        {"bn": base_name(device_id), "bt": bt, "sv": 1, "n": "uptime", "u": "s", "v": uptime},
        {"n": "heap_free", "u": "B", "v": 61000},
        {"n": "rssi", "v": -61},
        {"n": "fw_version", "vs": "0.1.0"},
        {"n": "queue_depth", "v": 0},
        {"n": "reconnects", "v": reconnects},
        {"n": "clock_synced", "vb": True},
    ]
    return json.dumps(records, separators=(",", ":")).encode()


def status(state: str) -> bytes:
    return json.dumps({"sv": 1, "state": state}, separators=(",", ":")).encode()


def ota_progress(percent: int) -> bytes:
    return json.dumps(
        {"sv": 1, "state": "downloading", "percent": percent}, separators=(",", ":")
    ).encode()


def bad_telemetry(device_id: str, bt: float, rng: random.Random) -> bytes:
    """A payload the ingest must refuse (and record), chosen among typical faults."""
    choice = rng.randrange(4)
    if choice == 0:
        return b'[{"bn": "truncated'
    if choice == 1:  # wrong unit
        return json.dumps(
            [{"bn": base_name(device_id), "bt": bt, "sv": 1, "n": "temperature", "u": "K", "v": 1}]
        ).encode()
    if choice == 2:  # a clock that was never set
        return json.dumps(
            [{"bn": base_name(device_id), "bt": 1000, "sv": 1, "n": "humidity", "u": "%RH", "v": 5}]
        ).encode()
    return json.dumps(
        [{"bn": base_name(device_id), "bt": bt, "sv": 1, "n": "radon", "u": "Bq", "v": 3}]
    ).encode()


def topic(device_id: str, kind: Kind) -> str:
    return device_topic(device_id, Kind.TELEMETRY.value if kind is Kind.BAD else kind.value)
