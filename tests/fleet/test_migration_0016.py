"""Revision 0016: redelivered rejects are found by index, and on PostgreSQL a device chart
reads the readings' key alone; both come off again on downgrade."""

from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import Connection, inspect, text

from fleet.core.db import alembic_config, make_engine

REJECT_INDEX = "ix_rejected_messages_topic_received_at"
CHART = (
    "SELECT avg(value), min(value), max(value) FROM readings "
    "WHERE device_pk = 1 AND metric = 'humidity' AND ts >= now() - interval '365 days'"
)
DEDUP = (
    "SELECT topic, reason, detail, payload_size, payload_excerpt FROM rejected_messages "
    "WHERE received_at >= now() - interval '7 days' AND topic IN ('cs/v1/d/cs-a/up')"
)


def reject_indexes(conn: Connection) -> set[str]:
    return {str(i["name"]) for i in inspect(conn).get_indexes("rejected_messages")}


def plan(conn: Connection, sql: str) -> str:
    # A handful of rows would be read sequentially whatever the indexes: ask what the
    # indexes can do, as on a table of millions.
    conn.execute(text("SET LOCAL enable_seqscan = off"))
    conn.execute(text("SET LOCAL enable_bitmapscan = off"))
    return "\n".join(str(r[0]) for r in conn.execute(text(f"EXPLAIN {sql}")))


def test_indexes_go_on_and_come_off(empty_database_url: str) -> None:
    engine = make_engine(empty_database_url)
    cfg = alembic_config(empty_database_url)
    try:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "0015")
            assert REJECT_INDEX not in reject_indexes(conn)
            command.upgrade(cfg, "0016")
            assert REJECT_INDEX in reject_indexes(conn)
            if conn.dialect.name == "postgresql":
                key = conn.execute(
                    text(
                        "select pg_get_constraintdef(oid) from pg_constraint "
                        "where conname = 'uq_readings_sample'"
                    )
                ).scalar()
                assert key == "UNIQUE (device_pk, metric, ts) INCLUDE (value)"
                assert "Index Only Scan using uq_readings_sample" in plan(conn, CHART)
                assert REJECT_INDEX in plan(conn, DEDUP)
            command.downgrade(cfg, "0015")
            assert REJECT_INDEX not in reject_indexes(conn)
            if conn.dialect.name == "postgresql":
                key = conn.execute(
                    text(
                        "select pg_get_constraintdef(oid) from pg_constraint "
                        "where conname = 'uq_readings_sample'"
                    )
                ).scalar()
                assert key == "UNIQUE (device_pk, metric, ts)"
            command.downgrade(cfg, "base")
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_a_redelivered_sample_still_meets_the_key(empty_postgres_url: str) -> None:
    """The ingest names the key in ON CONFLICT and in its duplicate check: it keeps its name."""
    engine = make_engine(empty_postgres_url)
    cfg = alembic_config(empty_postgres_url)
    try:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
            row = (
                "INSERT INTO readings (device_pk, metric, ts, value, unit, received_at) "
                "VALUES (1, 'humidity', now(), {v}, '%RH', now()) "
                "ON CONFLICT ON CONSTRAINT uq_readings_sample DO NOTHING"
            )
            assert conn.execute(text(row.format(v=55.0))).rowcount == 1
            assert conn.execute(text(row.format(v=56.0))).rowcount == 0
            assert conn.execute(text("select value from readings")).scalar() == 55.0
            conn.execute(text("DELETE FROM readings"))
            command.downgrade(cfg, "base")
    finally:
        engine.dispose()
