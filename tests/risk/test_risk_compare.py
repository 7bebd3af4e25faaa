from datetime import UTC, datetime, timedelta

from fleet.risk.compare import HourPoint, Verdict, compare

WORKS = datetime(2025, 11, 20, tzinfo=UTC)


def hours(start: datetime, n: int, rh: float, srh: float, m0: float, dm: float) -> list[HourPoint]:
    return [HourPoint(start + timedelta(hours=i), rh, srh, m0 + dm * i) for i in range(n)]


def test_improvement_over_equal_windows() -> None:
    before = hours(WORKS - timedelta(days=7), 24 * 7, 78.0, 88.0, 0.2, 0.001)
    after = hours(WORKS, 24 * 5, 50.0, 65.0, 0.368, -0.0005)
    result = compare([before + after], WORKS, data_until=WORKS + timedelta(days=5))
    assert result.window == timedelta(days=5)  # limited by the data after the works
    assert result.before.start == WORKS - timedelta(days=5)
    assert result.verdict is Verdict.IMPROVED
    assert result.before.share_at_risk == 1.0 and result.after.share_at_risk == 0.0
    assert result.after.coverage == 1.0


def test_worse_no_change_and_insufficient() -> None:
    dry = hours(WORKS - timedelta(days=3), 72, 50.0, 60.0, 0.0, 0.0)
    wet = hours(WORKS, 72, 80.0, 90.0, 0.0, 0.0)
    until = WORKS + timedelta(days=3)
    assert compare([dry + wet], WORKS, data_until=until).verdict is Verdict.WORSE
    same = hours(WORKS, 72, 50.0, 60.0, 0.0, 0.0)
    assert compare([dry + same], WORKS, data_until=until).verdict is Verdict.NO_CLEAR_CHANGE
    short = compare([dry], WORKS, data_until=WORKS + timedelta(hours=5))
    assert short.verdict is Verdict.INSUFFICIENT_DATA and "24 h" in short.reasons[0]
    sparse = compare([dry + same[:10]], WORKS, data_until=until)
    assert sparse.verdict is Verdict.INSUFFICIENT_DATA and "after" in sparse.reasons[0]
