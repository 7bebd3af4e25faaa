"""Liveness is judged from the promised report interval, not from connection events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fleet.health.liveness import DEFAULT_POLICY, State, derive_state

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
INTERVAL = 900


def state(power: str, status: str, age_s: float | None) -> State:
    seen = None if age_s is None else NOW - timedelta(seconds=age_s)
    result, reason = derive_state(
        power_mode=power, report_interval_s=INTERVAL, status=status, last_seen_at=seen, now=NOW
    )
    assert reason
    return result


@pytest.mark.parametrize(
    ("power", "status", "age_s", "expected"),
    [
        ("mains", "unknown", None, State.UNKNOWN),
        ("mains", "online", 30, State.ONLINE),
        # Broker connection dropped but the last will has not fired: not online past the interval.
        ("mains", "online", INTERVAL * 1.5 + 61, State.LATE),
        ("mains", "online", INTERVAL * 3 + 61, State.OFFLINE),
        # Last will fired: a mains node is offline at once.
        ("mains", "offline", 30, State.OFFLINE),
        # A battery node between wakes is sleeping, not offline.
        ("battery", "sleeping", INTERVAL, State.SLEEPING),
        ("battery", "sleeping", INTERVAL * 1.5 + 61, State.LATE),
        ("battery", "sleeping", INTERVAL * 3 + 61, State.OFFLINE),
        ("battery", "online", 5, State.ONLINE),
        ("battery", "offline", 60, State.SLEEPING),
    ],
)
def test_state_table(power: str, status: str, age_s: float | None, expected: State) -> None:
    assert state(power, status, age_s) is expected


@given(
    st.sampled_from(["mains", "battery"]),
    st.sampled_from(["online", "sleeping", "offline", "unknown"]),
    st.floats(0, 1e6),
)
def test_never_online_once_overdue(power: str, status: str, age_s: float) -> None:
    result = state(power, status, age_s)
    if age_s > DEFAULT_POLICY.late_after(INTERVAL):
        assert result in (State.LATE, State.OFFLINE)
