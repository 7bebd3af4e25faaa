from fleet.risk import bench
from fleet.risk.service import bench as db_bench


def test_bench_returns_numbers() -> None:
    result = bench.run(placements=2, hours=48)
    assert result["readings"] == 96
    for key in ("incremental_us_per_reading", "bulk_readings_per_s"):
        assert result[key] > 0
    # Both paths see the same episodes; incremental counts only those already closed.
    assert result["violations"] >= result["violations_closed_incrementally"]


def test_db_bench_compares_batched_with_one_by_one() -> None:
    result = db_bench.run(placements=6, days=1, rounds=1)
    assert result["db"] == "sqlite"
    assert result["db_bulk_hours"] == 6 * 24
    assert result["db_incremental_readings"] == 6 * 4 * 3
    for key in ("db_incremental_ms_per_reading", "db_one_by_one_ms_per_reading"):
        assert result[key] > 0
    # Statement counts, unlike times, do not depend on the machine: batching must cut them.
    batched = result["db_incremental_statements_per_placement_hour"]
    assert batched * 3 < result["db_one_by_one_statements_per_placement_hour"]
