"""`fleet bench risk`: the risk engine's bulk and incremental cost, pure and on a database.

- Pure computation (``fleet.risk.bench``): VTT steps and rule updates for placements with a
  year of hourly data each, incremental (one reading at a time) and bulk (whole series).
- Database path (``fleet.risk.service.bench``): the real risk update over stored readings,
  first computing each placement's history, then one new hour per placement at a time,
  alternating the batched update with the one-property-at-a-time one.

The goal size (10,000 placements x one year of hourly data = 87.6 M placement-hours) takes
minutes; by default a slice is measured and the full size projected linearly (placements are
independent). Environment: FLEET_BENCH_RISK_PLACEMENTS (pure, default 200),
FLEET_BENCH_RISK_DB_PLACEMENTS (default 100), FLEET_BENCH_RISK_DB_DAYS (default 30),
FLEET_BENCH_RISK_DB_URL (default a temporary SQLite file; a PostgreSQL URL names the server,
on which a temporary database is created and dropped).
"""

from __future__ import annotations

import os
from typing import Any

from fleet.risk import bench
from fleet.risk.service import bench as db_bench

GOAL_PLACEMENTS = 10_000
HOURS_PER_YEAR = 8760


def run() -> dict[str, Any]:
    placements = int(os.environ.get("FLEET_BENCH_RISK_PLACEMENTS", "200"))
    figures = bench.run(placements=placements, hours=HOURS_PER_YEAR)
    goal = GOAL_PLACEMENTS * HOURS_PER_YEAR
    per_s = figures.get("bulk_readings_per_s")
    if isinstance(per_s, int | float) and per_s > 0:
        figures["projected_full_recompute_s"] = round(goal / per_s, 1)
    figures["measured_placements"] = placements
    db = db_bench.run(
        placements=int(os.environ.get("FLEET_BENCH_RISK_DB_PLACEMENTS", "100")),
        days=int(os.environ.get("FLEET_BENCH_RISK_DB_DAYS", "30")),
        url=os.environ.get("FLEET_BENCH_RISK_DB_URL") or None,
    )
    figures.update(db)
    rate = db["db_bulk_hours_per_s"]
    if isinstance(rate, int | float) and rate > 0:
        figures["db_projected_full_recompute_s"] = round(goal / rate, 0)
    return figures
