"""Devices record when their placement last changed

The published feed closes a device's Thing and opens the new home's Thing when the device is
moved. It used the time the feed noticed the move, so readings taken in between went out
under the previous home and borough. Null: not moved since this column exists (the feed then
falls back to the time it notices).

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-25 09:00:00.000000
"""

from alembic import op
import sqlalchemy as sa

from fleet.models.base import UTCDateTime


revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("placement_changed_at", UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.drop_column("placement_changed_at")
