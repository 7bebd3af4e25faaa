"""Devices are retired, not deleted

Decommissioning a device deleted its row, its readings and (by cascade) its installation
periods: a sensor swapped out at a home took the home's damp history with it. A decommissioned
device now keeps its row with ``retired_at`` set, and its readings and periods stay with the
placements it served. The same hardware may then be enrolled again as a new device, so the
unique index on ``devices.device_id`` covers only devices not retired.

Downgrade restores the plain unique index; it fails while a hardware id has a retired row and
a newer one (delete or rename the retired rows first).

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-25 06:00:00.000000
"""

from alembic import op
import sqlalchemy as sa

from fleet.models.base import UTCDateTime


revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

ACTIVE = "retired_at IS NULL"


def upgrade() -> None:
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.add_column(sa.Column("retired_at", UTCDateTime(timezone=True), nullable=True))
        batch_op.drop_index("ix_devices_device_id")
        batch_op.create_index(
            "ix_devices_device_id_active",
            ["device_id"],
            unique=True,
            sqlite_where=sa.text(ACTIVE),
            postgresql_where=sa.text(ACTIVE),
        )


def downgrade() -> None:
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.drop_index("ix_devices_device_id_active")
        batch_op.create_index("ix_devices_device_id", ["device_id"], unique=True)
        batch_op.drop_column("retired_at")
