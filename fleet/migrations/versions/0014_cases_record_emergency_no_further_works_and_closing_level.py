"""Cases record an emergency found later, that no further works are needed, and the level
at closing

- ``emergency_at``: when the landlord became aware the hazard is an emergency, for a case
  raised to emergency by a later report (null: from ``aware_at``, or not an emergency). The
  24-hour deadline counts from it.
- ``no_further_works_at``: the investigation found no further works needed, so their
  deadlines read "not required" instead of overdue or not done.
- ``closed_level``: the property's risk level when the case was closed. Sensor risk opens a
  new case only above it, or after the level has fallen below the case level and risen again.

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-25 12:00:00.000000
"""

from alembic import op
import sqlalchemy as sa

from fleet.models.base import UTCDateTime


revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("risk_cases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("emergency_at", UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("no_further_works_at", UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("closed_level", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("risk_cases", schema=None) as batch_op:
        batch_op.drop_column("closed_level")
        batch_op.drop_column("no_further_works_at")
        batch_op.drop_column("emergency_at")
