"""Throughput of the risk computations, as numbers (``fleet bench risk``).

Two costs matter for the fleet: the live path, where each new hourly reading of each
placement steps the VTT index and folds the sample into the rule states, and the bulk path,
where a placement's history is recomputed (after a late reading, or a rule change). Synthetic
data is generated before timing starts, so only the computation is measured.
"""

from __future__ import annotations

import math
import random
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from fleet.risk import rules, vtt
from fleet.risk.psychro import surface_rh

_T0 = datetime(2025, 1, 6, tzinfo=UTC)


def _series(rng: random.Random, hours: int) -> list[tuple[datetime, float, float, float]]:
    """Hourly (timestamp, air T, air RH, surface RH) for one damp-prone room."""
    base_rh = rng.uniform(55.0, 80.0)
    out = []
    for h in range(hours):
        daily = math.sin(2.0 * math.pi * (h % 24) / 24.0)
        t_air = 18.0 + 2.0 * daily + rng.gauss(0.0, 0.3)
        rh = min(max(base_rh + 8.0 * daily + rng.gauss(0.0, 3.0), 1.0), 100.0)
        t_surf = t_air - rng.uniform(3.0, 6.0)
        out.append((_T0 + timedelta(hours=h), t_air, rh, surface_rh(t_air, rh, t_surf)))
    return out


def run(placements: int, hours: int, *, seed: int = 1) -> dict[str, Any]:
    """Measure incremental per-reading cost and bulk recompute throughput.

    One reading is an hourly air temperature and RH with its derived surface RH: one VTT
    step plus one room-RH and one surface-RH update of the placement's rule monitor (all
    default rules). The bulk path runs :func:`vtt.run_series` and :func:`rules.evaluate_all`
    over each placement's whole history.

    Returns ``readings``, ``incremental_seconds``, ``incremental_us_per_reading``,
    ``incremental_readings_per_s``, ``bulk_seconds``, ``bulk_readings_per_s`` and
    ``violations`` (found by the bulk path; equal to the incremental count by design).
    """
    if placements <= 0 or hours <= 0:
        raise ValueError("placements and hours must be positive")
    rng = random.Random(seed)
    data = [_series(rng, hours) for _ in range(placements)]
    rule_set = rules.default_rules()
    room, surface = rules.Quantity.ROOM_RH, rules.Quantity.SURFACE_RH

    monitors = [rules.Monitor(rule_set) for _ in range(placements)]
    states = [vtt.MouldState() for _ in range(placements)]
    closed = 0
    start = time.perf_counter()
    for i, series in enumerate(data):
        monitor, state = monitors[i], states[i]
        for ts, t_air, rh, s_rh in series:
            state = vtt.step(state, t_air, s_rh)
            closed += len(monitor.update(room, ts, rh))
            closed += len(monitor.update(surface, ts, s_rh))
        states[i] = state
    incremental = time.perf_counter() - start

    found = 0
    start = time.perf_counter()
    for series in data:
        vtt.run_series((t_air, s_rh) for _, t_air, _, s_rh in series)
        found += len(
            rules.evaluate_all(
                rule_set,
                {
                    room: [(ts, rh) for ts, _, rh, _ in series],
                    surface: [(ts, s_rh) for ts, _, _, s_rh in series],
                },
            )
        )
    bulk = time.perf_counter() - start

    readings = placements * hours
    return {
        "placements": placements,
        "hours": hours,
        "readings": readings,
        "incremental_seconds": incremental,
        "incremental_us_per_reading": incremental / readings * 1e6,
        "incremental_readings_per_s": readings / incremental if incremental else math.inf,
        "bulk_seconds": bulk,
        "bulk_readings_per_s": readings / bulk if bulk else math.inf,
        "violations": found,
        "violations_closed_incrementally": closed,
    }
