"""64-bit keys for readings and health snapshots; readings without a per-row foreign key

At 100,000 devices a 32-bit readings key runs out within weeks. The readings foreign key is
dropped because the ingest, the table's only writer, holds the device's row lock in the same
transaction; decommissioning deletes a device's readings itself. On PostgreSQL the type change
rewrites both tables once.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23 08:40:00.000000
"""

from alembic import op
import sqlalchemy as sa


revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_WIDE = ("readings", "health_snapshots")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        # SQLite's INTEGER PRIMARY KEY is already 64-bit; only the constraint goes.
        with op.batch_alter_table("readings", schema=None) as batch_op:
            batch_op.drop_constraint("fk_readings_device_pk_devices", type_="foreignkey")
        return
    op.drop_constraint("fk_readings_device_pk_devices", "readings", type_="foreignkey")
    for table in _WIDE:
        op.alter_column(table, "id", existing_type=sa.Integer(), type_=sa.BigInteger())
        op.execute(f"ALTER SEQUENCE {table}_id_seq AS bigint")


def downgrade() -> None:
    # Readings of devices that no longer exist cannot be kept under the restored key.
    op.execute("DELETE FROM readings WHERE device_pk NOT IN (SELECT id FROM devices)")
    if op.get_bind().dialect.name != "postgresql":
        with op.batch_alter_table("readings", schema=None) as batch_op:
            batch_op.create_foreign_key(
                "fk_readings_device_pk_devices",
                "devices",
                ["device_pk"],
                ["id"],
                ondelete="CASCADE",
            )
        return
    for table in _WIDE:
        op.execute(f"ALTER SEQUENCE {table}_id_seq AS integer")
        op.alter_column(table, "id", existing_type=sa.BigInteger(), type_=sa.Integer())
    op.create_foreign_key(
        "fk_readings_device_pk_devices",
        "readings",
        "devices",
        ["device_pk"],
        ["id"],
        ondelete="CASCADE",
    )
