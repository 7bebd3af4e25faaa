"""Sign-in failures shared by workers

The sign-in throttle counted failures in each API process: N replicas behind a load balancer
gave a password guesser N times the allowance, and a restart forgot every count. The counts
now live in ``sign_in_failures``, one row per account or address (keyed by a SHA-256 of it,
never the e-mail or address itself), incremented by a single upsert so concurrent workers
lose none. Rows quiet for an hour are deleted; the index on ``last_failed_at`` finds them.

Downgrade drops the table: the counts restart from zero, as they did at every restart.

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-25 09:30:00.000000
"""

from alembic import op
import sqlalchemy as sa

from fleet.models.base import UTCDateTime


revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sign_in_failures",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_failed_at", UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_sign_in_failures")),
    )
    op.create_index(
        op.f("ix_sign_in_failures_last_failed_at"), "sign_in_failures", ["last_failed_at"]
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_sign_in_failures_last_failed_at"), table_name="sign_in_failures")
    op.drop_table("sign_in_failures")
