"""What a rollout refuses and how it settles: explicit targets only, a plan that ends at
100 %, the anti-rollback floor, duplicates, failure shares of devices that tried, members
that went silent, aborting a completed rollout, and the audit of a new rollout."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from fleet.access.principal import SYSTEM
from fleet.core.context import FleetContext
from fleet.models import AuditEntry, Device
from fleet.models.base import utcnow
from fleet.models.ota import Rollout, RolloutDevice
from fleet.ota import bundle, rollout, service, signing
from fleet.ota.engine import tick
from fleet.ota.errors import Invalid, OtaError
from fleet.ota.package import ReleaseFile
from tests.ota.test_rollout_engine import (
    FILES,
    Recorder,
    _devices,
    _members,
    _release,
    _report,
    _state,
)


@pytest.fixture
def key(tmp_path: Path) -> signing.SigningKey:
    return signing.generate(tmp_path / "keys")


def _publish(ctx: FleetContext, key: signing.SigningKey, version: str, **build: Any) -> int:
    rel = ReleaseFile.from_built(bundle.build_app(version, files=FILES, **build))
    rel.sign(key)
    with ctx.sessions.begin() as s:
        service.trust_key(s, SYSTEM, key.public_hex)
        return service.publish_release(s, SYSTEM, rel).id


def _create(ctx: FleetContext, release_id: int, target: dict[str, Any], **kw: Any) -> int:
    args: dict[str, Any] = {"waves": ["100%"], "soak_s": 0, "failure_threshold": 0.1, **kw}
    with ctx.sessions.begin() as s:
        return rollout.create_rollout(s, SYSTEM, release_id=release_id, target=target, **args).id


@pytest.mark.parametrize(
    ("target", "reason"),
    [
        ({}, "the target names no devices"),
        ({"device_ids": []}, "device_ids is empty"),
        ({"device_ids": ["cs-r-000", "  "]}, "blank device id"),
        ({"boroughId": 1}, "unknown target key 'boroughId'"),
        ({"tag": " "}, "target.tag is blank"),
        ({"tag": None, "board": None, "device_ids": None}, "the target names no devices"),
        ({"all": True, "tag": "pilot"}, "cannot be combined with tag"),
        ({"all": "yes"}, "target.all is true"),
    ],
)
def test_an_empty_or_misspelt_target_is_refused_not_the_whole_fleet(
    fleet_ctx: FleetContext, key: signing.SigningKey, target: dict[str, Any], reason: str
) -> None:
    _devices(fleet_ctx, 3)
    release_id = _publish(fleet_ctx, key, "0.2.0")
    with pytest.raises(Invalid, match=reason):
        _create(fleet_ctx, release_id, target)
    with fleet_ctx.sessions() as s:
        assert s.scalars(select(Rollout)).all() == []


def test_every_device_only_when_asked_for(fleet_ctx: FleetContext, key: signing.SigningKey) -> None:
    _devices(fleet_ctx, 3)
    rid = _create(fleet_ctx, _publish(fleet_ctx, key, "0.2.0"), {"all": True})
    pub = Recorder()
    tick(fleet_ctx.sessions, pub, "http://x")
    assert set(pub.offers()) == {"cs-r-000", "cs-r-001", "cs-r-002"}
    with fleet_ctx.sessions() as s:
        r = s.get(Rollout, rid)
        assert r is not None and r.target == {"all": True}
        entry = s.scalars(select(AuditEntry).where(AuditEntry.action == "ota.rollout.create")).one()
    # The audit entry says whom the rollout was for and how it was to go.
    assert entry.detail == {
        "release": "0.2.0",
        "target": {"all": True},
        "devices": 3,
        "waves": ["100%"],
        "soak_s": 0,
        "failure_threshold": 0.1,
    }


@pytest.mark.parametrize("waves", [[1], [2, "10%"], ["50%"], [1, 3]])
def test_a_plan_that_does_not_end_at_100_percent_is_refused(waves: list[Any]) -> None:
    with pytest.raises(Invalid, match='the last wave must be "100%"'):
        rollout.check_waves(waves)
    assert rollout.check_waves([*waves, "100%"]) == [*waves, "100%"]


def test_devices_that_never_began_do_not_dilute_the_failure_share(
    fleet_ctx: FleetContext, key: signing.SigningKey
) -> None:
    """Both devices that tried the release failed (100 % > 50 %); the two offered devices
    that are away never began, so the wave pauses instead of going on to everyone."""
    _devices(fleet_ctx, 5)
    with fleet_ctx.sessions.begin() as s:
        s.execute(
            update(Device)
            .where(Device.device_id.in_(["cs-r-002", "cs-r-003", "cs-r-004"]))
            .values(state="offline")
        )
    rid = _create(
        fleet_ctx,
        _publish(fleet_ctx, key, "0.2.0"),
        {"all": True},
        waves=[4, "100%"],
        failure_threshold=0.5,
    )
    pub = Recorder()
    tick(fleet_ctx.sessions, pub, "http://x")
    offers = pub.offers()
    assert len(offers) == 4
    for device in ("cs-r-000", "cs-r-001"):
        _report(fleet_ctx, device, offers[device]["id"], "failed", reason="crashed at import")
    tick(fleet_ctx.sessions, pub, "http://x")
    state, wave, reason = _state(fleet_ctx, rid)
    assert (state, wave) == ("paused", 0)
    assert reason is not None and "2 of 2 updates failed" in reason


def test_a_member_silent_mid_update_fails_after_the_timeout_and_feeds_the_pause(
    fleet_ctx: FleetContext, key: signing.SigningKey
) -> None:
    _devices(fleet_ctx, 2)
    rid = _create(fleet_ctx, _publish(fleet_ctx, key, "0.2.0"), {"all": True})
    pub = Recorder()
    tick(fleet_ctx.sessions, pub, "http://x")
    offers = pub.offers()
    _report(fleet_ctx, "cs-r-000", offers["cs-r-000"]["id"], "succeeded", app="0.2.0")
    _report(fleet_ctx, "cs-r-001", offers["cs-r-001"]["id"], "rebooting")
    tick(fleet_ctx.sessions, pub, "http://x", stall_s=1800)
    assert _state(fleet_ctx, rid)[0] == "running"  # still within the 30 minutes

    with fleet_ctx.sessions.begin() as s:  # ... then 31 minutes without a word
        s.execute(
            update(RolloutDevice)
            .where(RolloutDevice.state == "rebooting")
            .values(updated_at=utcnow() - timedelta(minutes=31))
        )
    tick(fleet_ctx.sessions, pub, "http://x", stall_s=1800)
    assert _members(fleet_ctx, rid)["cs-r-001"] == (
        "failed",
        "no progress for 30 minutes (last report: rebooting)",
    )
    state, _, reason = _state(fleet_ctx, rid)
    assert state == "paused" and reason is not None and "1 of 2 updates failed" in reason
    # The device was only slow: its own report, arriving after all, says what happened.
    _report(fleet_ctx, "cs-r-001", offers["cs-r-001"]["id"], "succeeded", app="0.2.0")
    assert _members(fleet_ctx, rid)["cs-r-001"] == ("succeeded", None)


def test_a_completed_rollout_can_be_aborted_and_stops_offering_late_joiners(
    fleet_ctx: FleetContext, key: signing.SigningKey
) -> None:
    _devices(fleet_ctx, 2)
    with fleet_ctx.sessions.begin() as s:
        s.execute(update(Device).where(Device.device_id == "cs-r-001").values(state="offline"))
    rid = _create(fleet_ctx, _publish(fleet_ctx, key, "0.2.0"), {"all": True})
    pub = Recorder()
    tick(fleet_ctx.sessions, pub, "http://x")
    _report(fleet_ctx, "cs-r-000", pub.offers()["cs-r-000"]["id"], "succeeded", app="0.2.0")
    for _ in range(2):  # the wave is done (the away device does not hold it); soak of 0 s
        tick(fleet_ctx.sessions, pub, "http://x")
    assert _state(fleet_ctx, rid)[0] == "completed"
    assert "cs-r-001" in pub.offers()  # kept for when it is back

    with fleet_ctx.sessions.begin() as s:
        rollout.act(s, SYSTEM, s.get(Rollout, rid), "abort", pub)
    assert _state(fleet_ctx, rid)[0] == "aborted"
    assert set(pub.offers()) == {"cs-r-000"}  # the untaken offer is withdrawn
    with fleet_ctx.sessions.begin() as s:
        s.add(Device(device_id="cs-late-001", fw_version="0.1.0", state="online"))
    tick(fleet_ctx.sessions, pub, "http://x")
    assert "cs-late-001" not in pub.offers()
    with fleet_ctx.sessions() as s:
        entry = s.scalars(select(AuditEntry).where(AuditEntry.action == "ota.rollout.abort")).one()
    assert entry.detail == {"was": "completed", "withdrawn": 1}
    with fleet_ctx.sessions.begin() as s, pytest.raises(OtaError, match="aborted already"):
        rollout.act(s, SYSTEM, s.get(Rollout, rid), "abort", pub)


def test_a_duplicate_rollout_is_refused_and_devices_on_the_release_are_settled(
    fleet_ctx: FleetContext, key: signing.SigningKey
) -> None:
    _devices(fleet_ctx, 3)
    release_id = _publish(fleet_ctx, key, "0.2.0")
    target = {"device_ids": ["cs-r-000", "cs-r-001"]}
    first = _create(fleet_ctx, release_id, target)
    with pytest.raises(OtaError, match=f"rollout {first} \\(running\\) already offers 0.2.0"):
        _create(fleet_ctx, release_id, {"device_ids": ["cs-r-001", "cs-r-000"]})
    pub = Recorder()
    tick(fleet_ctx.sessions, pub, "http://x")
    offers = pub.offers()
    _report(fleet_ctx, "cs-r-000", offers["cs-r-000"]["id"], "succeeded", app="0.2.0")
    # cs-r-001 got there another way (its progress reports were lost); health says it runs
    # 0.2.0, and a device ignores an offer of the version it runs: it must not wait for ever.
    with fleet_ctx.sessions.begin() as s:
        s.execute(update(Device).where(Device.device_id == "cs-r-001").values(fw_version="0.2.0"))
    for _ in range(3):
        tick(fleet_ctx.sessions, pub, "http://x")
    assert _members(fleet_ctx, first) == {
        "cs-r-000": ("succeeded", None),
        "cs-r-001": ("succeeded", "found running 0.2.0"),
    }
    assert _state(fleet_ctx, first)[0] == "completed"


def test_floors_above_the_version_and_rollouts_below_the_fleet_floor_are_refused(
    fleet_ctx: FleetContext, key: signing.SigningKey
) -> None:
    _devices(fleet_ctx, 1)
    with pytest.raises(OtaError, match=r"floor 0\.5\.0 is above the release's own version 0\.4\.0"):
        bundle.build_app("0.4.0", floor="0.5.0", files=FILES)
    # A manifest made some other way is refused at publishing, for the same reason.
    built = bundle.build_app("0.4.0", files=FILES)
    manifest = bundle.manifest_text({**built.info, "floor": "0.5.0"})
    rel = ReleaseFile(manifest, built.blob, [key.sign(manifest)], built.raw_size)
    with fleet_ctx.sessions.begin() as s:
        service.trust_key(s, SYSTEM, key.public_hex)
        with pytest.raises(OtaError, match=r"floor 0\.5\.0 is above the release's own version"):
            service.publish_release(s, SYSTEM, rel)

    old = _publish(fleet_ctx, key, "0.2.0")
    floored = _publish(fleet_ctx, key, "0.3.0", floor="0.3.0")
    with fleet_ctx.sessions() as s:
        assert service.get_release(s, floored).floor == "0.3.0"
        assert service.get_release(s, old).floor is None
    with pytest.raises(OtaError, match=r"0\.2\.0 is below the fleet's anti-rollback floor 0\.3\.0"):
        _create(fleet_ctx, old, {"all": True})
    assert _create(fleet_ctx, floored, {"all": True})


def test_a_tampered_manifest_is_reported_as_changed_not_as_an_untrusted_key(
    fleet_ctx: FleetContext, key: signing.SigningKey
) -> None:
    rel = _release(key)
    rel.manifest = rel.manifest.replace(b'"0.2.0"', b'"0.2.1"')
    with fleet_ctx.sessions.begin() as s:
        service.trust_key(s, SYSTEM, key.public_hex)
        with pytest.raises(OtaError, match=f"signature by {key.kid} does not match the manifest"):
            service.publish_release(s, SYSTEM, rel)


def test_pins_need_a_reason_and_a_real_version(
    fleet_ctx: FleetContext, key: signing.SigningKey
) -> None:
    _devices(fleet_ctx, 1)
    _publish(fleet_ctx, key, "0.2.0")
    with fleet_ctx.sessions.begin() as s:
        s.add(Device(device_id="cs-new-001", state="online"))  # no version reported yet
    refused = [
        ("cs-r-000", None, "", "say why"),
        ("cs-r-000", None, "x" * 401, "over 400 characters"),
        ("cs-r-000", "not a version at all", "hold", "is not x.y.z"),
        ("cs-r-000", "9.9.9-nonexistent", "hold", "no release 9.9.9-nonexistent is published"),
        ("cs-new-001", None, "hold", "has not reported a version"),
    ]
    with fleet_ctx.sessions.begin() as s:
        for device, version, reason, why in refused:
            with pytest.raises(Invalid, match=why):
                service.pin(s, SYSTEM, device, version, reason, known_only=True)
        assert service.pin(s, SYSTEM, "cs-r-000", None, "tenant").version == "0.1.0"
        assert service.pin(s, SYSTEM, "cs-r-000", "0.2.0", "hold", known_only=True)
        assert service.pin(s, SYSTEM, "cs-new-001", "0.2.0", " hold ", known_only=True).reason
