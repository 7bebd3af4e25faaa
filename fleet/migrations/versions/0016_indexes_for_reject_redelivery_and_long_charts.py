"""Indexes for redelivered rejects and long-range device charts

Storing a redelivered bad message first looks for its reject among the last week's by topic:
without an index on ``rejected_messages (topic, received_at)`` that read every reject of the
week inside the ingest transaction (about 0.8 s with a million rejects; 29 ms with it).

A device chart over 30 days or a year averages one metric of one device per bucket. The
readings of many devices arrive interleaved, so each matching row was on its own heap page
(14,500 page reads for 34,000 readings of a year). On PostgreSQL the unique key
``uq_readings_sample (device_pk, metric, ts)`` now also carries ``value`` (INCLUDE): the chart
reads the index alone (about 210 pages), and the ingest still maintains one index, not two.
The key is rebuilt once, which blocks writes to readings while it is built (about 30 s per
5 million readings); SQLite keeps its key as it is.

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-25 03:10:00.000000
"""

from alembic import op


revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

_SAMPLE_KEY = "uq_readings_sample"
_REJECT_INDEX = "ix_rejected_messages_topic_received_at"


def _rebuild_sample_key(include: str) -> None:
    # Build the new index first and swap it in, so the key is never missing; PostgreSQL
    # renames the index to the constraint's name.
    op.execute(
        f"CREATE UNIQUE INDEX {_SAMPLE_KEY}_new ON readings (device_pk, metric, ts){include}"
    )
    op.execute(
        f"ALTER TABLE readings DROP CONSTRAINT {_SAMPLE_KEY}, "
        f"ADD CONSTRAINT {_SAMPLE_KEY} UNIQUE USING INDEX {_SAMPLE_KEY}_new"
    )


def upgrade() -> None:
    op.create_index(_REJECT_INDEX, "rejected_messages", ["topic", "received_at"])
    if op.get_bind().dialect.name == "postgresql":
        _rebuild_sample_key(" INCLUDE (value)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _rebuild_sample_key("")
    op.drop_index(_REJECT_INDEX, table_name="rejected_messages")
