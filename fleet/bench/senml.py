"""How fast the ingest path decodes and validates telemetry packs (CPU only, no I/O)."""

from __future__ import annotations

import json
import platform
import statistics
import time
from typing import Any

from fleet.ingest.profile import base_name
from fleet.ingest.senml import decode_telemetry

PACKS = 20_000
SAMPLES_PER_PACK = 4  # a typical wake: two sample times of temperature and humidity


def _pack(device_id: str, bt: float) -> bytes:
    records: list[dict[str, Any]] = [
        {"bn": base_name(device_id), "bt": bt, "sv": 1, "n": "temperature", "u": "Cel", "v": 21.3},
        {"n": "humidity", "u": "%RH", "v": 55.1},
        {"n": "temperature", "u": "Cel", "v": 21.4, "t": 900},
        {"n": "humidity", "u": "%RH", "v": 55.6, "t": 900},
    ]
    return json.dumps(records).encode()


def run() -> dict[str, Any]:
    now = time.time()
    payloads = [_pack(f"cs-bench-{i % 100:04d}", now - 7200 + i % 3600) for i in range(PACKS)]
    rounds: list[float] = []
    for _ in range(5):
        start = time.perf_counter()
        for i, payload in enumerate(payloads):
            decode_telemetry(payload, f"cs-bench-{i % 100:04d}", now=now)
        rounds.append(time.perf_counter() - start)
    best = min(rounds)
    return {
        "packs": PACKS,
        "packs_per_s": round(PACKS / best),
        "readings_per_s": round(PACKS * SAMPLES_PER_PACK / best),
        "median_round_s": round(statistics.median(rounds), 4),
        "bytes_per_pack": len(payloads[0]),
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
