"""Build SenML packs the way the firmware does, for host-side tests."""

from __future__ import annotations

import json
from typing import Any

from fleet.ingest.profile import base_name


def telemetry(device_id: str, bt: float, samples: list[tuple[float, float, float]]) -> bytes:
    """samples: (offset_s, temperature, humidity)."""
    records: list[dict[str, Any]] = []
    for i, (t, temp, rh) in enumerate(samples):
        temp_rec: dict[str, Any] = {"n": "temperature", "u": "Cel", "v": temp}
        if t:
            temp_rec["t"] = t
        if i == 0:
            temp_rec = {"bn": base_name(device_id), "bt": bt, "sv": 1, **temp_rec}
        rh_rec: dict[str, Any] = {"n": "humidity", "u": "%RH", "v": rh}
        if t:
            rh_rec["t"] = t
        records += [temp_rec, rh_rec]
    return json.dumps(records).encode()
