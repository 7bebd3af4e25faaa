"""SensorThings paging and CSV export on PostgreSQL over a year of 15-minute data.

Creates a temporary database on the server named by FLEET_TEST_POSTGRES_URL (default
postgresql+psycopg://postgres@127.0.0.1:5432/test), loads a year of readings for several
devices, then pages through one Datastream's Observations with $top=1000 through the HTTP
layer (following @iot.nextLink to the end) and exports the borough as CSV.
"""

from __future__ import annotations

import os
import platform
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from fleet.api.app import create_app
from fleet.core.context import FleetContext, build_context
from fleet.core.settings import Settings
from fleet.feed import snapshot
from fleet.feed.export import export_csv
from fleet.feed.ratelimit import Limit, RateLimiter
from fleet.feed.snapshot import Audience
from fleet.models import Reading
from fleet.registry import places
from fleet.registry.devices import register_device

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
DEVICES = 5
METRICS = (("temperature", "Cel"), ("humidity", "%RH"))
STEP = timedelta(minutes=15)
SAMPLES = 365 * 24 * 4  # one year of 15-minute samples
PAGE = 1000


@contextmanager
def temporary_database(server_url: str) -> Iterator[str]:
    name = f"fleet_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{server_url.rsplit('/', 1)[0]}/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _seed(ctx: FleetContext, start: datetime) -> list[int]:
    with ctx.sessions.begin() as s:
        borough = places.create_borough(s, code="bench", name="Bench")
        device_pks = []
        for i in range(DEVICES):
            prop = places.create_property(s, borough=borough, reference=f"B-{i}", postcode="E8 1AA")
            placement = places.create_placement(s, prop=prop, room="bedroom")
            device = register_device(s, device_id=f"cs-bench-{i:04d}", borough_id=borough.id)
            device.placement_id = placement.id
            device.latest = {m: {"v": 0.0, "u": u, "t": 0.0} for m, u in METRICS}
            device_pks.append(device.id)
    raw = ctx.engine.raw_connection()
    try:
        cursor = raw.cursor()
        columns = "device_pk, metric, ts, value, unit, received_at"
        # COPY is how a year of data gets in within seconds; ingest itself is not measured here.
        with cursor.copy(f"COPY {Reading.__tablename__} ({columns}) FROM STDIN") as copy:
            for pk in device_pks:
                for metric, unit in METRICS:
                    for n in range(SAMPLES):
                        ts = start + n * STEP
                        copy.write_row((pk, metric, ts, 20.0 + (n % 96) / 10, unit, ts))
        raw.commit()
        cursor.execute(f"ANALYZE {Reading.__tablename__}")
        raw.commit()
    finally:
        raw.close()
    snapshot.sync_committed(ctx.sessions)
    return device_pks


def _page_through(client: TestClient, url: str) -> tuple[list[float], int]:
    timings: list[float] = []
    rows = 0
    next_url: str | None = url
    while next_url:
        began = time.perf_counter()
        response = client.get(next_url)
        timings.append(time.perf_counter() - began)
        if response.status_code != 200:
            raise RuntimeError(f"page {next_url} answered {response.status_code}: {response.text}")
        body = response.json()
        rows += len(body["value"])
        link = body.get("@iot.nextLink")
        next_url = None if link is None else f"{urlsplit(link).path}?{urlsplit(link).query}"
    return timings, rows


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run() -> dict[str, Any]:
    server = os.environ.get("FLEET_TEST_POSTGRES_URL", DEFAULT_URL)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    with temporary_database(server) as url, tempfile.TemporaryDirectory() as data_dir:
        ctx = build_context(Settings(environment="test", data_dir=Path(data_dir), database_url=url))
        try:
            began = time.perf_counter()
            _seed(ctx, start)
            load_s = time.perf_counter() - began
            app = create_app(ctx)
            app.state.feed_limiter = RateLimiter(public=Limit(1e6, 1_000_000))
            with TestClient(app) as client:
                timings, rows = _page_through(
                    client, f"/sta/v1.1/Datastreams(1)/Observations?$top={PAGE}"
                )
                ordered, _ = _page_through(
                    client,
                    f"/sta/v1.1/Datastreams(1)/Observations?$top={PAGE}"
                    "&$orderby=phenomenonTime desc&$filter=result gt 25",
                )
            began = time.perf_counter()
            exported = (
                sum(
                    piece.count("\n")
                    for piece in export_csv(
                        ctx.sessions,
                        audience=Audience(),
                        borough_code="bench",
                        start=start,
                        end=start + timedelta(days=366),
                    )
                )
                - 1
            )
            export_s = time.perf_counter() - began
            with ctx.engine.connect() as conn:
                version = conn.execute(text("show server_version")).scalar()
        finally:
            ctx.close()
    return {
        "readings_in_table": DEVICES * len(METRICS) * SAMPLES,
        "load_s": round(load_s, 1),
        "datastream_rows": rows,
        "pages": len(timings),
        "page_p50_ms": round(statistics.median(timings) * 1000, 1),
        "page_p95_ms": round(_percentile(timings, 0.95) * 1000, 1),
        "first_page_ms": round(timings[0] * 1000, 1),
        "last_page_ms": round(timings[-1] * 1000, 1),
        "filtered_desc_p50_ms": round(statistics.median(ordered) * 1000, 1),
        "filtered_desc_p95_ms": round(_percentile(ordered, 0.95) * 1000, 1),
        "export_rows": exported,
        "export_rows_per_s": round(exported / export_s),
        "postgres": str(version),
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
