"""Cost of the database-backed risk path (``fleet bench risk``): bulk and incremental.

A throwaway database (a temporary SQLite file, or a database created for the run on the
PostgreSQL server of ``url`` and dropped afterwards) gets ``placements`` placements, one
device each, with ``days`` of readings every 15 minutes (temperature, humidity, surface
temperature). The first risk update computes every placement's history (the bulk path, as
after a migration or a rule change); then ``rounds`` times one more hour of readings is
stored for every placement and the update runs again (the live path), alternating between
the batched update and the one-property-at-a-time update so both are measured under the same
load. Only the risk updates are timed, not the inserts, which are the ingest's cost.
"""

from __future__ import annotations

import math
import random
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, insert, make_url, text

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


@contextmanager
def _database(url: str | None, tmp: Path) -> Iterator[str]:
    """A fresh database: a SQLite file, or one created on ``url``'s server (whose own
    database is only used to create and drop it, so a shared test database stays clean)."""
    if url is None or make_url(url).get_backend_name() == "sqlite":
        yield url or f"sqlite:///{tmp / 'bench.sqlite3'}"
        return
    name = f"fleet_bench_risk_{uuid.uuid4().hex[:10]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield make_url(url).set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


class _Statements:
    """Counts statements sent to the database (an executemany counts once)."""

    def __init__(self, engine: Engine) -> None:
        self.n = 0
        event.listen(engine, "before_cursor_execute", self._count)

    def _count(self, *_: object) -> None:
        self.n += 1


def run(
    *, placements: int, days: int, rounds: int = 6, url: str | None = None, seed: int = 1
) -> dict[str, Any]:
    """Returns the bulk and incremental figures of the database-backed path; ``rounds``
    incremental rounds are timed for each of the batched and the one-property update."""
    if placements <= 0 or days <= 0 or rounds <= 0:
        raise ValueError("placements, days and rounds must be positive")
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory() as tmp, _database(url, Path(tmp)) as db_url:
        engine = make_engine(db_url)
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
        statements = _Statements(engine)
        t0 = time.perf_counter()
        first = sweep(sessions, settings)
        bulk_s = time.perf_counter() - t0
        # Per path: seconds and statements. Alternating rounds share the machine's load.
        paths: dict[bool, list[float]] = {True: [0.0, 0.0], False: [0.0, 0.0]}
        cursor = start + STEP * n
        for i in range(2 * rounds):
            batched = i % 2 == 0
            for pk in pks:
                with sessions.begin() as s:
                    s.execute(insert(Reading), _rows(pk, cursor, 4, rng))
                    s.get_one(Device, pk).latest_at = cursor + STEP * 3
            before = statements.n
            t0 = time.perf_counter()
            result = sweep(sessions, settings, batched=batched)
            paths[batched][0] += time.perf_counter() - t0
            paths[batched][1] += statements.n - before
            if result.hours < placements - 1 or result.failed:
                raise RuntimeError(f"incremental round processed {result.hours} hours")
            cursor += timedelta(hours=1)
        dialect = engine.dialect.name
        engine.dispose()
    hours = first.hours
    readings = placements * rounds * 4 * METRICS_PER_SAMPLE
    batched_s, batched_n = paths[True]
    single_s, single_n = paths[False]
    return {
        "db": dialect,
        "db_placements": placements,
        "db_days": days,
        "db_bulk_hours": hours,
        "db_bulk_seconds": round(bulk_s, 3),
        "db_bulk_hours_per_s": round(hours / bulk_s, 1) if bulk_s else math.inf,
        "db_incremental_readings": readings,
        "db_incremental_ms_per_reading": round(batched_s / readings * 1000, 4),
        "db_incremental_ms_per_placement_hour": round(batched_s / (placements * rounds) * 1000, 3),
        "db_incremental_statements_per_placement_hour": round(batched_n / (placements * rounds), 2),
        "db_one_by_one_ms_per_reading": round(single_s / readings * 1000, 4),
        "db_one_by_one_statements_per_placement_hour": round(single_n / (placements * rounds), 2),
        "db_batched_speedup": round(single_s / batched_s, 2) if batched_s else math.inf,
    }
