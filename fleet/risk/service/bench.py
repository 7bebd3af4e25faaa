"""Cost of the database-backed risk path (``fleet bench risk``): bulk and incremental.

A throwaway database gets ``placements`` placements, one device each, with ``days`` of
readings every 15 minutes (temperature, humidity, surface temperature). The first risk update
computes every placement's history (the bulk path, as after a migration or a rule change);
then ``rounds`` times one more hour of readings is stored for every placement and the update
runs again (the live path). Only the risk updates are timed, not the inserts, which are the
ingest's cost.
"""

from __future__ import annotations

import math
import random
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert

from fleet.core.db import make_engine, make_session_factory, upgrade
from fleet.models import Borough, Device, Placement, Property, Reading
from fleet.risk.service.settings import RiskSettings
from fleet.risk.service.sweep import sweep

STEP = timedelta(minutes=15)
METRICS_PER_SAMPLE = 3


def _rows(device_pk: int, start: datetime, n: int, rng: random.Random) -> list[dict[str, Any]]:
    base = rng.uniform(55.0, 80.0)
    out = []
    for i in range(n):
        ts = start + STEP * i
        daily = math.sin(2 * math.pi * (ts.hour + ts.minute / 60) / 24)
        t = 18.0 + 2.0 * daily
        rh = min(max(base + 8.0 * daily + rng.gauss(0, 2), 1.0), 99.0)
        out += [
            {"device_pk": device_pk, "metric": "temperature", "ts": ts, "value": t, "unit": "Cel"},
            {"device_pk": device_pk, "metric": "humidity", "ts": ts, "value": rh, "unit": "%RH"},
            {
                "device_pk": device_pk,
                "metric": "surface_temperature",
                "ts": ts,
                "value": t - 4.0,
                "unit": "Cel",
            },
        ]
    return out


def run(
    *, placements: int, days: int, rounds: int = 6, url: str | None = None, seed: int = 1
) -> dict[str, Any]:
    """Returns the bulk and incremental figures of the database-backed path."""
    if placements <= 0 or days <= 0 or rounds <= 0:
        raise ValueError("placements, days and rounds must be positive")
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(url or f"sqlite:///{Path(tmp) / 'bench.sqlite3'}")
        upgrade(engine)
        sessions = make_session_factory(engine)
        start = datetime(2025, 1, 6, tzinfo=UTC)
        with sessions.begin() as s:
            borough = Borough(code="bench", name="Bench")
            s.add(borough)
            s.flush()
            pks = []
            for i in range(placements):
                prop = Property(borough_id=borough.id, reference=f"B-{i:05d}")
                s.add(prop)
                s.flush()
                pl = Placement(property_id=prop.id, room="bathroom")
                s.add(pl)
                s.flush()
                dev = Device(device_id=f"cs-bench-{i:05d}", borough_id=borough.id)
                dev.placement_id = pl.id
                s.add(dev)
                s.flush()
                pks.append(dev.id)
        n = days * 24 * 4 + 1  # one sample into the next hour closes the last one
        for pk in pks:
            with sessions.begin() as s:
                s.execute(insert(Reading), _rows(pk, start, n, rng))
                s.get_one(Device, pk).latest_at = start + STEP * (n - 1)
        settings = RiskSettings(batch=200)
        t0 = time.perf_counter()
        first = sweep(sessions, settings)
        bulk_s = time.perf_counter() - t0
        inc_s = 0.0
        inc_readings = 0
        cursor = start + STEP * n
        for _ in range(rounds):
            for pk in pks:
                with sessions.begin() as s:
                    s.execute(insert(Reading), _rows(pk, cursor, 4, rng))
                    s.get_one(Device, pk).latest_at = cursor + STEP * 3
            inc_readings += placements * 4 * METRICS_PER_SAMPLE
            t0 = time.perf_counter()
            result = sweep(sessions, settings)
            inc_s += time.perf_counter() - t0
            if result.hours < placements - 1:
                raise RuntimeError(f"incremental round processed {result.hours} hours")
            cursor += timedelta(hours=1)
        dialect = engine.dialect.name
        engine.dispose()
    hours = first.hours
    return {
        "db": dialect,
        "db_placements": placements,
        "db_days": days,
        "db_bulk_hours": hours,
        "db_bulk_seconds": round(bulk_s, 3),
        "db_bulk_hours_per_s": round(hours / bulk_s, 1) if bulk_s else math.inf,
        "db_incremental_readings": inc_readings,
        "db_incremental_ms_per_reading": round(inc_s / inc_readings * 1000, 4),
        "db_incremental_ms_per_placement_hour": round(inc_s / (placements * rounds) * 1000, 3),
    }
