"""Ingest on both databases: idempotent storage, recorded rejects, valid traffic unaffected."""

from __future__ import annotations

import json
import time

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from fleet.core.context import FleetContext
from fleet.ingest import store
from fleet.ingest.handler import IngestHandler
from fleet.ingest.profile import base_name
from fleet.loadgen import payloads
from fleet.models import Device, HealthSnapshot, Reading, RejectedMessage
from fleet.registry.devices import register_device
from tests.fleet.packs import telemetry

NOW = float(int(time.time()))
DEV = "cs-test-0001"


def _setup(ctx: FleetContext) -> IngestHandler:
    with ctx.sessions.begin() as session:
        register_device(session, device_id=DEV)
    return IngestHandler(ctx.sessions, clock=lambda: NOW)


def _count(ctx: FleetContext, model: type) -> int:
    with ctx.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_a_batch_mixing_new_and_stored_readings_counts_what_each_message_added(
    fleet_ctx: FleetContext,
) -> None:
    handler = _setup(fleet_ctx)
    up = f"cs/v1/d/{DEV}/up"
    stored = telemetry(DEV, NOW - 1800, [(0, 20.0, 50.0)])
    handler.handle(up, stored)
    overlapping = telemetry(DEV, NOW - 1800, [(0, 20.0, 50.0), (600, 20.5, 51.0)])
    fresh = telemetry(DEV, NOW - 600, [(0, 21.0, 52.0)])
    outcomes = handler.handle_batch([(up, stored), (up, overlapping), (up, fresh)])
    assert [o.inserted for o in outcomes] == [0, 2, 2]
    assert _count(fleet_ctx, Reading) == 6


def test_a_batch_rolled_back_after_staging_leaves_the_next_batch_working(
    fleet_ctx: FleetContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The first batch on a connection creates its staging table; when that transaction rolls
    # back, the table goes with it and the next batch must create it again.
    handler = _setup(fleet_ctx)
    up = f"cs/v1/d/{DEV}/up"

    def fail(*args: object) -> None:
        raise OperationalError("UPDATE devices", {}, Exception("connection lost"))

    monkeypatch.setattr(store, "update_devices", fail)
    with pytest.raises(OperationalError):
        handler.handle(up, telemetry(DEV, NOW - 900, [(0, 21.0, 55.0)]))
    monkeypatch.undo()
    assert _count(fleet_ctx, Reading) == 0
    again = handler.handle(up, telemetry(DEV, NOW - 900, [(0, 21.0, 55.0)]))
    assert (again.action, again.inserted) == ("stored", 2)


def test_a_connection_lost_mid_transaction_still_rolls_back(fleet_ctx: FleetContext) -> None:
    # The staging bookkeeping listens to every rollback; one on a connection invalidated by a
    # disconnect must go through, so the pool can replace the connection.
    _setup(fleet_ctx)
    with fleet_ctx.engine.connect() as conn:
        conn.begin()
        conn.execute(select(func.count()).select_from(Reading))
        conn.invalidate()
        conn.rollback()
        assert conn.execute(select(func.count()).select_from(Reading)).scalar() == 0


def test_redelivered_pack_stores_nothing_twice(fleet_ctx: FleetContext) -> None:
    handler = _setup(fleet_ctx)
    payload = telemetry(DEV, NOW - 900, [(0, 21.25, 55.5), (600, 21.5, 57.0)])
    first = handler.handle(f"cs/v1/d/{DEV}/up", payload)
    again = handler.handle(f"cs/v1/d/{DEV}/up", payload)
    assert (first.action, first.inserted) == ("stored", 4)
    assert (again.action, again.inserted) == ("stored", 0)
    assert _count(fleet_ctx, Reading) == 4
    with fleet_ctx.sessions() as session:
        rows = session.scalars(select(Reading).order_by(Reading.ts, Reading.metric)).all()
        assert [(r.metric, r.ts.timestamp(), r.value, r.unit) for r in rows] == [
            ("humidity", NOW - 900, 55.5, "%RH"),
            ("temperature", NOW - 900, 21.25, "Cel"),
            ("humidity", NOW - 300, 57.0, "%RH"),
            ("temperature", NOW - 300, 21.5, "Cel"),
        ]
        device = session.scalars(select(Device)).one()
        assert device.latest is not None
        assert device.latest["temperature"]["v"] == 21.5
        assert device.last_seen_at is not None


def test_a_redelivered_health_report_is_stored_once_and_never_replaces_a_newer_one(
    fleet_ctx: FleetContext,
) -> None:
    handler = _setup(fleet_ctx)
    topic = f"cs/v1/d/{DEV}/health"
    older = payloads.health(DEV, NOW - 600, uptime=100, reconnects=0)
    newer = payloads.health(DEV, NOW - 60, uptime=640, reconnects=0)
    handler.handle_batch([(topic, older), (topic, older)])  # redelivered within a batch
    handler.handle_batch([(topic, newer)])
    # Redelivered after the newer one, alone and in one batch with it, newest last.
    handler.handle_batch([(topic, older)])
    handler.handle_batch([(topic, newer), (topic, older)])
    with fleet_ctx.sessions() as session:
        snapshots = session.scalars(select(HealthSnapshot).order_by(HealthSnapshot.id)).all()
        assert [
            (h.sampled_at and h.sampled_at.timestamp(), h.data["uptime"]) for h in snapshots
        ] == [
            (NOW - 600, 100.0),
            (NOW - 60, 640.0),
        ]
        device = session.scalars(select(Device)).one()
        assert device.health is not None and device.health["uptime"] == 640.0
    # A new report, with an older one of the same batch after it, is the device's health.
    newest = payloads.health(DEV, NOW, uptime=700, reconnects=1)
    handler.handle_batch(
        [(topic, newest), (topic, payloads.health(DEV, NOW - 30, uptime=670, reconnects=1))]
    )
    assert _count(fleet_ctx, HealthSnapshot) == 4
    with fleet_ctx.sessions() as session:
        device = session.scalars(select(Device)).one()
        assert device.health is not None and device.health["uptime"] == 700.0


def test_latest_keeps_the_newest_value_of_each_metric_across_batches(
    fleet_ctx: FleetContext,
) -> None:
    handler = _setup(fleet_ctx)
    topic = f"cs/v1/d/{DEV}/up"
    surface = json.dumps(
        [
            {
                "bn": base_name(DEV),
                "bt": NOW - 100,
                "sv": 1,
                "n": "surface_temperature",
                "u": "Cel",
                "v": 14.5,
            }
        ]
    ).encode()
    handler.handle_batch([(topic, telemetry(DEV, NOW - 600, [(0, 20.0, 60.0)]))])
    # A late pack (store-and-forward) must not replace newer values; a new metric joins.
    handler.handle_batch([(topic, telemetry(DEV, NOW - 3600, [(0, 18.0, 80.0)])), (topic, surface)])
    # Same time as the stored value: the newer message wins.
    handler.handle_batch([(topic, telemetry(DEV, NOW - 600, [(0, 20.5, 61.0)]))])
    with fleet_ctx.sessions() as session:
        device = session.scalars(select(Device)).one()
        latest = {m: (v["v"], v["t"]) for m, v in (device.latest or {}).items()}
        assert latest == {
            "temperature": (20.5, NOW - 600),
            "humidity": (61.0, NOW - 600),
            "surface_temperature": (14.5, NOW - 100),
        }
        assert device.latest_at is not None and device.latest_at.timestamp() == NOW - 100


def test_rejects_are_recorded_and_valid_traffic_keeps_flowing(fleet_ctx: FleetContext) -> None:
    handler = _setup(fleet_ctx)
    cases = [
        (f"cs/v1/d/{DEV}/up", b"{oops", "malformed_json"),
        (
            "cs/v1/d/cs-stranger-9/up",
            telemetry("cs-stranger-9", NOW, [(0, 20, 50)]),
            "unknown_device",
        ),
        (f"cs/v1/d/{DEV}/readings", telemetry(DEV, NOW, [(0, 20, 50)]), "unknown_topic"),
    ]
    for i, (topic, payload, reason) in enumerate(cases):
        outcome = handler.handle(topic, payload)
        assert (outcome.action, outcome.reason) == ("rejected", reason)
        ok = handler.handle(
            f"cs/v1/d/{DEV}/up", telemetry(DEV, NOW - 60 * i, [(0, 20.0 + i, 50.0)])
        )
        assert (ok.action, ok.inserted) == ("stored", 2)
    with fleet_ctx.sessions() as session:
        rejects = session.scalars(select(RejectedMessage).order_by(RejectedMessage.id)).all()
        assert [r.reason for r in rejects] == [c[2] for c in cases]
        assert rejects[0].payload_excerpt == "{oops"
        assert rejects[1].device_id == "cs-stranger-9"
        assert all(r.detail for r in rejects)
    assert _count(fleet_ctx, Reading) == 6


def test_a_redelivered_reject_is_recorded_once(fleet_ctx: FleetContext) -> None:
    # The broker sends a message again, flagged DUP, when the connection that carried it
    # ended before the ingest's acknowledgement, which follows the commit.
    handler = _setup(fleet_ctx)
    bad, other = f"cs/v1/d/{DEV}/up", "cs/v1/d/cs-stranger-9/up"
    handler.store([handler.decode(bad, b"{oops")])
    outcomes = handler.store(
        [
            handler.decode(bad, b"{oops", dup=True),  # stored before: not again
            handler.decode(bad, b"{oops!", dup=True),  # a different message: stored
            handler.decode(other, b"{oops", dup=True),  # another topic: stored
            handler.decode(other, b"{oops", dup=True),  # that one again in the same batch
        ]
    )
    assert [o.action for o in outcomes] == ["rejected"] * 4
    # A device that sends a bad message again without the DUP flag is counted again.
    handler.handle(bad, b"{oops")
    with fleet_ctx.sessions() as session:
        rows = session.execute(
            select(RejectedMessage.topic, RejectedMessage.payload_excerpt).order_by(
                RejectedMessage.id
            )
        ).all()
    assert [tuple(r) for r in rows] == [
        (bad, "{oops"),
        (bad, "{oops!"),
        (other, "{oops"),
        (bad, "{oops"),
    ]


@pytest.mark.parametrize("kind", ["up", "health", "status", "ota/progress"])
def test_a_payload_nested_too_deeply_is_recorded_as_malformed(
    fleet_ctx: FleetContext, kind: str
) -> None:
    handler = _setup(fleet_ctx)
    deep = b"[" * 30_000 + b"]" * 30_000  # past the parsers' nesting limits, under 64 KB
    outcome = handler.handle(f"cs/v1/d/{DEV}/{kind}", deep)
    assert (outcome.action, outcome.reason) == ("rejected", "malformed_json")
    assert outcome.detail and "too deeply" in outcome.detail
    ok = handler.handle(f"cs/v1/d/{DEV}/up", telemetry(DEV, NOW, [(0, 20.0, 50.0)]))
    assert (ok.action, ok.inserted) == ("stored", 2)


def test_a_decoder_failure_is_recorded_as_a_reject_not_raised(
    fleet_ctx: FleetContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Stands for a check that raises on a payload nobody foresaw: on the intake thread the
    # exception would drop the broker connection and return with every redelivery.
    def broken(payload: bytes, device_id: str, *, now: float) -> None:
        raise KeyError("unforeseen")

    handler = _setup(fleet_ctx)
    monkeypatch.setattr("fleet.ingest.batch.decode_telemetry", broken)
    outcome = handler.handle(f"cs/v1/d/{DEV}/up", telemetry(DEV, NOW, [(0, 20.0, 50.0)]))
    assert (outcome.action, outcome.reason) == ("rejected", "decode_failed")
    assert outcome.detail and "KeyError" in outcome.detail
    with fleet_ctx.sessions() as session:
        assert session.scalars(select(RejectedMessage.reason)).all() == ["decode_failed"]


def test_status_and_health_update_the_device(fleet_ctx: FleetContext) -> None:
    handler = _setup(fleet_ctx)
    assert handler.handle(f"cs/v1/d/{DEV}/status", b'{"sv":1,"state":"online"}').action == "stored"
    health = [
        {"bn": f"urn:dev:cs:{DEV}:", "bt": NOW, "sv": 1, "n": "uptime", "u": "s", "v": 42},
        {"n": "fw_version", "vs": "0.1.0"},
    ]
    assert handler.handle(f"cs/v1/d/{DEV}/health", json.dumps(health).encode()).action == "stored"
    bad = handler.handle(f"cs/v1/d/{DEV}/status", b'{"sv":1,"state":"dancing"}')
    assert bad.reason == "bad_status"
    with fleet_ctx.sessions() as session:
        device = session.scalars(select(Device)).one()
        assert device.status == "online"
        assert device.fw_version == "0.1.0"
        assert device.health == {"uptime": 42.0, "fw_version": "0.1.0"}


def test_fleet_own_downstream_topics_are_ignored(fleet_ctx: FleetContext) -> None:
    handler = _setup(fleet_ctx)
    assert handler.handle(f"cs/v1/d/{DEV}/cmd", b'{"id":"1"}').action == "ignored"
    assert _count(fleet_ctx, RejectedMessage) == 0


def test_days_late_readings_reopen_processed_risk_hours(fleet_ctx: FleetContext) -> None:
    from datetime import UTC, datetime, timedelta

    from fleet.models import Placement, PlacementRisk, Property
    from fleet.registry import places

    with fleet_ctx.sessions.begin() as s:
        borough = places.create_borough(s, code="brent", name="Brent")
        prop = places.create_property(s, borough=borough, reference="BR-1")
        placement = places.create_placement(s, prop=prop, room="bathroom")
        device = register_device(s, device_id=DEV, borough_id=borough.id)
        device.placement_id = placement.id
        s.flush()
        processed_to = datetime.fromtimestamp(NOW, UTC) - timedelta(hours=2)
        s.add(PlacementRisk(placement_id=placement.id, property_id=prop.id, last_hour=processed_to))
        placement_id = placement.id
    handler = IngestHandler(fleet_ctx.sessions, clock=lambda: NOW)
    recent = telemetry(DEV, NOW - 3600 * 5, [(0, 20.0, 60.0)])
    assert handler.handle(f"cs/v1/d/{DEV}/up", recent).inserted == 2
    with fleet_ctx.sessions() as s:
        # Recent late data is the risk worker's own job: nothing flagged on the ingest path.
        assert s.get(PlacementRisk, placement_id).recompute_from is None
    four_days = NOW - 4 * 86400
    assert handler.handle(f"cs/v1/d/{DEV}/up", telemetry(DEV, four_days, [(0, 20, 90)])).inserted
    with fleet_ctx.sessions() as s:
        flagged = s.get(PlacementRisk, placement_id).recompute_from
        assert flagged == datetime.fromtimestamp(four_days, UTC)
        assert s.get(Placement, placement_id) is not None and s.get(Property, prop.id)
