"""Consent records since when a home is published again

A tenant who withdrew consent and later granted it again had every reading stored in between
published at the grant, although nothing taken while consent was withdrawn may ever be
published. ``property_consents.published_since`` is set when consent is granted again after a
withdrawal; the feed publishes none of the home's readings taken before it.

Upgrade fills it for homes already granted again: the last change (``changed_at``) of a
consent in state ``granted`` whose property has a ``feed.consent_withdrawn`` audit entry.

Downgrade drops the column: readings from before a renewed grant are published again.

Revision ID: 0019
Revises: 0018
Create Date: 2026-11-25 10:00:00.000000
"""

from alembic import op
import sqlalchemy as sa

from fleet.models.base import UTCDateTime


revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

REGRANTED = """
UPDATE property_consents SET published_since = changed_at
WHERE state = 'granted' AND EXISTS (
    SELECT 1 FROM audit_log
    WHERE audit_log.action = 'feed.consent_withdrawn'
      AND audit_log.target_type = 'property'
      AND audit_log.target_id = CAST(property_consents.property_id AS VARCHAR(64))
)
"""


def upgrade() -> None:
    with op.batch_alter_table("property_consents", schema=None) as batch_op:
        batch_op.add_column(sa.Column("published_since", UTCDateTime(timezone=True), nullable=True))
    op.execute(REGRANTED)


def downgrade() -> None:
    with op.batch_alter_table("property_consents", schema=None) as batch_op:
        batch_op.drop_column("published_since")
