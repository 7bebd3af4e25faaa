"""`fleet bench risk`: the risk engine's incremental and bulk cost.

The full goal size (10,000 placements x one year of hourly data = 87.6 M readings) takes
minutes on one core; the default measures a representative slice and states the projection.
Set FLEET_BENCH_RISK_PLACEMENTS to run the full size.
"""

from __future__ import annotations

import os
from typing import Any

from fleet.risk import bench

GOAL_PLACEMENTS = 10_000
HOURS_PER_YEAR = 8760


def run() -> dict[str, Any]:
    placements = int(os.environ.get("FLEET_BENCH_RISK_PLACEMENTS", "200"))
    figures = bench.run(placements=placements, hours=HOURS_PER_YEAR)
    per_s = figures.get("bulk_readings_per_s")
    if isinstance(per_s, int | float) and per_s > 0:
        figures["projected_full_recompute_s"] = round(GOAL_PLACEMENTS * HOURS_PER_YEAR / per_s, 1)
    figures["measured_placements"] = placements
    return figures
