"""Persist a batch of device messages with a handful of statements, whatever the batch size.

Readings go in with one idempotent bulk insert (a binary COPY into a temporary table and one
`INSERT ... SELECT` of the samples not yet stored on PostgreSQL; a multi-row insert
elsewhere), devices are
updated once per batch with one executemany per column set, and health snapshots, state
changes and rejects are multi-row inserts in the same transaction.
"""

from __future__ import annotations

import struct
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, Table, bindparam, event, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from fleet.models import Device, HealthSnapshot, Reading, RejectedMessage, StateChange

PAYLOAD_EXCERPT_BYTES = 512

_DEVICES: Table = Device.__table__  # type: ignore[assignment]

# PostgreSQL element types of the device columns the ingest writes.
_PG_COLUMN_TYPES = {
    "last_seen_at": "timestamptz",
    "latest": "json",
    "latest_at": "timestamptz",
    "health": "json",
    "health_at": "timestamptz",
    "fw_version": "text",
    "status": "text",
    "status_at": "timestamptz",
    "state": "text",
    "state_at": "timestamptz",
}

# Per-connection staging table for COPY; emptied by every commit so it never grows. Sample
# times are staged as UTC seconds and turned into timestamps by PostgreSQL, which spares the
# ingest a datetime and its text form per reading. to_timestamp agrees with Python's
# datetime.fromtimestamp for whole seconds and milliseconds (what devices send); a time with
# sub-microsecond digits can round the other way, and always the same way, so a redelivery
# still finds it.
_STAGE = "ingest_readings_stage"
SAMPLE_KEY = "uq_readings_sample"  # one row per (device, metric, time)
_STAGE_DDL = (
    f"CREATE TEMP TABLE IF NOT EXISTS {_STAGE} ("
    "device_pk integer, metric varchar(32), t double precision, value double precision, "
    "unit varchar(16), seq integer) ON COMMIT DELETE ROWS"
)
# Readings are written only by the ingest, and only under their device's row lock (see
# load_devices), so looking for a stored sample and then inserting it cannot race with another
# ingest writer. A plain insert of what the lookup did not find skips the speculative
# insertion that ON CONFLICT makes per row (an extra index probe and WAL record): about a
# third of the insert's database time. The LATERAL ... LIMIT 1 keeps the lookup an index probe
# per staged row whatever the planner thinks of the unanalysed staging table, and DISTINCT ON
# keeps two staged times that round to the same microsecond from colliding with each other.
_STAGE_INSERT = (
    "INSERT INTO readings (device_pk, metric, ts, value, unit, received_at) "
    "SELECT DISTINCT ON (s.device_pk, s.metric, to_timestamp(s.t)) "
    "s.device_pk, s.metric, to_timestamp(s.t), s.value, s.unit, %s::timestamptz "
    f"FROM {_STAGE} s LEFT JOIN LATERAL (SELECT 1 AS hit FROM readings r "
    "WHERE r.device_pk = s.device_pk AND r.metric = s.metric AND r.ts = to_timestamp(s.t) "
    "LIMIT 1) stored ON true WHERE stored.hit IS NULL"
)
# For a batch whose plain insert collided with a sample stored meanwhile by a writer that does
# not take the row lock (a manual backfill, say): see IngestHandler.store.
_STAGE_INSERT_TOLERANT = (
    "INSERT INTO readings (device_pk, metric, ts, value, unit, received_at) "
    f"SELECT device_pk, metric, to_timestamp(t), value, unit, %s::timestamptz FROM {_STAGE} "
    f"ON CONFLICT ON CONSTRAINT {SAMPLE_KEY} DO NOTHING"
)
# Only after a conflict: the staged rows this transaction stored (their xmin is its id), per
# message. txid_current() is the 64-bit id; xmin holds its low 32 bits.
_STAGE_ADDED = (
    f"SELECT s.seq, count(*) FROM {_STAGE} s JOIN readings r ON r.device_pk = s.device_pk "
    "AND r.metric = s.metric AND r.ts = to_timestamp(s.t) "
    "WHERE r.xmin::text::bigint = txid_current() % 4294967296 GROUP BY s.seq"
)


@dataclass(slots=True)
class DeviceRow:
    """The columns of a device the ingest reads and writes; plain data, no ORM identity map."""

    pk: int
    device_id: str
    power_mode: str
    report_interval_s: int
    status: str
    state: str
    last_seen_at: datetime | None
    latest: dict[str, Any] | None
    latest_at: datetime | None
    placement_id: int | None


# A batch's readings: what identifies a sample, (device_pk, metric, UTC seconds), to what it
# carries, (value, unit, seq), seq being the index of its message in the batch (to count what
# each message added). Plain tuples: made per reading, they cost a fraction of an object.
SampleKey = tuple[int, str, float]
SampleData = tuple[float, str, int]
Readings = Mapping[SampleKey, SampleData]


def load_devices(session: Session, device_ids: Iterable[str]) -> dict[str, DeviceRow]:
    """The batch's devices in one query, row-locked on PostgreSQL.

    Locking in primary-key order serialises concurrent workers that touch the same device
    (read-modify-write of the device row) without deadlocks between them.
    """
    ids = sorted(set(device_ids))
    if not ids:
        return {}
    if session.get_bind().dialect.name == "postgresql":
        return _load_devices_pg(session.connection(), ids)
    stmt = (
        select(
            Device.id,
            Device.device_id,
            Device.power_mode,
            Device.report_interval_s,
            Device.status,
            Device.state,
            Device.last_seen_at,
            Device.latest,
            Device.latest_at,
            Device.placement_id,
        )
        .where(Device.current_among(ids))
        .order_by(Device.id)
    )
    return {row.device_id: DeviceRow(*row) for row in session.execute(stmt)}


def _load_devices_pg(conn: Connection, ids: list[str]) -> dict[str, DeviceRow]:
    # One array parameter instead of an IN list keeps the statement text (and psycopg's
    # parsing of it) the same for every batch. `latest` comes as text for orjson: merged in
    # Python under the row lock, it costs the ingest ~2 µs per device, where merging it in
    # SQL (json_each, a sort, json_object_agg per row) cost PostgreSQL ~20 µs.
    raw: Any = conn.connection.driver_connection
    with raw.cursor() as cur:
        cur.execute(_PG_LOAD, [ids])
        return {
            r[1]: DeviceRow(
                r[0], r[1], r[2], r[3], r[4], r[5], _utc(r[6]), _json(r[7]), _utc(r[8]), r[9]
            )
            for r in cur.fetchall()
        }


_PG_LOAD = (
    "SELECT id, device_id, power_mode, report_interval_s, status, state, last_seen_at, "
    "latest::text, latest_at, placement_id FROM devices WHERE device_id = ANY(%s) "
    "AND retired_at IS NULL ORDER BY id FOR UPDATE"
)


def _json(text: str | None) -> Any:
    return orjson.loads(text) if text is not None else None


def _utc(value: datetime | None) -> datetime | None:
    return value.astimezone(UTC) if value is not None else None


def insert_readings(
    session: Session,
    rows: Readings,
    received_at: datetime,
    *,
    tolerate_conflicts: bool = False,
) -> Counter[int]:
    """Insert readings, skipping stored ones; returns how many rows each message (seq) added.

    On PostgreSQL this relies on holding the devices' row locks; `tolerate_conflicts` also
    skips samples that a writer without them stored meanwhile (slower).
    """
    if not rows:
        return Counter()
    if session.get_bind().dialect.name == "postgresql":
        return _copy_readings(session.connection(), rows, received_at, tolerate_conflicts)
    return _insert_readings(session, rows, received_at)


def is_sample_conflict(exc: BaseException) -> bool:
    """Whether `exc` is a readings insert that met a sample stored by someone else meanwhile."""
    err = getattr(exc, "orig", None) or exc  # SQLAlchemy wraps; the bulk paths raise psycopg's
    diag = getattr(err, "diag", None)
    return getattr(err, "sqlstate", None) == "23505" and (
        diag is not None and diag.constraint_name == SAMPLE_KEY
    )


def _copy_readings(
    conn: Connection, rows: Readings, received_at: datetime, tolerate: bool
) -> Counter[int]:
    # COPY is the cheapest way to move many rows through psycopg (no per-row statement or
    # parameter binding in Python), and its binary form the cheapest to write and to read:
    # a float goes as its 8 bytes instead of a shortest round-trip decimal (about 1 µs to
    # write in Python and a parse on the server), and arrives as exactly the same double.
    raw: Any = conn.connection.driver_connection  # psycopg.Connection for postgresql+psycopg
    data = (
        _COPY_SIGNATURE
        + b"".join(
            _row_packer(metric, unit)(pk, t, value, seq)
            for (pk, metric, t), (value, unit, seq) in rows.items()
        )
        + _COPY_TRAILER
    )
    info = conn.connection.info  # lives as long as this database connection
    with raw.cursor() as cur:
        if _STAGE not in info:  # a round trip per batch saved once the table exists
            cur.execute(_STAGE_DDL)
            info[_STAGE] = True
        with cur.copy(
            f"COPY {_STAGE} (device_pk, metric, t, value, unit, seq) FROM STDIN (FORMAT BINARY)"
        ) as copy:
            copy.write(data)  # raw: the signature and trailer are ours
        cur.execute(_STAGE_INSERT_TOLERANT if tolerate else _STAGE_INSERT, [received_at])
        if cur.rowcount == len(rows):  # the usual case: nothing was stored before
            return Counter(seq for _, _, seq in rows.values())
        # A redelivery: count what each message added, not what it carried.
        cur.execute(_STAGE_ADDED)
        return Counter({int(seq): int(n) for seq, n in cur.fetchall()})


# Binary COPY (PostgreSQL's COPY documentation, "Binary Format"): the signature, 32-bit flags
# and header-extension length, then per row the field count and each field as its 32-bit
# length and bytes (integers and doubles big-endian), and -1 as the trailer.
_COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
_COPY_TRAILER = b"\xff\xff"
_ROW_PACKERS: dict[tuple[str, str], Callable[[int, float, float, int], bytes]] = {}


def _row_packer(metric: str, unit: str) -> Callable[[int, float, float, int], bytes]:
    """Packs one staged row (device_pk, t, value, seq) of a metric and unit."""
    packer = _ROW_PACKERS.get((metric, unit))
    if packer is None:  # a handful at most: metric and unit are the profile's fixed names
        m, u = metric.encode(), unit.encode()
        ml, ul = len(m), len(u)
        layout = struct.Struct(f">hii i{ml}s id id i{ul}s ii")

        def packer(pk: int, t: float, value: float, seq: int) -> bytes:
            return layout.pack(6, 4, pk, ml, m, 8, t, 8, value, ul, u, 4, seq)

        _ROW_PACKERS[(metric, unit)] = packer
    return packer


@event.listens_for(Engine, "rollback")
def _forget_stage(conn: Connection) -> None:
    # The transaction rolled back may be the one that created the staging table. An
    # invalidated connection has no database connection to ask (a new one starts with empty
    # info), and asking it would fail the rollback itself.
    if not conn.invalidated:
        conn.connection.info.pop(_STAGE, None)


def _insert_readings(session: Session, rows: Readings, received_at: datetime) -> Counter[int]:
    stmt = (
        sqlite.insert(Reading).on_conflict_do_nothing()
        if session.get_bind().dialect.name == "sqlite"
        else insert(Reading)
    )
    stamped = [
        (pk, metric, datetime.fromtimestamp(t, UTC), data) for (pk, metric, t), data in rows.items()
    ]
    by_key = {(pk, metric, ts): seq for pk, metric, ts, (_, _, seq) in stamped}
    params = [
        {
            "device_pk": pk,
            "metric": metric,
            "ts": ts,
            "value": value,
            "unit": unit,
            "received_at": received_at,
        }
        for pk, metric, ts, (value, unit, _) in stamped
    ]
    result = session.execute(
        stmt.returning(Reading.device_pk, Reading.metric, Reading.ts, sort_by_parameter_order=True),
        params,
    )
    return Counter(by_key[(pk, metric, ts)] for pk, metric, ts in result)


def update_devices(session: Session, changes: Sequence[dict[str, Any]]) -> None:
    """Write each touched device once: one statement per set of changed columns."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for change in changes:
        groups.setdefault(tuple(sorted(k for k in change if k != "pk")), []).append(change)
    postgres = session.get_bind().dialect.name == "postgresql"
    for columns, params in groups.items():
        if postgres:
            _update_devices_unnest(session.connection(), columns, params)
            continue
        stmt = (
            update(_DEVICES)
            .where(_DEVICES.c.id == bindparam("pk"))
            .values({c: bindparam(c) for c in columns})
        )
        session.execute(stmt.execution_options(synchronize_session=False), params)


def _update_devices_unnest(
    conn: Connection, columns: tuple[str, ...], params: list[dict[str, Any]]
) -> None:
    # One statement of fixed shape whatever the number of devices, its rows passed as one
    # JSON document: no per-row statements, and one orjson call (which writes the aware
    # datetimes as RFC 3339 itself, ~15 times as fast as json.dumps with a default hook)
    # instead of escaping every element of one PostgreSQL array per column.
    sets = ", ".join(f"{c} = u.{c}" for c in columns)
    fields = ", ".join(f"{c} {_PG_COLUMN_TYPES[c]}" for c in columns)
    sql = (
        f"UPDATE devices SET {sets} FROM json_to_recordset(%s::json) "
        f"AS u(pk int, {fields}) WHERE devices.id = u.pk"
    )
    rows = orjson.dumps([{"pk": p["pk"], **{c: p[c] for c in columns}} for p in params]).decode()
    raw: Any = conn.connection.driver_connection
    with raw.cursor() as cur:
        cur.execute(sql, [rows])


def insert_health(session: Session, rows: Sequence[dict[str, Any]]) -> set[int]:
    """Store health snapshots once each; returns the devices that got a new one."""
    if not rows:
        return set()
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    # A snapshot already stored under the same device and sampling time is a redelivery.
    stmt = dialect.insert(HealthSnapshot).on_conflict_do_nothing()
    return set(session.scalars(stmt.returning(HealthSnapshot.device_pk), list(rows)))


def insert_state_changes(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        session.execute(insert(StateChange), list(rows))


def reject_row(
    *,
    topic: str,
    device_id: str | None,
    reason: str,
    detail: str,
    payload: bytes,
    received_at: datetime,
) -> dict[str, Any]:
    return {
        "received_at": received_at,
        "topic": topic[:512],
        "device_id": device_id,
        "reason": reason,
        "detail": detail[:2000],
        "payload_excerpt": payload[:PAYLOAD_EXCERPT_BYTES].decode("utf-8", "backslashreplace"),
        "payload_size": len(payload),
    }


# How far back a redelivered message's reject is looked for: a broker holds a persistent
# session's unacknowledged messages while the ingest is down, for days if need be.
REDELIVERY_WINDOW = timedelta(days=7)


def unrecorded_rejects(session: Session, rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rejects of redelivered messages that are not stored yet. The broker sends a
    message again when the connection that carried it ended before its acknowledgement,
    which the ingest sends only after the commit: the reject may be stored already. A
    stored reject with the same topic, reason, detail, size and payload excerpt within the
    window is that message: payloads carry their readings' times, so a byte-identical one
    is the same message sent again (by the broker, or by a device that never had its ack)."""
    since = min(r["received_at"] for r in rows) - REDELIVERY_WINDOW
    stored = {
        tuple(row)
        for row in session.execute(
            select(
                RejectedMessage.topic,
                RejectedMessage.reason,
                RejectedMessage.detail,
                RejectedMessage.payload_size,
                RejectedMessage.payload_excerpt,
            ).where(
                RejectedMessage.received_at >= since,
                RejectedMessage.topic.in_({r["topic"] for r in rows}),
            )
        )
    }
    fresh = []
    for r in rows:
        key = (r["topic"], r["reason"], r["detail"], r["payload_size"], r["payload_excerpt"])
        if key not in stored:
            stored.add(key)
            fresh.append(r)
    return fresh


def insert_rejects(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        session.execute(insert(RejectedMessage), list(rows))
