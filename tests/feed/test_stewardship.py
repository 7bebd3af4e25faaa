"""Retention purge, consent withdrawal and key rotation: effects and audit entries."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from fleet.feed import snapshot, stewardship
from fleet.feed.live import NewReading, messages_for
from fleet.models import AuditEntry, Device, Reading
from tests.feed.conftest import POINTS, SERVICE_ROOT, STEP, T0, FeedWorld


def readings(world: FeedWorld, device_id: str, metric: str | None = None) -> int:
    with world.ctx.sessions() as s:
        stmt = (
            select(func.count()).select_from(Reading).join(Device, Device.id == Reading.device_pk)
        )
        stmt = stmt.where(Device.device_id == device_id)
        if metric is not None:
            stmt = stmt.where(Reading.metric == metric)
        return int(s.scalar(stmt) or 0)


def audit(world: FeedWorld, action: str) -> list[AuditEntry]:
    with world.ctx.sessions() as s:
        return list(s.scalars(select(AuditEntry).where(AuditEntry.action == action)))


def test_retention_purge_deletes_expired_readings_and_is_audited(
    client: TestClient, feed_world: FeedWorld
) -> None:
    staff = feed_world.headers("staff_hackney")
    # Humidity kept 30 days, everything else the default 730 days.
    response = client.put(
        "/api/v1/feed/policies/hackney",
        json={"metric_retention_days": {"humidity": 30}},
        headers=staff,
    )
    assert response.status_code == 200, response.text
    assert client.get("/sta/v1.1/Datastreams(2)").json()["properties"]["retentionDays"] == 30
    # "now" is 30 days after the sixth sample: samples 0-5 of humidity are expired.
    now = T0 + 5 * STEP + timedelta(days=30, seconds=1)
    with feed_world.ctx.sessions.begin() as s:
        report = stewardship.purge_expired(s, now=now)
    assert report == {"hackney": {"humidity": 6}}
    assert readings(feed_world, "cs-hackney-0001", "humidity") == POINTS - 6
    assert readings(feed_world, "cs-hackney-0001", "temperature") == POINTS
    assert readings(feed_world, "cs-camden-0001") == 3 * POINTS
    (entry,) = audit(feed_world, "feed.retention_purge")
    assert entry.actor == "system" and entry.detail is not None
    assert entry.detail["deleted"] == {"humidity": 6}
    assert entry.detail["retention_days"]["humidity"] == 30
    assert entry.borough_id == feed_world.borough_ids["hackney"]
    (change,) = audit(feed_world, "feed.policy_changed")
    assert change.detail == {
        "before": {"metric_retention_days": None},
        "after": {"metric_retention_days": {"humidity": 30}},
    }
    # A second run has nothing left to delete and records nothing new.
    with feed_world.ctx.sessions.begin() as s:
        assert stewardship.purge_expired(s, now=now) == {}
    assert len(audit(feed_world, "feed.retention_purge")) == 1


def _feed_topics(world: FeedWorld) -> set[str]:
    snapshot.sync_committed(world.ctx.sessions)  # as the publisher does before each batch
    with world.ctx.sessions() as s:
        rows = s.execute(
            select(Reading.id, Reading.device_pk, Reading.metric, Reading.ts, Reading.value)
        ).all()
        snap = snapshot.load(s)
    return {
        topic
        for topic, _ in messages_for(
            [NewReading(*r) for r in rows], snap, service_root=SERVICE_ROOT
        )
    }


def test_withdrawal_stops_publication_and_deletes_per_policy(
    client: TestClient, feed_world: FeedWorld
) -> None:
    hackney = feed_world.property_ids["hackney"]
    assert "v1.1/Datastreams(1)/Observations" in _feed_topics(feed_world)
    response = client.put(
        f"/api/v1/feed/consent/{hackney}",
        json={"state": "withdrawn", "note": "tenant asked by phone"},
        headers=feed_world.headers("staff_hackney"),
    )
    assert response.status_code == 200, response.text
    assert response.json() == {
        "property_id": hackney,
        "state": "withdrawn",
        "deleted_readings": 3 * POINTS,
    }
    assert readings(feed_world, "cs-hackney-0001") == 0
    assert readings(feed_world, "cs-camden-0001") == 3 * POINTS
    # Gone from every level of the REST API and from the live feed.
    for headers in ({}, feed_world.headers("staff_hackney")):
        things = client.get("/sta/v1.1/Things", headers=headers).json()["value"]
        assert [t["@iot.id"] for t in things] == [2]
        assert client.get("/sta/v1.1/Datastreams(1)", headers=headers).status_code == 404
    topics = _feed_topics(feed_world)
    assert not any("Datastreams(1)" in t or "/ds/1" in t for t in topics)
    assert "v1.1/Datastreams(4)/Observations" in topics
    (entry,) = audit(feed_world, "feed.consent_withdrawn")
    assert entry.target_type == "property" and entry.target_id == str(hackney)
    assert entry.actor.endswith("(staff_hackney@example.org)")
    assert entry.detail == {
        "deleted_readings": 3 * POINTS,
        "policy": "delete",
        "note": "tenant asked by phone",
    }


def test_keep_internal_policy_keeps_readings_and_regranting_republishes(
    client: TestClient, feed_world: FeedWorld
) -> None:
    staff = feed_world.headers("staff_camden")
    camden = feed_world.property_ids["camden"]
    client.put(
        "/api/v1/feed/policies/camden", json={"withdrawal_action": "keep_internal"}, headers=staff
    )
    withdrawn = client.put(
        f"/api/v1/feed/consent/{camden}", json={"state": "withdrawn"}, headers=staff
    )
    assert withdrawn.json()["deleted_readings"] == 0
    assert readings(feed_world, "cs-camden-0001") == 3 * POINTS
    assert client.get("/sta/v1.1/Things(2)").status_code == 404
    granted = client.put(f"/api/v1/feed/consent/{camden}", json={"state": "granted"}, headers=staff)
    assert granted.status_code == 200
    assert client.get("/sta/v1.1/Things(2)").status_code == 200
    assert [e.action for e in audit(feed_world, "feed.consent_granted")] == ["feed.consent_granted"]


def test_consent_is_borough_scoped(client: TestClient, feed_world: FeedWorld) -> None:
    camden = feed_world.property_ids["camden"]
    response = client.put(
        f"/api/v1/feed/consent/{camden}",
        json={"state": "withdrawn"},
        headers=feed_world.headers("staff_hackney"),
    )
    assert response.status_code == 404
    assert readings(feed_world, "cs-camden-0001") == 3 * POINTS


def test_key_rotation_changes_pseudonyms_and_is_audited(
    client: TestClient, feed_world: FeedWorld
) -> None:
    before = client.get("/sta/v1.1/Things(1)").json()["properties"]["property"]
    assert before.startswith("p1-")
    refused = client.post("/api/v1/feed/keys/rotate", headers=feed_world.headers("staff_hackney"))
    assert refused.status_code == 403
    response = client.post("/api/v1/feed/keys/rotate", headers=feed_world.headers("admin"))
    assert response.json() == {"version": 2}
    after = client.get("/sta/v1.1/Things(1)").json()["properties"]["property"]
    assert after.startswith("p2-") and after[3:] != before[3:]
    # Stable between requests under one key.
    assert client.get("/sta/v1.1/Things(1)").json()["properties"]["property"] == after
    (entry,) = audit(feed_world, "feed.key_rotated")
    assert entry.target_id == "2"
