"""Time indexes for the retention purge of device history; 64-bit keys for its tables

Health snapshots, state changes and rejected messages are now deleted after their retention
period, which needs an index on their time. Rejected messages (a misbehaving fleet sends
thousands a second) and state changes (battery devices change state at every wake) get
64-bit keys; on PostgreSQL the type change rewrites both tables once.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-23 17:40:00.000000
"""

from alembic import op
import sqlalchemy as sa


revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_WIDE = ("rejected_messages", "device_state_changes")
_TIME_INDEXES = (
    ("ix_health_at", "health_snapshots"),
    ("ix_state_changes_at", "device_state_changes"),
)


def upgrade() -> None:
    for name, table in _TIME_INDEXES:
        op.create_index(name, table, ["at"])
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite's INTEGER PRIMARY KEY is already 64-bit
    for table in _WIDE:
        op.alter_column(table, "id", existing_type=sa.Integer(), type_=sa.BigInteger())
        op.execute(f"ALTER SEQUENCE {table}_id_seq AS bigint")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in _WIDE:
            op.execute(f"ALTER SEQUENCE {table}_id_seq AS integer")
            op.alter_column(table, "id", existing_type=sa.BigInteger(), type_=sa.Integer())
    for name, table in _TIME_INDEXES:
        op.drop_index(name, table_name=table)
