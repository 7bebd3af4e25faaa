"""Devices keep their installation history

A placement's risk used every reading of the devices installed there now: a device moved to
another home took the old home's history (and its case) with it, and a recompute after a
swap dropped the earlier device's readings. ``device_installations`` records each device at
each placement from ``installed_at`` (null on a device's first installation, which also owns
the readings taken before it) until ``removed_at`` (null: still there).

Filled from what is already recorded: the published feed's Thing periods (a device's first
starts at the Unix epoch), then each device's current placement, from
``placement_changed_at`` when it was moved since.

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-25 13:00:00.000000
"""

from datetime import UTC, datetime

from alembic import op
import sqlalchemy as sa

from fleet.models.base import UTCDateTime


revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def upgrade() -> None:
    op.create_table(
        "device_installations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("device_pk", sa.Integer(), nullable=False),
        sa.Column("placement_id", sa.Integer(), nullable=False),
        sa.Column("installed_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("removed_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["device_pk"],
            ["devices.id"],
            name=op.f("fk_device_installations_device_pk_devices"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["placement_id"],
            ["placements.id"],
            name=op.f("fk_device_installations_placement_id_placements"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_device_installations")),
    )
    with op.batch_alter_table("device_installations", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_device_installations_device_pk"), ["device_pk"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_device_installations_placement_id"), ["placement_id"], unique=False
        )
    _backfill(op.get_bind())


def _backfill(conn: sa.Connection) -> None:
    now = datetime.now(UTC)
    devices = sa.table(
        "devices",
        sa.column("id", sa.Integer()),
        sa.column("placement_id", sa.Integer()),
        sa.column("placement_changed_at", UTCDateTime()),
    )
    things = sa.table(
        "feed_things",
        sa.column("device_pk", sa.Integer()),
        sa.column("placement_id", sa.Integer()),
        sa.column("started_at", UTCDateTime()),
        sa.column("ended_at", UTCDateTime()),
    )
    installs = sa.table(
        "device_installations",
        sa.column("device_pk", sa.Integer()),
        sa.column("placement_id", sa.Integer()),
        sa.column("installed_at", UTCDateTime()),
        sa.column("removed_at", UTCDateTime()),
        sa.column("created_at", UTCDateTime()),
    )
    periods: dict[int, list[tuple[int, datetime, datetime | None]]] = {}
    for device_pk, placement_id, started, ended in conn.execute(
        sa.select(
            things.c.device_pk, things.c.placement_id, things.c.started_at, things.c.ended_at
        ).order_by(things.c.device_pk, things.c.started_at)
    ):
        periods.setdefault(device_pk, []).append((placement_id, started, ended))
    values = []
    for device_pk, placement_id, moved_at in conn.execute(
        sa.select(devices.c.id, devices.c.placement_id, devices.c.placement_changed_at)
    ):
        boundary = min(moved_at or now, now)
        spans: list[tuple[int, datetime | None, datetime | None]] = []
        for place, started, ended in periods.get(device_pk, []):
            if ended is None and place != placement_id:
                ended = max(boundary, started)  # moved since the feed last looked
            spans.append((place, started, ended))
        if placement_id is not None and not (
            spans and spans[-1][2] is None and spans[-1][0] == placement_id
        ):
            since = max(boundary, spans[-1][2] or boundary) if spans else None
            spans.append((placement_id, since, None))
        for i, (place, since, until) in enumerate(spans):
            values.append(
                {
                    "device_pk": device_pk,
                    "placement_id": place,
                    # A device's first period also owns the readings taken before it.
                    "installed_at": None if i == 0 or since == EPOCH else since,
                    "removed_at": until,
                    "created_at": now,
                }
            )
    if values:
        conn.execute(sa.insert(installs), values)


def downgrade() -> None:
    with op.batch_alter_table("device_installations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_device_installations_placement_id"))
        batch_op.drop_index(batch_op.f("ix_device_installations_device_pk"))
    op.drop_table("device_installations")
