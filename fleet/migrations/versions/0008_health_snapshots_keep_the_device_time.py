"""Health snapshots keep the device's own time, one snapshot per device and time

A redelivered health report (an ingest worker killed after the commit but before its
acknowledgement reached the broker) was stored a second time, and histories ordered by when
reports arrived read a late report as a reboot. Snapshots stored before this keep no device
time; they stay as they are, and their NULLs never collide in the unique key.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23 17:20:00.000000
"""

from alembic import op
import sqlalchemy as sa

from fleet.models.base import UTCDateTime


revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("health_snapshots", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sampled_at", UTCDateTime(timezone=True), nullable=True))
        batch_op.create_unique_constraint("uq_health_snapshots_sample", ["device_pk", "sampled_at"])


def downgrade() -> None:
    with op.batch_alter_table("health_snapshots", schema=None) as batch_op:
        batch_op.drop_constraint("uq_health_snapshots_sample", type_="unique")
        batch_op.drop_column("sampled_at")
