"""Devices keep the cadence they run: sampling and health intervals, battery uplink wakes

The report interval liveness judges a device by was worked out from whatever one change
said. A battery sensor told only to send every 2nd wake kept its old interval, because
the sampling interval was not in that change. The fleet now keeps each part of the cadence
the device runs (from enrolment, then from every settings change it applied) and works the
report interval out of all of them. Null: not known (the firmware's default applies).

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-24 23:30:00.000000
"""

from alembic import op
import sqlalchemy as sa


revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

COLUMNS = ("sample_interval_s", "health_interval_s", "uplink_every")


def upgrade() -> None:
    with op.batch_alter_table("devices", schema=None) as batch_op:
        for name in COLUMNS:
            batch_op.add_column(sa.Column(name, sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("devices", schema=None) as batch_op:
        for name in reversed(COLUMNS):
            batch_op.drop_column(name)
