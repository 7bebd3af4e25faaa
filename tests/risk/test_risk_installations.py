"""A placement's risk comes only from readings taken while each device was installed there.

Moves go through the API, so the boundary is the real time of the move; readings are placed
around it (some in the next hours, as a device's clock would have them).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from fastapi.testclient import TestClient
from sqlalchemy import delete, func, select, text

from fleet.api.app import create_app
from fleet.core.context import FleetContext
from fleet.core.db import alembic_config, make_engine
from fleet.models import (
    Borough,
    Case,
    Device,
    DeviceInstallation,
    Placement,
    PlacementRisk,
    PropertyRisk,
    RiskHour,
)
from fleet.models.base import utcnow
from fleet.registry import places
from fleet.registry.devices import register_device
from fleet.risk.hourly import HOUR, floor_hour
from fleet.risk.service.settings import RiskSettings
from fleet.risk.service.sweep import sweep
from tests.cases.rooms import DAMP, FIXED, samples, store
from tests.fleet.conftest import World, fleet_ctx, world  # noqa: F401  (fixtures)

OLD = "cs-hackney-0001"
NEW = "cs-hackney-0002"


@pytest.fixture
def client(fleet_ctx: FleetContext) -> Iterator[TestClient]:  # noqa: F811
    with TestClient(create_app(fleet_ctx)) as c:
        yield c


def _admin(world: World) -> dict[str, str]:  # noqa: F811
    return world.headers("admin")


def _placement_of(ctx: FleetContext, device_id: str) -> tuple[int, int]:
    with ctx.sessions() as s:
        device = s.scalars(select(Device).where(Device.device_id == device_id)).one()
        placement = s.get_one(Placement, device.placement_id)
        return placement.id, placement.property_id


def _move(client: TestClient, world: World, device_id: str, placement_id: int) -> datetime:  # noqa: F811
    """Install through the API; the time the fleet recorded for the move."""
    response = client.put(
        f"/api/v1/devices/{device_id}/placement",
        json={"placement_id": placement_id},
        headers=_admin(world),
    )
    assert response.status_code == 200, response.text
    with world.ctx.sessions() as s:
        moved = s.scalars(select(Device).where(Device.device_id == device_id)).one()
        assert moved.placement_changed_at is not None
        return moved.placement_changed_at


def _new_home(ctx: FleetContext, reference: str) -> tuple[int, int]:
    with ctx.sessions.begin() as s:
        hackney = s.scalars(select(Borough).where(Borough.code == "hackney")).one()
        prop = places.create_property(s, borough=hackney, reference=reference, address="2 St")
        return places.create_placement(s, prop=prop, room="bedroom").id, prop.id


def _hours(ctx: FleetContext, placement_id: int) -> list[tuple[datetime, float, int]]:
    with ctx.sessions() as s:
        rows = s.scalars(
            select(RiskHour).where(RiskHour.placement_id == placement_id).order_by(RiskHour.hour)
        )
        return [(h.hour, h.mould_index, h.samples) for h in rows]


def test_a_moved_device_brings_none_of_its_old_home(
    fleet_ctx: FleetContext,  # noqa: F811
    world: World,  # noqa: F811
    client: TestClient,
) -> None:
    settings = RiskSettings()
    start = floor_hour(utcnow())
    old_pl, old_prop = _placement_of(fleet_ctx, OLD)
    store(fleet_ctx, OLD, list(samples(DAMP, start - timedelta(days=7), 24 * 7)))
    sweep(fleet_ctx.sessions, settings, now=start)
    with fleet_ctx.sessions() as s:
        assert s.get_one(PropertyRisk, old_prop).level == "high"
        assert [c.property_id for c in s.scalars(select(Case))] == [old_prop]
    before = _hours(fleet_ctx, old_pl)

    new_pl, new_prop = _new_home(fleet_ctx, "HACKNEY-0002")
    moved = _move(client, world, OLD, new_pl)
    store(fleet_ctx, OLD, list(samples(FIXED, moved, 3)))
    sweep(fleet_ctx.sessions, settings, now=moved + timedelta(hours=3))

    new_hours = _hours(fleet_ctx, new_pl)
    assert new_hours, "the dry hours in the new home are processed"
    assert min(h for h, _, _ in new_hours) == floor_hour(moved)
    assert len(new_hours) <= 3
    with fleet_ctx.sessions() as s:
        assert s.get_one(PropertyRisk, new_prop).level == "low"
        assert [c.property_id for c in s.scalars(select(Case))] == [old_prop]
        old_state = s.get_one(PlacementRisk, old_pl)
        periods = s.execute(
            select(
                DeviceInstallation.placement_id,
                DeviceInstallation.installed_at,
                DeviceInstallation.removed_at,
            ).order_by(DeviceInstallation.id)
        ).all()
    # The old home keeps its history and finishes the hour the device was still there.
    after = _hours(fleet_ctx, old_pl)
    assert after[: len(before)] == before
    assert [h for h, _, _ in after[len(before) :]] == [start - HOUR]
    assert old_state.last_hour is not None and old_state.last_hour >= start - HOUR
    assert [tuple(p) for p in periods if p[0] in (old_pl, new_pl)] == [
        (old_pl, None, moved),
        (new_pl, moved, None),
    ]

    # A backlog from before the move, delivered after it, goes to the old home, not the new.
    late_hour = start - 3 * HOUR
    store(fleet_ctx, OLD, [(late_hour + timedelta(minutes=7), *FIXED.at(late_hour))])
    done = sweep(fleet_ctx.sessions, settings, now=moved + timedelta(hours=3))
    assert done.recomputed == 1
    samples_at = {h: n for h, _, n in _hours(fleet_ctx, old_pl)}
    assert samples_at[late_hour] == 12 + 3
    assert _hours(fleet_ctx, new_pl) == new_hours


def test_a_recompute_after_a_swap_keeps_the_earlier_device(
    fleet_ctx: FleetContext,  # noqa: F811
    world: World,  # noqa: F811
    client: TestClient,
) -> None:
    settings = RiskSettings()
    start = floor_hour(utcnow())
    placement, prop_id = _placement_of(fleet_ctx, OLD)
    store(fleet_ctx, OLD, list(samples(DAMP, start - timedelta(days=7), 24 * 7)))
    sweep(fleet_ctx.sessions, settings, now=start)
    with fleet_ctx.sessions.begin() as s:
        register_device(s, device_id=NEW, borough_id=world.borough_ids["hackney"])
    swapped = _move(client, world, NEW, placement)
    with fleet_ctx.sessions.begin() as s:  # the old sensor taken out
        s.scalars(select(Device).where(Device.device_id == OLD)).one().placement_id = None
    store(fleet_ctx, NEW, list(samples(DAMP, swapped, 3)))
    sweep(fleet_ctx.sessions, settings, now=swapped + timedelta(hours=3))
    incremental = _hours(fleet_ctx, placement)
    assert len(incremental) > 24 * 7 - 2
    with fleet_ctx.sessions() as s:
        # The new sensor's three hours fall at whatever time of day the test runs (a shower
        # in them or not), so the level is compared, not named.
        level = s.get_one(PropertyRisk, prop_id).level
    assert level in ("high", "severe")  # the damp week counts

    response = client.post(
        f"/api/v1/properties/{prop_id}/risk/recompute?days=31", headers=_admin(world)
    )
    assert response.status_code == 202, response.text
    done = sweep(fleet_ctx.sessions, settings, now=swapped + timedelta(hours=3))
    assert done.recomputed == 1
    assert _hours(fleet_ctx, placement) == incremental
    with fleet_ctx.sessions() as s:
        assert s.get_one(PropertyRisk, prop_id).level == level


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_batched_and_one_by_one_split_a_move_alike(
    fleet_ctx: FleetContext,  # noqa: F811
    world: World,  # noqa: F811
    client: TestClient,
) -> None:
    """Both homes read in one query (same window): each gets only its own side of the move."""
    start = floor_hour(utcnow())
    home_a, _ = _placement_of(fleet_ctx, OLD)
    with fleet_ctx.sessions.begin() as s:
        register_device(s, device_id=NEW, borough_id=world.borough_ids["hackney"])
    _move(client, world, NEW, home_a)  # stays in home A all along
    store(fleet_ctx, OLD, list(samples(DAMP, start - timedelta(days=2), 24 * 2)))
    home_b, _ = _new_home(fleet_ctx, "HACKNEY-0002")
    moved = _move(client, world, OLD, home_b)
    after = list(samples(FIXED, moved, 3))
    store(fleet_ctx, OLD, after)
    store(fleet_ctx, NEW, list(samples(FIXED, start - timedelta(days=2), 24 * 2 + 3)))
    with fleet_ctx.sessions.begin() as s:  # both homes' newest reading at the same time
        newest = max(ts for ts, *_ in after)
        for device in s.scalars(select(Device).where(Device.device_id.in_((OLD, NEW)))):
            device.latest_at = newest

    def run(batched: bool) -> dict[int, list[tuple[datetime, float, int]]]:
        with fleet_ctx.sessions.begin() as s:
            s.execute(delete(RiskHour))
            s.execute(delete(PlacementRisk))
            s.execute(delete(PropertyRisk))
        sweep(fleet_ctx.sessions, RiskSettings(), now=newest, batched=batched)
        return {pid: _hours(fleet_ctx, pid) for pid in (home_a, home_b)}

    batched = run(True)
    assert batched == run(False)
    assert min(h for h, _, _ in batched[home_b]) == floor_hour(moved)
    with fleet_ctx.sessions() as s:
        in_b = s.scalar(select(func.sum(RiskHour.samples)).where(RiskHour.placement_id == home_b))
    # Home B holds exactly the moved device's readings after the move, of its complete hours.
    complete = [ts for ts, *_ in after if ts < floor_hour(newest)]
    assert in_b == 3 * len(complete)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_installations_follow_every_placement_change(
    fleet_ctx: FleetContext,  # noqa: F811
    world: World,  # noqa: F811
) -> None:
    home_a, _ = _placement_of(fleet_ctx, OLD)
    home_b, _ = _new_home(fleet_ctx, "HACKNEY-0002")
    t = floor_hour(utcnow()) + timedelta(days=1)
    steps = [(home_b, t), (None, t + HOUR), (home_a, t + 2 * HOUR), (home_a, t + 3 * HOUR)]
    for placement, at in steps:
        with fleet_ctx.sessions.begin() as s:
            device = s.scalars(select(Device).where(Device.device_id == OLD)).one()
            device.placement_id = placement
            device.placement_changed_at = at  # the move's time as recorded
    # A move dated before the period it ends: periods still never overlap.
    with fleet_ctx.sessions.begin() as s:
        device = s.scalars(select(Device).where(Device.device_id == OLD)).one()
        device.placement_id = home_b
        device.placement_changed_at = t
    with fleet_ctx.sessions() as s:
        pk = s.scalars(select(Device.id).where(Device.device_id == OLD)).one()
        rows = s.execute(
            select(
                DeviceInstallation.placement_id,
                DeviceInstallation.installed_at,
                DeviceInstallation.removed_at,
            )
            .where(DeviceInstallation.device_pk == pk)
            .order_by(DeviceInstallation.id)
        ).all()
    assert [tuple(r) for r in rows] == [
        (home_a, None, t),  # the first installation also owns earlier readings
        (home_b, t, t + HOUR),
        (home_a, t + 2 * HOUR, t + 2 * HOUR),
        (home_b, t + 2 * HOUR, None),
    ]


def test_migration_rebuilds_installations_from_recorded_moves(empty_database_url: str) -> None:
    """Earlier periods come from the feed's Things; current ones from the devices."""
    engine = make_engine(empty_database_url)
    cfg = alembic_config(empty_database_url)
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    t1, t2 = datetime(2026, 3, 1, 9, tzinfo=UTC), datetime(2026, 4, 1, 9, tzinfo=UTC)
    try:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "0014")
            now = utcnow()
            conn.execute(
                text("insert into boroughs (code, name, created_at) values ('b', 'B', :now)"),
                {"now": now},
            )
            conn.execute(
                text(
                    "insert into properties (borough_id, reference, created_at) "
                    "select id, 'P-1', :now from boroughs"
                ),
                {"now": now},
            )
            for room in ("a", "b"):
                conn.execute(
                    text(
                        "insert into placements (property_id, room) select id, :r from properties"
                    ),
                    {"r": room},
                )
            pl = dict(conn.execute(text("select room, id from placements")).all())
            # (device, placement now, moved at, feed Things as (placement, start, end))
            cases = [
                ("cs-never-moved", "a", None, []),
                ("cs-moved-seen", "b", t2, [("a", epoch, t2), ("b", t2, None)]),
                ("cs-moved-unseen", "b", t2, [("a", epoch, None)]),
                ("cs-taken-out", None, t1, [("a", epoch, t1)]),
            ]
            pks = {}
            for device_id, room, moved, things in cases:
                pks[device_id] = conn.execute(
                    text(
                        "insert into devices (device_id, board, status, created_at, "
                        "placement_id, placement_changed_at) "
                        "values (:d, 'devkitc-sht41', 'online', :now, :p, :m) returning id"
                    ),
                    {"d": device_id, "now": now, "p": pl.get(room), "m": moved},
                ).scalar_one()
                for place, start, end in things:
                    conn.execute(
                        text(
                            "insert into feed_things (device_pk, placement_id, started_at, "
                            "ended_at, created_at) values (:d, :p, :s, :e, :now)"
                        ),
                        {"d": pks[device_id], "p": pl[place], "s": start, "e": end, "now": now},
                    )
            command.upgrade(cfg, "0015")
            got = conn.execute(
                select(
                    DeviceInstallation.device_pk,
                    DeviceInstallation.placement_id,
                    DeviceInstallation.installed_at,
                    DeviceInstallation.removed_at,
                ).order_by(DeviceInstallation.id)
            ).all()
            assert [tuple(r) for r in got] == [
                (pks["cs-never-moved"], pl["a"], None, None),
                (pks["cs-moved-seen"], pl["a"], None, t2),
                (pks["cs-moved-seen"], pl["b"], t2, None),
                (pks["cs-moved-unseen"], pl["a"], None, t2),
                (pks["cs-moved-unseen"], pl["b"], t2, None),
                (pks["cs-taken-out"], pl["a"], None, t1),
            ]
            command.downgrade(cfg, "0014")
            assert "device_installations" not in conn.dialect.get_table_names(conn)
    finally:
        engine.dispose()
