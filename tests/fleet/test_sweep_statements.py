"""The health sweep costs a bounded number of SQL statements per pass, whatever the number of
devices, with the same states and alerts as before; a lock conflict retries only its batch."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import psycopg.errors
from sqlalchemy import delete, event, select, update

from fleet.core.context import FleetContext
from fleet.health.sweep import sweep
from fleet.ingest.handler import IngestHandler
from fleet.models import Alert, Device, HealthSnapshot, Reading, StateChange
from fleet.models.base import utcnow

KINDS = 6  # device i behaves as kind i % KINDS

# Per kind: the state the sweep derives and the alerts then live.
EXPECTED: dict[int, tuple[str, set[str]]] = {
    0: ("online", set()),
    1: ("offline", {"offline"}),
    2: ("online", {"battery_low", "battery_draining"}),
    3: ("online", {"reboot_loop"}),
    4: ("online", {"queue_evicting", "sensor_fault"}),
    5: ("online", set()),  # its offline alert from before resolves
}


def prepare(ctx: FleetContext, n: int) -> None:
    """`n` devices of every kind, their history, and no sweep done yet."""
    now = utcnow()
    with ctx.sessions.begin() as s:
        for model in (Alert, StateChange, Reading, HealthSnapshot):
            s.execute(delete(model))
        have = set(s.scalars(select(Device.device_id)))
        s.add_all(
            Device(device_id=f"cs-sweep-{i:04d}")
            for i in range(n)
            if f"cs-sweep-{i:04d}" not in have
        )
        s.flush()
        rows = s.execute(select(Device.id, Device.device_id).order_by(Device.id)).all()
        for pk, device_id in rows:
            kind = int(device_id.rsplit("-", 1)[1]) % KINDS
            s.execute(update(Device).where(Device.id == pk).values(**_columns(kind, now)))
            s.add_all(_history(kind, pk, now))


def _columns(kind: int, now: datetime) -> dict[str, Any]:
    values: dict[str, Any] = {
        "state": "unknown",
        "state_at": None,
        "status": "online",
        "last_seen_at": now - timedelta(seconds=60),
        "health": {"uptime": 10_000},
        "latest": None,
    }
    if kind == 1:
        values["last_seen_at"] = now - timedelta(hours=5)
    elif kind == 2:
        values["latest"] = {"battery": {"v": 15.0, "u": "%EL", "t": now.timestamp()}}
    elif kind == 3:
        values["health"] = {"uptime": 20}
    elif kind == 4:
        values["health"] = {"uptime": 10_000, "evicted": 12, "sensor_faults": "sht4x:crc"}
    return values


def _history(kind: int, pk: int, now: datetime) -> list[Any]:
    if kind == 2:  # 5 %/day down to 15 %: empty in 3 days
        return [
            Reading(
                device_pk=pk,
                metric="battery",
                ts=now - timedelta(days=5 - day),
                value=40.0 - 5 * day,
                unit="%EL",
            )
            for day in range(6)
        ]
    if kind == 3:  # four restarts within the hour
        uptimes = [50, 10, 60, 12, 70, 15, 80, 20]
        return [
            _snapshot(pk, now - timedelta(minutes=40 - i), {"uptime": up})
            for i, up in enumerate(uptimes)
        ]
    if kind == 4:  # 10 readings evicted within the day
        return [
            _snapshot(pk, now - timedelta(hours=20), {"uptime": 9_000, "evicted": 2}),
            _snapshot(pk, now - timedelta(minutes=5), {"uptime": 10_000, "evicted": 12}),
        ]
    if kind == 5:
        return [
            Alert(
                device_pk=pk,
                rule="offline",
                severity="critical",
                state="open",
                message="offline for 5.0 h",
                opened_at=now - timedelta(hours=1),
                last_seen_at=now - timedelta(minutes=1),
            )
        ]
    return []


def _snapshot(pk: int, at: datetime, data: dict[str, Any]) -> HealthSnapshot:
    return HealthSnapshot(device_pk=pk, at=at, sampled_at=at, data=data)


@contextmanager
def counting(ctx: FleetContext) -> Iterator[list[str]]:
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(ctx.engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(ctx.engine, "before_cursor_execute", count)


def outcome(ctx: FleetContext) -> dict[int, tuple[str, set[str]]]:
    """Per kind, the one state and live alerts every device of that kind ended with."""
    with ctx.sessions() as s:
        live: dict[int, set[str]] = {}
        for pk, rule in s.execute(
            select(Alert.device_pk, Alert.rule).where(Alert.state.in_(("open", "acknowledged")))
        ):
            live.setdefault(pk, set()).add(rule)
        seen: dict[int, set[tuple[str, frozenset[str]]]] = {}
        for pk, device_id, state in s.execute(select(Device.id, Device.device_id, Device.state)):
            kind = int(device_id.rsplit("-", 1)[1]) % KINDS
            seen.setdefault(kind, set()).add((state, frozenset(live.get(pk, set()))))
    assert all(len(v) == 1 for v in seen.values()), seen  # every device of a kind alike
    return {kind: (state, set(rules)) for kind, ((state, rules),) in seen.items()}


def check_details(ctx: FleetContext, n: int) -> None:
    with ctx.sessions() as s:
        by_rule = {a.rule: a for a in s.scalars(select(Alert))}
        resolved = s.scalars(select(Alert).where(Alert.state == "resolved")).all()
        changes = s.scalars(select(StateChange)).all()
    assert by_rule["queue_evicting"].message == (
        "store-and-forward queue evicted 10 readings in 24 h"
    )
    assert by_rule["reboot_loop"].detail == {"reboots": 4, "reset_cause": None}
    assert by_rule["battery_draining"].detail == {"days_left": 3.0}
    assert len(resolved) == n // KINDS  # kind 5's offline alerts
    assert {a.resolved_by for a in resolved} == {"system: condition cleared"}
    # One recorded change per device, out of "unknown".
    assert len(changes) == n and {c.from_state for c in changes} == {"unknown"}


def test_statements_per_pass_do_not_grow_with_devices(fleet_ctx: FleetContext) -> None:
    counts: dict[int, tuple[int, int]] = {}
    for n in (48, 192):
        prepare(fleet_ctx, n)
        with counting(fleet_ctx) as first:
            result = sweep(fleet_ctx.sessions)
        assert result.devices == n and result.state_changes == n
        assert result.alerts_opened == 6 * n // KINDS
        assert outcome(fleet_ctx) == EXPECTED
        check_details(fleet_ctx, n)
        between = utcnow()
        with counting(fleet_ctx) as second:  # nothing new: alerts refreshed, none opened
            again = sweep(fleet_ctx.sessions)
        assert again.state_changes == 0 and again.alerts_opened == 0
        with fleet_ctx.sessions() as s:
            seen = s.scalars(select(Alert.last_seen_at).where(Alert.state == "open")).all()
        assert len(seen) == n and min(seen) >= between
        assert outcome(fleet_ctx) == EXPECTED
        counts[n] = (len(first), len(second))
    assert counts[48] == counts[192], counts
    assert max(counts[192]) <= 15, counts


def test_statements_grow_with_batches_not_devices(fleet_ctx: FleetContext) -> None:
    prepare(fleet_ctx, 96)
    with counting(fleet_ctx) as statements:
        sweep(fleet_ctx.sessions, batch=32)
    assert outcome(fleet_ctx) == EXPECTED
    assert len(statements) <= 2 + 3 * 12, len(statements)


def test_a_deadlocked_batch_is_retried_and_the_pass_goes_on(fleet_ctx: FleetContext) -> None:
    prepare(fleet_ctx, 96)
    postgres = fleet_ctx.engine.dialect.name == "postgresql"
    writes: list[str] = []

    def deadlock_once(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        # The second batch of three loses a deadlock once, as it writes its state changes
        # (the error each driver raises for it).
        if statement.startswith("INSERT INTO device_state_changes"):
            writes.append(statement)
            if len(writes) == 2:
                if postgres:
                    raise psycopg.errors.DeadlockDetected("deadlock detected")
                raise sqlite3.OperationalError("database is locked")

    event.listen(fleet_ctx.engine, "before_cursor_execute", deadlock_once)
    try:
        result = sweep(fleet_ctx.sessions, batch=32)
    finally:
        event.remove(fleet_ctx.engine, "before_cursor_execute", deadlock_once)
    assert len(writes) == 4  # three batches, the second twice
    assert result.devices == 96 and result.state_changes == 96 and result.devices_skipped == 0
    assert outcome(fleet_ctx) == EXPECTED
    check_details(fleet_ctx, 96)


def test_a_device_the_ingest_just_heard_from_is_not_marked_offline(
    fleet_ctx: FleetContext,
) -> None:
    """The sweep reads without locks; if the ingest hears from a device before the sweep
    locks the rows it writes, the sweep leaves that device to the next pass rather than
    writing its stale "offline" over the ingest's "online"."""
    prepare(fleet_ctx, KINDS)  # cs-sweep-0001 has been silent for 5 h
    handler = IngestHandler(fleet_ctx.sessions)
    reads: list[str] = []

    def ingest_in_between(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        # Right after the sweep has read its batch of devices.
        if "FROM devices" in statement and "WHERE devices.id IN" in statement:
            reads.append(statement)
            if len(reads) == 1:
                stored = handler.handle(
                    "cs/v1/d/cs-sweep-0001/status", b'{"sv":1,"state":"online"}'
                )
                assert stored.action == "stored"

    event.listen(fleet_ctx.engine, "after_cursor_execute", ingest_in_between)
    try:
        result = sweep(fleet_ctx.sessions)
    finally:
        event.remove(fleet_ctx.engine, "after_cursor_execute", ingest_in_between)
    assert reads
    assert result.devices == KINDS and result.state_changes == KINDS - 1
    with fleet_ctx.sessions() as s:
        device = s.scalars(select(Device).where(Device.device_id == "cs-sweep-0001")).one()
        changes = s.execute(
            select(StateChange.from_state, StateChange.to_state).where(
                StateChange.device_pk == device.id
            )
        ).all()
        rules = set(s.scalars(select(Alert.rule).where(Alert.device_pk == device.id)))
    assert device.state == "online"
    assert [tuple(c) for c in changes] == [("unknown", "online")]  # the ingest's, alone
    assert rules == set()
    sweep(fleet_ctx.sessions)
    assert outcome(fleet_ctx)[1] == ("online", set())
