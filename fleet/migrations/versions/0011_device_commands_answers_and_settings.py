"""Commands sent to devices and the answers they gave; settings asked of a device

A command used to be published and forgotten: the device's answer on `cmd/ack` (done, or
refused with a reason) reached no one. Each command is now kept with who sent it and what
the device answered, for the device page and the API. Settings changed from the fleet
(sampling and health intervals, battery uplink cadence) are kept per device with the version
published on its retained `config` topic and whether the device applied or refused it.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-24 21:20:00.000000
"""

from alembic import op
import sqlalchemy as sa

import fleet.models.base


revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "device_commands",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "device_pk",
            sa.Integer(),
            sa.ForeignKey("devices.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("command_id", sa.String(32), nullable=False),
        sa.Column("op", sa.String(32), nullable=False),
        sa.Column("sent_by", sa.String(200), nullable=False),
        sa.Column("sent_at", fleet.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("answered_at", fleet.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("error", sa.String(500), nullable=True),
        sa.UniqueConstraint("device_pk", "command_id", name="uq_device_commands_id"),
    )
    op.create_index("ix_device_commands_sent_at", "device_commands", ["sent_at"])
    op.create_table(
        "device_desired_configs",
        sa.Column(
            "device_pk",
            sa.Integer(),
            sa.ForeignKey("devices.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("values", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("error", sa.String(500), nullable=True),
        sa.Column("set_by", sa.String(200), nullable=False),
        sa.Column("set_at", fleet.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("answered_at", fleet.models.base.UTCDateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("device_desired_configs")
    op.drop_index("ix_device_commands_sent_at", table_name="device_commands")
    op.drop_table("device_commands")
