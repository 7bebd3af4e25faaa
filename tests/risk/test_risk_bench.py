from fleet.risk import bench


def test_bench_returns_numbers() -> None:
    result = bench.run(placements=2, hours=48)
    assert result["readings"] == 96
    for key in ("incremental_us_per_reading", "bulk_readings_per_s"):
        assert result[key] > 0
    # Both paths see the same episodes; incremental counts only those already closed.
    assert result["violations"] >= result["violations_closed_incrementally"]
