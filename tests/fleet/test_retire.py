"""Decommissioning retires a device: its readings and installation periods stay with the
placements it served, it leaves the lists and sweeps, and its hardware id can be enrolled
again as a new device."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
from alembic import command
from fastapi.testclient import TestClient
from sqlalchemy import Connection, func, inspect, select, text
from sqlalchemy.exc import IntegrityError

from fleet.access.principal import SYSTEM
from fleet.api.app import create_app
from fleet.core.context import FleetContext
from fleet.core.db import alembic_config, make_engine
from fleet.feed import snapshot
from fleet.feed.stewardship import purge_expired
from fleet.health.sweep import sweep as health_sweep
from fleet.ingest.handler import IngestHandler
from fleet.models import (
    Alert,
    AuditEntry,
    Device,
    DeviceInstallation,
    Placement,
    PropertyRisk,
    Reading,
    RiskHour,
)
from fleet.models.base import utcnow
from fleet.models.feed import FeedThing
from fleet.models.ota import Release, Rollout, RolloutDevice
from fleet.ota.offers import restate_offers
from fleet.ota.rollout import resume
from fleet.ota.target import target_devices
from fleet.registry import devices as registry
from fleet.registry.devices import register_device
from fleet.risk.hourly import floor_hour
from fleet.risk.service.settings import RiskSettings
from fleet.risk.service.sweep import sweep as risk_sweep
from tests.cases.rooms import DAMP, samples, store
from tests.fleet.conftest import World
from tests.fleet.packs import telemetry

OLD = "cs-hackney-0001"
NEW = "cs-hackney-0002"
NOW = float(int(time.time()))


@pytest.fixture
def client(fleet_ctx: FleetContext) -> Iterator[TestClient]:
    with TestClient(create_app(fleet_ctx)) as c:
        yield c


def _row(ctx: FleetContext, device_id: str, *, retired: bool = False) -> Device:
    with ctx.sessions() as s:
        state = Device.retired_at.is_not(None) if retired else Device.active()
        return s.scalars(select(Device).where(Device.device_id == device_id, state)).one()


def _readings(ctx: FleetContext, device_pk: int) -> int:
    with ctx.sessions() as s:
        stmt = select(func.count()).select_from(Reading).where(Reading.device_pk == device_pk)
        return int(s.scalar(stmt) or 0)


def _hours(ctx: FleetContext, placement_id: int) -> list[tuple[object, float, int]]:
    with ctx.sessions() as s:
        rows = s.scalars(
            select(RiskHour).where(RiskHour.placement_id == placement_id).order_by(RiskHour.hour)
        )
        return [(h.hour, h.mould_index, h.samples) for h in rows]


def _decommission(client: TestClient, world: World, device_id: str, **params: str) -> int:
    r = client.delete(
        f"/api/v1/devices/{device_id}", params=params, headers=world.headers("staff_hackney")
    )
    return r.status_code


def test_a_swapped_out_device_keeps_its_readings_and_the_placements_hours(
    fleet_ctx: FleetContext, world: World, client: TestClient
) -> None:
    settings = RiskSettings()
    start = floor_hour(utcnow())
    old = _row(fleet_ctx, OLD)
    placement = old.placement_id
    assert placement is not None
    with fleet_ctx.sessions() as s:
        prop_id = s.get_one(Placement, placement).property_id
    store(fleet_ctx, OLD, list(samples(DAMP, start - timedelta(days=7), 24 * 7)))
    risk_sweep(fleet_ctx.sessions, settings, now=start)
    kept = _readings(fleet_ctx, old.id)

    # The technician installs a new sensor; staff then decommission the old one.
    with fleet_ctx.sessions.begin() as s:
        register_device(s, device_id=NEW, borough_id=world.borough_ids["hackney"])
    moved = client.put(
        f"/api/v1/devices/{NEW}/placement",
        json={"placement_id": placement},
        headers=world.headers("admin"),
    )
    assert moved.status_code == 200, moved.text
    assert _decommission(client, world, OLD) == 204
    retired = _row(fleet_ctx, OLD, retired=True)
    assert retired.id == old.id and retired.retired_at is not None
    assert retired.placement_id is None
    assert _readings(fleet_ctx, old.id) == kept
    swapped = _row(fleet_ctx, NEW).placement_changed_at
    assert swapped is not None
    store(fleet_ctx, NEW, list(samples(DAMP, swapped, 3)))
    risk_sweep(fleet_ctx.sessions, settings, now=swapped + timedelta(hours=3))
    incremental = _hours(fleet_ctx, placement)
    assert len(incremental) > 24 * 7 - 2

    r = client.post(
        f"/api/v1/properties/{prop_id}/risk/recompute?days=31", headers=world.headers("admin")
    )
    assert r.status_code == 202, r.text
    assert risk_sweep(fleet_ctx.sessions, settings, now=swapped + timedelta(hours=3)).recomputed
    assert _hours(fleet_ctx, placement) == incremental
    with fleet_ctx.sessions() as s:
        assert s.get_one(PropertyRisk, prop_id).level == "high"
        periods = s.execute(
            select(DeviceInstallation.placement_id, DeviceInstallation.removed_at).where(
                DeviceInstallation.device_pk == old.id
            )
        ).all()
        entry = s.scalars(
            select(AuditEntry).where(AuditEntry.action == "device.decommission")
        ).one()
    # Its period ends at the retirement, not at the swap; no reading of it is lost.
    assert [tuple(p) for p in periods] == [(placement, retired.retired_at)]
    assert entry.detail is not None and entry.detail["readings_kept"] == kept


def test_a_retired_device_leaves_lists_sweeps_and_alerts(
    fleet_ctx: FleetContext, world: World, client: TestClient
) -> None:
    old = _row(fleet_ctx, OLD)
    with fleet_ctx.sessions.begin() as s:
        s.add(
            Alert(
                device_pk=old.id,
                borough_id=old.borough_id,
                rule="offline",
                message="not heard from",
            )
        )
    assert _decommission(client, world, OLD) == 204

    h = world.headers("admin")
    listed = client.get("/api/v1/devices", headers=h).json()
    assert [d["device_id"] for d in listed["items"]] == ["cs-camden-0001"]
    assert listed["total"] == 1
    gone = client.get("/api/v1/devices?retired=true", headers=h).json()
    assert [d["device_id"] for d in gone["items"]] == [OLD]
    assert gone["items"][0]["retired_at"] is not None
    assert client.get(f"/api/v1/devices/{OLD}", headers=h).status_code == 404
    assert _decommission(client, world, OLD) == 404
    with fleet_ctx.sessions() as s:
        counts = registry.state_counts(s, principal=SYSTEM)
        alert = s.scalars(select(Alert).where(Alert.device_pk == old.id)).one()
    assert "hackney" not in counts
    assert (alert.state, alert.resolved_by) == ("resolved", registry.RETIRED_RESOLVED)
    assert health_sweep(fleet_ctx.sessions).devices == 1


def test_a_retired_device_leaves_rollouts(
    fleet_ctx: FleetContext, world: World, client: TestClient
) -> None:
    old = _row(fleet_ctx, OLD)
    with fleet_ctx.sessions.begin() as s:
        release = Release(
            version="9.9.9",
            kind="app",
            manifest="{}",
            sigs=[],
            signer_kid="k",
            blob_path="blob-9.9.9",
            size=1,
            sha256="0" * 64,
            created_by="test",
        )
        s.add(release)
        s.flush()
        rollout = Rollout(
            release_id=release.id,
            target={"device_ids": [OLD]},
            waves=["100%"],
            state="running",
            created_by="test",
        )
        s.add(rollout)
        s.flush()
        rollout_id = rollout.id
        s.add(RolloutDevice(rollout_id=rollout.id, device_pk=old.id, wave=0, job_id="r1-x"))
    assert _decommission(client, world, OLD) == 204
    with fleet_ctx.sessions.begin() as s:
        member = s.scalars(select(RolloutDevice)).one()
        assert (member.state, member.reason) == ("withdrawn", "device retired")
        rollout = s.get_one(Rollout, rollout_id)
        assert target_devices(s, rollout) == []
        # Resuming offers withdrawn devices again, but not one that is gone for good.
        rollout.state = "paused"
        resume(s, SYSTEM, rollout)
        assert member.state == "withdrawn"
        rollout.state = "running"

        # The hardware enrolled again is offered the release on the same topic: restating
        # the retained offers must not clear it with the retired device's withdrawal.
        fresh = register_device(s, device_id=OLD, borough_id=world.borough_ids["hackney"])
        s.add(RolloutDevice(rollout_id=rollout_id, device_pk=fresh.id, wave=0, job_id="r1-y"))
        s.flush()
        published = Published()
        offers, withdrawals, ok = restate_offers(s, published, lambda r: "http://x/b")
    assert (offers, withdrawals, ok) == (1, 0, True)
    assert [(topic, b"r1-y" in payload) for topic, payload in published.sent] == [
        (f"cs/v1/d/{OLD}/ota", True)
    ]


class Published:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes]] = []

    def publish(self, topic: str, payload: bytes, *, qos: int, retain: bool = False) -> bool:
        self.sent.append((topic, payload))
        return True


def test_ingest_from_a_retired_id_writes_nothing_to_the_retired_row(
    fleet_ctx: FleetContext, world: World, client: TestClient
) -> None:
    handler = IngestHandler(fleet_ctx.sessions, clock=lambda: NOW)
    pack = [(0, 20.0, 50.0), (600, 20.5, 51.0)]
    handler.handle(f"cs/v1/d/{OLD}/up", telemetry(OLD, NOW - 1800, pack))
    old = _row(fleet_ctx, OLD)
    assert _readings(fleet_ctx, old.id) == 4
    assert _decommission(client, world, OLD) == 204
    late = handler.handle(f"cs/v1/d/{OLD}/up", telemetry(OLD, NOW - 300, pack))
    assert late.reason == "unknown_device"
    assert _readings(fleet_ctx, old.id) == 4

    # Registered again, the hardware id is a new device; the retired row stays as it was.
    created = client.post(
        "/api/v1/devices",
        json={"device_id": OLD, "borough": "hackney"},
        headers=world.headers("tech_hackney"),
    )
    assert created.status_code == 201, created.text
    handler.handle(f"cs/v1/d/{OLD}/up", telemetry(OLD, NOW - 120, pack))
    fresh = _row(fleet_ctx, OLD)
    assert fresh.id != old.id
    assert _readings(fleet_ctx, fresh.id) == 4
    assert _readings(fleet_ctx, old.id) == 4


def test_erasing_needs_an_admin_and_deletes_only_that_devices_readings(
    fleet_ctx: FleetContext, world: World, client: TestClient
) -> None:
    handler = IngestHandler(fleet_ctx.sessions, clock=lambda: NOW)
    pack = [(0, 20.0, 50.0), (600, 20.5, 51.0)]
    handler.handle(f"cs/v1/d/{OLD}/up", telemetry(OLD, NOW - 1800, pack))
    retired = _row(fleet_ctx, OLD)
    assert _decommission(client, world, OLD) == 204
    with fleet_ctx.sessions.begin() as s:
        register_device(s, device_id=OLD, borough_id=world.borough_ids["hackney"])
    for device_id in (OLD, "cs-camden-0001"):
        handler.handle(f"cs/v1/d/{device_id}/up", telemetry(device_id, NOW - 600, pack))
    fresh = _row(fleet_ctx, OLD)

    assert _decommission(client, world, OLD, erase_readings="true") == 403
    assert _readings(fleet_ctx, fresh.id) == 4
    r = client.delete(f"/api/v1/devices/{OLD}?erase_readings=true", headers=world.headers("admin"))
    assert r.status_code == 204, r.text
    with fleet_ctx.sessions() as s:
        per_device = dict(
            s.execute(select(Reading.device_pk, func.count()).group_by(Reading.device_pk)).all()
        )
        assert s.get(Device, fresh.id) is None
        entry = s.scalars(select(AuditEntry).where(AuditEntry.action == "device.erase")).one()
    camden = _row(fleet_ctx, "cs-camden-0001")
    assert per_device == {retired.id: 4, camden.id: 4}
    assert entry.detail is not None and entry.detail["readings_deleted"] == 4


def test_the_feed_keeps_a_retired_devices_thing_and_retention_still_purges_it(
    fleet_ctx: FleetContext, world: World, client: TestClient
) -> None:
    old = _row(fleet_ctx, OLD)
    start = floor_hour(utcnow()) - timedelta(days=400)
    store(fleet_ctx, OLD, list(samples(DAMP, start, 24)))
    handler = IngestHandler(fleet_ctx.sessions, clock=lambda: NOW)
    handler.handle(f"cs/v1/d/{OLD}/up", telemetry(OLD, NOW - 1800, [(0, 20.0, 70.0)]))
    with fleet_ctx.sessions.begin() as s:
        snapshot.sync(s)
    assert _decommission(client, world, OLD) == 204
    retired = _row(fleet_ctx, OLD, retired=True)
    with fleet_ctx.sessions.begin() as s:
        snapshot.sync(s)
        thing = s.scalars(select(FeedThing).where(FeedThing.device_pk == old.id)).one()
        assert thing.ended_at == retired.retired_at
        loaded = snapshot.load(s)
        assert loaded.things[thing.id].device_id == OLD
        assert any(d.thing.id == thing.id for d in loaded.datastreams.values())
    before = _readings(fleet_ctx, old.id)
    with fleet_ctx.sessions.begin() as s:
        # The default retention (730 days) has run out for the old day only.
        report = purge_expired(s, now=utcnow() + timedelta(days=340))
    assert report["hackney"]
    assert 0 < _readings(fleet_ctx, old.id) < before
    with fleet_ctx.sessions() as s:
        oldest = s.scalar(select(func.min(Reading.ts)).where(Reading.device_pk == old.id))
    assert oldest is not None and oldest > start + timedelta(days=1)


# -- enrolling the same hardware again --------------------------------------------------------
DEVICE = "cs-0a0b0c0d0e0f"


def _wifi(client: TestClient, world: World, borough: str) -> None:
    r = client.put(
        f"/api/v1/enrolments/wifi-profiles/{borough}/default",
        json={"ssid": "Estate-IoT", "password": "correct-horse"},
        headers=world.headers("admin"),
    )
    assert r.status_code == 200, r.text


def _enrol(client: TestClient, world: World, who: str, borough: str, reference: str):  # type: ignore[no-untyped-def]
    body = {
        "device_id": DEVICE,
        "borough": borough,
        "property_reference": reference,
        "room": "bathroom",
    }
    return client.post("/api/v1/enrolments", json=body, headers=world.headers(who))


def test_retired_hardware_enrols_again_as_a_new_device(
    fleet_ctx: FleetContext, world: World, client: TestClient
) -> None:
    _wifi(client, world, "hackney")
    _wifi(client, world, "camden")
    first = _enrol(client, world, "tech_hackney", "hackney", "HACKNEY-0042")
    assert first.status_code == 201, first.text
    old = _row(fleet_ctx, DEVICE)
    store(fleet_ctx, DEVICE, list(samples(DAMP, floor_hour(utcnow()) - timedelta(hours=6), 4)))
    kept = _readings(fleet_ctx, old.id)

    # In service at a Hackney home: enrolling it elsewhere is refused until it is retired.
    refused = _enrol(client, world, "admin", "camden", "CAMDEN-0042")
    assert refused.status_code == 409, refused.text
    assert _row(fleet_ctx, DEVICE).id == old.id

    assert _decommission(client, world, DEVICE) == 204
    again = _enrol(client, world, "admin", "camden", "CAMDEN-0042")
    assert again.status_code == 201, again.text
    assert again.json()["created"] is True
    fresh = _row(fleet_ctx, DEVICE)
    retired = _row(fleet_ctx, DEVICE, retired=True)
    assert fresh.id != old.id and retired.id == old.id
    assert _readings(fleet_ctx, old.id) == kept
    with fleet_ctx.sessions() as s:
        periods = s.execute(
            select(
                DeviceInstallation.device_pk,
                DeviceInstallation.placement_id,
                DeviceInstallation.removed_at,
            ).order_by(DeviceInstallation.id)
        ).all()
    mine = [tuple(p) for p in periods if p[0] in (old.id, fresh.id)]
    assert mine[-1] == (fresh.id, again.json()["placement_id"], None)
    assert all(removed is not None for pk, _, removed in mine if pk == old.id)

    # The hardware now in service in Camden is refused to Hackney's technician.
    elsewhere = _enrol(client, world, "tech_hackney", "hackney", "HACKNEY-0042")
    assert elsewhere.status_code == 409
    assert "another borough" in elsewhere.json()["detail"]["message"]


# -- migration ----------------------------------------------------------------------------------
def _device_indexes(conn: Connection) -> dict[str, bool]:
    return {str(i["name"]): bool(i["unique"]) for i in inspect(conn).get_indexes("devices")}


def _add(conn: Connection, device_id: str, retired: bool) -> None:
    conn.execute(
        text(
            "insert into devices (device_id, board, status, state, power_mode, report_interval_s,"
            " created_at, retired_at) values (:d, 'devkitc-sht41', 'unknown', 'unknown', 'mains',"
            " 900, CURRENT_TIMESTAMP, " + ("CURRENT_TIMESTAMP" if retired else "NULL") + ")"
        ),
        {"d": device_id},
    )


def test_migration_0017_keys_only_devices_in_service(empty_database_url: str) -> None:
    engine = make_engine(empty_database_url)
    cfg = alembic_config(empty_database_url)
    try:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "0016")
            assert _device_indexes(conn).get("ix_devices_device_id") is True
            command.upgrade(cfg, "0017")
            indexes = _device_indexes(conn)
            assert "ix_devices_device_id" not in indexes
            assert indexes["ix_devices_device_id_active"] is True
            _add(conn, "cs-mig-0001", retired=True)
            _add(conn, "cs-mig-0001", retired=False)
            with pytest.raises(IntegrityError), conn.begin_nested():
                _add(conn, "cs-mig-0001", retired=False)
            # Down again once the retired duplicate is gone: the plain key is back.
            conn.execute(text("delete from devices where retired_at is not null"))
            command.downgrade(cfg, "0016")
            assert _device_indexes(conn).get("ix_devices_device_id") is True
            assert "retired_at" not in {c["name"] for c in inspect(conn).get_columns("devices")}
            with pytest.raises(IntegrityError), conn.begin_nested():
                conn.execute(
                    text(
                        "insert into devices (device_id, board, status, state, power_mode,"
                        " report_interval_s, created_at) values ('cs-mig-0001', 'devkitc-sht41',"
                        " 'unknown', 'unknown', 'mains', 900, CURRENT_TIMESTAMP)"
                    )
                )
            conn.execute(text("delete from devices"))
            command.downgrade(cfg, "base")
    finally:
        engine.dispose()
