"""`fleet bench dashboard`: overview and device table at 10,000 devices; a year of chart data.

Runs against PostgreSQL (FLEET_BENCH_POSTGRES_URL, default the local `test` server) in a
temporary database that is dropped afterwards. Times are server round trips in-process
(request in, HTML or JSON out), measured over repeated requests.
"""

from __future__ import annotations

import os
import platform
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import create_engine, insert, select, text

from fleet.access import accounts
from fleet.access.roles import Role
from fleet.api.app import create_app
from fleet.api.deps import SESSION_COOKIE
from fleet.core.context import build_context
from fleet.core.settings import Settings
from fleet.models import Borough, Device, Reading, User

DEVICES = 10_000
BOROUGHS = 10
REPEAT = 30
YEAR_OF_15_MIN = 365 * 96
STATES = ("online", "online", "online", "sleeping", "late", "offline")


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _time(fn: Callable[[], Any]) -> dict[str, float]:
    fn()  # warm caches and the connection pool
    samples = []
    for _ in range(REPEAT):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return {"p50_ms": round(statistics.median(samples), 1), "p95_ms": round(_pct(samples, 0.95), 1)}


def _seed(ctx: Any) -> tuple[str, str]:
    rng = random.Random(7)
    now = datetime.now(UTC)
    with ctx.sessions.begin() as s:
        s.execute(
            insert(Borough),
            [{"code": f"b{i:02d}", "name": f"Borough {i}"} for i in range(BOROUGHS)],
        )
        ids = list(s.scalars(select(Borough.id)))
        rows = []
        for i in range(DEVICES):
            seen = now - timedelta(seconds=rng.randint(0, 7200))
            rows.append(
                {
                    "device_id": f"cs-bench-{i:05d}",
                    "name": f"Flat {i}",
                    "board": "devkitc-sht41",
                    "borough_id": ids[i % BOROUGHS],
                    "state": rng.choice(STATES),
                    "status": "online",
                    "last_seen_at": seen,
                    "fw_version": "0.1.0",
                    "latest": {
                        "temperature": {
                            "v": 19 + rng.random() * 4,
                            "u": "Cel",
                            "t": seen.timestamp(),
                        },
                        "humidity": {
                            "v": 45 + rng.random() * 30,
                            "u": "%RH",
                            "t": seen.timestamp(),
                        },
                    },
                    "created_at": now,
                }
            )
        s.execute(insert(Device), rows)
        device = s.scalars(select(Device).where(Device.current("cs-bench-00042"))).one()
        start = now - timedelta(days=365)
        readings = []
        for k in range(YEAR_OF_15_MIN):
            ts = start + timedelta(minutes=15 * k)
            readings.append(
                {
                    "device_pk": device.id,
                    "metric": "temperature",
                    "ts": ts,
                    "value": 19 + rng.random() * 3,
                    "unit": "Cel",
                    "received_at": ts,
                }
            )
            readings.append(
                {
                    "device_pk": device.id,
                    "metric": "humidity",
                    "ts": ts,
                    "value": 50 + rng.random() * 30,
                    "unit": "%RH",
                    "received_at": ts,
                }
            )
        s.execute(insert(Reading), readings)
        user = accounts.create_user(
            s, email="bench@example.org", name="Bench", role=Role.ADMIN, password="bench-password-1"
        )
        token, _ = accounts.start_login_session(s, s.get(User, user.id) or user)
    return token, "cs-bench-00042"


def run() -> dict[str, Any]:
    admin_url = os.environ.get(
        "FLEET_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    )
    name = f"fleet_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = admin_url.rsplit("/", 1)[0] + "/" + name
    try:
        with tempfile.TemporaryDirectory() as tmp:
            ctx = build_context(Settings(environment="test", data_dir=Path(tmp), database_url=url))
            try:
                seed_start = time.perf_counter()
                cookie, chart_device = _seed(ctx)
                seeded_s = time.perf_counter() - seed_start
                client = TestClient(create_app(ctx), cookies={SESSION_COOKIE: cookie})
                year_ago = (datetime.now(UTC) - timedelta(days=365)).isoformat()

                def get(path: str, **params: str) -> Callable[[], Any]:
                    def call() -> None:
                        r = client.get(path, params=params)
                        if r.status_code != 200:
                            raise RuntimeError(f"{path} answered {r.status_code}: {r.text[:200]}")

                    return call

                figures: dict[str, Any] = {
                    "devices": DEVICES,
                    "readings_for_chart_device": 2 * YEAR_OF_15_MIN,
                    "seed_s": round(seeded_s, 1),
                }
                cases = {
                    "overview": get("/"),
                    "overview_filtered": get("/", state="online", sort="-last_seen_at", page="20"),
                    "overview_search": get("/", q="bench-0042"),
                    "device_table_api": get("/api/v1/devices", limit="50", offset="5000"),
                    "chart_year_api": get(
                        f"/api/v1/devices/{chart_device}/series",
                        metric="humidity",
                        since=year_ago,
                    ),
                    "device_page_year": get(f"/devices/{chart_device}", range="1y"),
                }
                for label, fn in cases.items():
                    for key, value in _time(fn).items():
                        figures[f"{label}_{key}"] = value
                figures["goal_overview_p95_ms"] = 300
                figures["goal_chart_p95_ms"] = 200
                figures["python"] = platform.python_version()
                figures["cpus"] = os.cpu_count()
                return figures
            finally:
                ctx.close()
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
