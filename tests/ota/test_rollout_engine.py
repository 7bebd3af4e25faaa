"""The rollout engine without VMs: waves, automatic pause, pins, resume, late joiners, and the
release checks (unsigned or untrusted releases are refused)."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from fleet.access.principal import SYSTEM
from fleet.core.context import FleetContext
from fleet.models import AuditEntry, Device
from fleet.models.base import utcnow
from fleet.models.ota import Rollout, RolloutDevice
from fleet.ota import bundle, rollout, service, signing
from fleet.ota.engine import tick
from fleet.ota.errors import NoBroker, OtaError
from fleet.ota.package import ReleaseFile

FILES = {"cs/app.mpy": b"M\x06app", "cs/__init__.mpy": b"M\x06init"}


class Recorder:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes]] = []

    def publish(self, topic: str, payload: bytes, *, qos: int, retain: bool = False) -> bool:
        if not retain or qos != 1:
            raise AssertionError("offers must be retained QoS 1 messages")
        self.sent.append((topic, payload))
        return True

    def offers(self) -> dict[str, dict]:
        out: dict[str, dict] = {}
        for topic, payload in self.sent:
            device = topic.split("/")[3]
            if payload:
                out[device] = json.loads(payload)
            else:
                out.pop(device, None)
        return out


@pytest.fixture
def key(tmp_path: Path) -> signing.SigningKey:
    return signing.generate(tmp_path / "keys")


def _release(key: signing.SigningKey | None, version: str = "0.2.0") -> ReleaseFile:
    rel = ReleaseFile.from_built(bundle.build_app(version, files=FILES))
    if key is not None:
        rel.sign(key)
    return rel


def rollout_to_all(s: Session, release_id: int, failure_threshold: float = 0.1) -> int:
    """A rollout of one wave to every device, without a soak."""
    return rollout.create_rollout(
        s,
        SYSTEM,
        release_id=release_id,
        target={"all": True},
        waves=["100%"],
        soak_s=0,
        failure_threshold=failure_threshold,
    ).id


def _devices(ctx: FleetContext, n: int) -> None:
    with ctx.sessions.begin() as s:
        for i in range(n):
            s.add(Device(device_id=f"cs-r-{i:03d}", fw_version="0.1.0", state="online"))


def _report(ctx: FleetContext, device_id: str, job: str, state: str, **extra: str) -> None:
    with ctx.sessions.begin() as s:
        pk = s.scalars(select(Device.id).where(Device.device_id == device_id)).one()
        doc = {"sv": 1, "id": job, "state": state, "app": extra.pop("app", "0.1.0"), **extra}
        service.record_progress(s, pk, doc)


def _state(ctx: FleetContext, rollout_id: int) -> tuple[str, int, str | None]:
    with ctx.sessions() as s:
        r = s.get(Rollout, rollout_id)
        assert r is not None
        return r.state, r.wave, r.pause_reason


def test_unsigned_and_untrusted_releases_are_refused(
    fleet_ctx: FleetContext, key: signing.SigningKey, tmp_path: Path
) -> None:
    with fleet_ctx.sessions.begin() as s:
        service.trust_key(s, SYSTEM, key.public_hex)
        with pytest.raises(OtaError, match="unsigned"):
            service.publish_release(s, SYSTEM, _release(None))
        with pytest.raises(OtaError, match="no valid signature by a trusted key"):
            service.publish_release(s, SYSTEM, _release(signing.generate(tmp_path / "other")))
        tampered = _release(key)
        tampered.blob = tampered.blob[:-1] + b"X"
        with pytest.raises(OtaError, match="does not match"):
            service.publish_release(s, SYSTEM, tampered)
        row = service.publish_release(s, SYSTEM, _release(key))
        assert row.signer_kid == key.kid and len(row.blob_path) >= 40
        assert service.blob_by_path(s, row.blob_path) == _release(key).blob


def test_waves_pause_on_failures_skip_pins_and_finish_after_resume(
    fleet_ctx: FleetContext, key: signing.SigningKey
) -> None:
    _devices(fleet_ctx, 20)
    pub = Recorder()
    with fleet_ctx.sessions.begin() as s:
        service.trust_key(s, SYSTEM, key.public_hex)
        release = service.publish_release(s, SYSTEM, _release(key))
        service.pin(s, SYSTEM, "cs-r-019", None, "landlord asked")
        r = rollout.create_rollout(
            s,
            SYSTEM,
            release_id=release.id,
            target={"all": True},
            waves=[2, "50%", "100%"],
            soak_s=0,
            failure_threshold=0.2,
        )
        rid = r.id

    def run() -> None:
        tick(fleet_ctx.sessions, pub, "http://fleet.test:8000")

    run()
    offers = pub.offers()
    assert len(offers) == 2  # the canary wave only
    for device, body in offers.items():
        assert body["url"].startswith("http://fleet.test:8000/ota/blobs/")
        assert body["version"] == "0.2.0" and body["sigs"][0][0] == key.kid
        _report(fleet_ctx, device, body["id"], "succeeded", app="0.2.0")
    run()  # wave done: the soak (0 s) starts
    run()  # soak over: wave 2
    run()
    offers = pub.offers()
    assert len(offers) == 10  # 50 % of the 19 unpinned devices, rounded up
    canary = list(offers)[:2]
    # 3 of the 8 new devices fail; the other 5 have not begun, so they do not dilute the share.
    bad = [d for d in offers if d not in canary][:3]
    for device in bad:
        _report(fleet_ctx, device, offers[device]["id"], "failed", reason="self-test: no sensor")
    run()
    state, wave, reason = _state(fleet_ctx, rid)
    assert state == "paused" and wave == 1
    assert reason is not None and "3 of 3 updates failed" in reason and "no sensor" in reason
    # Offers not taken up yet are withdrawn (the failed jobs stay: devices never retry them).
    assert set(pub.offers()) == set(canary) | set(bad)
    run()
    assert set(pub.offers()) == set(canary) | set(bad)
    with fleet_ctx.sessions.begin() as s:
        rollout.resume(s, SYSTEM, s.get(Rollout, rid))
    for _ in range(12):
        run()
        for device, body in pub.offers().items():
            with fleet_ctx.sessions() as s:
                member = s.scalars(
                    select(RolloutDevice).where(RolloutDevice.job_id == body["id"])
                ).one()
                done = member.state == "succeeded"
            if not done:
                _report(fleet_ctx, device, body["id"], "succeeded", app="0.2.0")
    assert _state(fleet_ctx, rid)[0] == "completed"
    with fleet_ctx.sessions() as s:
        versions = {d: v for d, v in s.execute(select(Device.device_id, Device.fw_version))}
        actions = set(s.scalars(select(AuditEntry.action)))
    assert versions.pop("cs-r-019") == "0.1.0"  # pinned: left alone
    assert set(versions.values()) == {"0.2.0"}
    assert not any(t.startswith("cs/v1/d/cs-r-019/") for t, _ in pub.sent)
    assert {"ota.rollout.pause", "ota.rollout.resume", "ota.rollout.complete"} <= actions
    # A device that joins the target later is offered the release.
    _devices_late(fleet_ctx)
    run()
    assert "cs-late-001" in pub.offers()


def _devices_late(ctx: FleetContext) -> None:
    with ctx.sessions.begin() as s:
        s.add(Device(device_id="cs-late-001", fw_version="0.1.0", state="online"))


def test_a_failing_canary_pauses_the_rollout_by_itself(
    fleet_ctx: FleetContext, key: signing.SigningKey
) -> None:
    _devices(fleet_ctx, 10)
    pub = Recorder()
    with fleet_ctx.sessions.begin() as s:
        service.trust_key(s, SYSTEM, key.public_hex)
        release = service.publish_release(s, SYSTEM, _release(key))
        rid = rollout.create_rollout(
            s,
            SYSTEM,
            release_id=release.id,
            target={"all": True},
            waves=[2, "100%"],
            soak_s=0,
            failure_threshold=0.0,
        ).id
    tick(fleet_ctx.sessions, pub, "http://x")
    device, body = next(iter(pub.offers().items()))
    _report(fleet_ctx, device, body["id"], "failed", reason="the new app crashed at boot")
    tick(fleet_ctx.sessions, pub, "http://x")
    state, wave, reason = _state(fleet_ctx, rid)
    assert (state, wave) == ("paused", 0)
    assert reason is not None and "crashed" in reason


@pytest.mark.parametrize("waves", [[], [0], ["0%"], ["150%"], ["ten"], [True]])
def test_bad_waves_are_refused(waves: list) -> None:
    with pytest.raises(OtaError, match="wave"):
        rollout.check_waves(waves)


def test_wave_sizes_grow_to_the_whole_target() -> None:
    assert rollout.cumulative_sizes([2, "10%", "50%", "100%"], 50) == [2, 5, 25, 50]
    assert rollout.cumulative_sizes([5, "10%"], 3) == [3, 3]


def _health(ctx: FleetContext, device_id: str, faults: str, seconds_ago: float) -> None:
    with ctx.sessions.begin() as s:
        device = s.scalars(select(Device).where(Device.device_id == device_id)).one()
        device.health = {"sensor_faults": faults, "fw_version": "0.2.0"}
        device.health_at = utcnow() - timedelta(seconds=seconds_ago)


def _canary_rollout(ctx: FleetContext, key: signing.SigningKey, soak_s: int) -> int:
    with ctx.sessions.begin() as s:
        service.trust_key(s, SYSTEM, key.public_hex)
        release = service.publish_release(s, SYSTEM, _release(key))
        return rollout.create_rollout(
            s,
            SYSTEM,
            release_id=release.id,
            target={"all": True},
            waves=[2, "100%"],
            soak_s=soak_s,
            failure_threshold=0.1,
        ).id


def test_only_health_sent_after_the_update_judges_the_release(
    fleet_ctx: FleetContext, key: signing.SigningKey
) -> None:
    _devices(fleet_ctx, 10)
    pub = Recorder()
    rid = _canary_rollout(fleet_ctx, key, soak_s=3600)
    tick(fleet_ctx.sessions, pub, "http://x")
    canary = pub.offers()
    for device, body in canary.items():
        # The trial boot's first health still carries a sensor flag from before the update.
        _health(fleet_ctx, device, "sht4x:nack", seconds_ago=1)
        _report(fleet_ctx, device, body["id"], "succeeded", app="0.2.0")
    tick(fleet_ctx.sessions, pub, "http://x")
    assert _state(fleet_ctx, rid)[0] == "running"
    # Health sent by the new release itself that shows the fault does stop the rollout.
    _health(fleet_ctx, next(iter(canary)), "sht4x:nack", seconds_ago=-1)
    tick(fleet_ctx.sessions, pub, "http://x")
    state, wave, reason = _state(fleet_ctx, rid)
    assert (state, wave) == ("paused", 0)
    assert reason is not None and "sensor faults" in reason


def test_an_offer_taken_before_a_pause_counts_after_the_resume(
    fleet_ctx: FleetContext, key: signing.SigningKey
) -> None:
    _devices(fleet_ctx, 10)
    pub = Recorder()
    rid = _canary_rollout(fleet_ctx, key, soak_s=0)
    tick(fleet_ctx.sessions, pub, "http://x")
    (bad, bad_offer), (busy, first) = pub.offers().items()
    _report(fleet_ctx, bad, bad_offer["id"], "failed", reason="no sensor reading")
    tick(fleet_ctx.sessions, pub, "http://x")
    assert _state(fleet_ctx, rid)[0] == "paused"  # `busy` had not reported yet: withdrawn
    with fleet_ctx.sessions.begin() as s:
        rollout.resume(s, SYSTEM, s.get(Rollout, rid))
    tick(fleet_ctx.sessions, pub, "http://x")
    again = pub.offers()[busy]
    assert again["id"] != first["id"]
    # The device had saved the first offer and goes on with it: its reports still count,
    # except a failure, which the newer offer gets to retry.
    _report(fleet_ctx, busy, first["id"], "failed", reason="network")
    _report(fleet_ctx, busy, first["id"], "downloading")
    with fleet_ctx.sessions() as s:
        member = s.scalars(select(RolloutDevice).where(RolloutDevice.job_id == again["id"])).one()
        assert member.state == "downloading"
    _report(fleet_ctx, busy, first["id"], "succeeded", app="0.2.0")
    _report(fleet_ctx, bad, pub.offers()[bad]["id"], "succeeded", app="0.2.0")
    for _ in range(4):
        tick(fleet_ctx.sessions, pub, "http://x")
    with fleet_ctx.sessions() as s:
        states = set(s.scalars(select(RolloutDevice.state).where(RolloutDevice.rollout_id == rid)))
    assert _state(fleet_ctx, rid)[1] == 1 and "failed" not in states


def test_updated_devices_going_offline_pause_the_wave_without_new_health(
    fleet_ctx: FleetContext, key: signing.SigningKey
) -> None:
    _devices(fleet_ctx, 10)
    pub = Recorder()
    rid = _canary_rollout(fleet_ctx, key, soak_s=3600)
    tick(fleet_ctx.sessions, pub, "http://x")
    for device, body in pub.offers().items():
        _health(fleet_ctx, device, "", seconds_ago=1)
        _report(fleet_ctx, device, body["id"], "succeeded", app="0.2.0")
        with fleet_ctx.sessions.begin() as s:
            row = s.scalars(select(Device).where(Device.device_id == device)).one()
            row.state = "offline"  # self-tested, reported, then never heard of again
    tick(fleet_ctx.sessions, pub, "http://x")
    state, wave, reason = _state(fleet_ctx, rid)
    assert (state, wave) == ("paused", 0)
    assert reason is not None and "offline" in reason


def test_pause_and_abort_without_a_broker_change_nothing(
    fleet_ctx: FleetContext, key: signing.SigningKey
) -> None:
    _devices(fleet_ctx, 2)
    with fleet_ctx.sessions.begin() as s:
        service.trust_key(s, SYSTEM, key.public_hex)
        rid = rollout_to_all(s, service.publish_release(s, SYSTEM, _release(key)).id)
    with fleet_ctx.sessions.begin() as s:
        r = s.get(Rollout, rid)
        assert r is not None
        for action in ("pause", "abort"):
            with pytest.raises(NoBroker, match=f"try {action} again"):
                rollout.act(s, SYSTEM, r, action, None)
        with pytest.raises(OtaError, match="only a paused one can resume"):
            rollout.act(s, SYSTEM, r, "resume", None)
    assert _state(fleet_ctx, rid)[0] == "running"


def test_restating_offers_republishes_each_devices_newest_offer_only(
    fleet_ctx: FleetContext, key: signing.SigningKey
) -> None:
    """What a broker that lost its retained messages is given back: an offer for a device
    whose newest membership is an open offer, an empty message where it was withdrawn, and
    never an older rollout's offer over a newer one (that would downgrade the device)."""
    _devices(fleet_ctx, 4)
    pub = Recorder()

    def new_rollout(version: str) -> int:
        with fleet_ctx.sessions.begin() as s:
            release = service.publish_release(s, SYSTEM, _release(key, version))
            return rollout_to_all(s, release.id, failure_threshold=1.0)

    with fleet_ctx.sessions.begin() as s:
        service.trust_key(s, SYSTEM, key.public_hex)
    new_rollout("0.2.0")
    tick(fleet_ctx.sessions, pub, "http://x")
    first = pub.offers()
    _report(fleet_ctx, "cs-r-000", first["cs-r-000"]["id"], "succeeded", app="0.2.0")
    newer = new_rollout("0.3.0")
    tick(fleet_ctx.sessions, pub, "http://x")
    second = pub.offers()
    assert {b["version"] for b in second.values()} == {"0.3.0"}
    _report(fleet_ctx, "cs-r-001", second["cs-r-001"]["id"], "downloading")
    with fleet_ctx.sessions.begin() as s:
        rollout.pause(s, SYSTEM, s.get(Rollout, newer), "by hand", pub)
    with fleet_ctx.sessions.begin() as s:
        s.add(Device(device_id="cs-r-004", fw_version="0.1.0", state="offline"))
    tick(fleet_ctx.sessions, pub, "http://x")  # the first rollout takes the late joiner
    late = pub.offers()["cs-r-004"]
    assert late["version"] == "0.2.0"

    lost = Recorder()  # what a broker that lost everything is sent
    with fleet_ctx.sessions() as s:
        offers, withdrawals, ok = rollout.restate_offers(s, lost, lambda r: "http://x/b")
    assert (offers, withdrawals, ok) == (1, 3, True)
    sent = dict(lost.sent)
    assert json.loads(sent.pop("cs/v1/d/cs-r-004/ota"))["id"] == late["id"]  # the same job
    # Withdrawn from the paused rollout; the first rollout's older offer is not brought back.
    assert sent == {f"cs/v1/d/cs-r-00{i}/ota": b"" for i in (0, 2, 3)}


def _new_rollout(
    ctx: FleetContext,
    key: signing.SigningKey,
    version: str,
    threshold: float,
    waves: list[int | str] | None = None,
) -> int:
    """A rollout of a new release to every device, without a soak; one wave unless given."""
    with ctx.sessions.begin() as s:
        service.trust_key(s, SYSTEM, key.public_hex)
        release = service.publish_release(s, SYSTEM, _release(key, version))
        return rollout.create_rollout(
            s,
            SYSTEM,
            release_id=release.id,
            target={"all": True},
            waves=waves or ["100%"],
            soak_s=0,
            failure_threshold=threshold,
        ).id


def _members(ctx: FleetContext, rollout_id: int) -> dict[str, tuple[str, str | None]]:
    with ctx.sessions() as s:
        rows = s.execute(
            select(Device.device_id, RolloutDevice.state, RolloutDevice.reason)
            .join(Device, Device.id == RolloutDevice.device_pk)
            .where(RolloutDevice.rollout_id == rollout_id)
        )
        return {device: (state, reason) for device, state, reason in rows}


def test_a_newer_rollout_overtakes_older_offers_so_the_older_rollout_finishes(
    fleet_ctx: FleetContext, key: signing.SigningKey
) -> None:
    """A device's topic retains only its newest offer: an older rollout's offer it replaced
    can never be taken up, and must not hold that rollout's wave open for good."""
    _devices(fleet_ctx, 3)  # online, on 0.1.0
    pub = Recorder()
    older = _new_rollout(fleet_ctx, key, "0.2.0", threshold=1.0)
    tick(fleet_ctx.sessions, pub, "http://x")
    first = pub.offers()
    _report(fleet_ctx, "cs-r-000", first["cs-r-000"]["id"], "succeeded", app="0.2.0")
    _report(fleet_ctx, "cs-r-001", first["cs-r-001"]["id"], "failed", reason="no sensor")
    newer = _new_rollout(fleet_ctx, key, "0.3.0", threshold=1.0)  # cs-r-002 has not begun
    tick(fleet_ctx.sessions, pub, "http://x")
    assert {o["version"] for o in pub.offers().values()} == {"0.3.0"}
    tick(fleet_ctx.sessions, pub, "http://x")  # the older wave is over: its soak (0 s) starts
    tick(fleet_ctx.sessions, pub, "http://x")
    assert _state(fleet_ctx, older)[0] == "completed"
    assert _members(fleet_ctx, older) == {
        "cs-r-000": ("succeeded", None),
        "cs-r-001": ("failed", "no sensor"),
        "cs-r-002": ("superseded", f"superseded by rollout {newer} (0.3.0)"),
    }
    assert {o["version"] for o in pub.offers().values()} == {"0.3.0"}


def test_devices_a_newer_rollout_took_over_do_not_dilute_the_failure_rate(
    fleet_ctx: FleetContext, key: signing.SigningKey
) -> None:
    """2 of the 4 devices that tried 0.2.0 failed: 50 %, over the 25 % threshold, even though
    a newer rollout took the other 6 before they began."""
    _devices(fleet_ctx, 10)
    pub = Recorder()
    older = _new_rollout(fleet_ctx, key, "0.2.0", threshold=0.25)
    tick(fleet_ctx.sessions, pub, "http://x")
    first = pub.offers()
    for i, state in enumerate(("failed", "failed", "succeeded", "succeeded")):
        device = f"cs-r-{i:03d}"
        _report(fleet_ctx, device, first[device]["id"], state, reason="no sensor", app="0.1.0")
    _new_rollout(fleet_ctx, key, "0.3.0", threshold=1.0)
    tick(fleet_ctx.sessions, pub, "http://x")
    states = [state for state, _ in _members(fleet_ctx, older).values()]
    assert states.count("superseded") == 6
    tick(fleet_ctx.sessions, pub, "http://x")
    state, _, reason = _state(fleet_ctx, older)
    assert state == "paused"
    assert reason is not None and "2 of 4 updates failed" in reason


def test_resuming_an_older_rollout_never_offers_over_a_newer_one(
    fleet_ctx: FleetContext, key: signing.SigningKey
) -> None:
    """Resuming retries failed and withdrawn devices, but not those a newer rollout has
    offered since: that would take them back to the older release. Their failures leave
    the wave's count, as retried ones do, so the resumed rollout can finish."""
    _devices(fleet_ctx, 3)
    pub = Recorder()
    older = _new_rollout(fleet_ctx, key, "0.2.0", threshold=0.1)
    tick(fleet_ctx.sessions, pub, "http://x")
    first = pub.offers()
    _report(fleet_ctx, "cs-r-000", first["cs-r-000"]["id"], "failed", reason="no sensor")
    tick(fleet_ctx.sessions, pub, "http://x")
    assert _state(fleet_ctx, older)[0] == "paused"  # its other offers are withdrawn
    newer = _new_rollout(fleet_ctx, key, "0.3.0", threshold=1.0)
    tick(fleet_ctx.sessions, pub, "http://x")
    with fleet_ctx.sessions.begin() as s:
        rollout.resume(s, SYSTEM, s.get(Rollout, older))
    offered_before = len(pub.sent)
    for _ in range(3):
        tick(fleet_ctx.sessions, pub, "http://x")
    assert pub.sent[offered_before:] == []  # nothing offered again
    assert {d: o["version"] for d, o in pub.offers().items()} == {
        f"cs-r-00{i}": "0.3.0" for i in range(3)
    }
    assert _state(fleet_ctx, older)[0] == "completed"
    reason = f"superseded by rollout {newer} (0.3.0)"
    assert _members(fleet_ctx, older) == {
        "cs-r-000": ("superseded", f"{reason} after failing: no sensor"),
        "cs-r-001": ("superseded", reason),
        "cs-r-002": ("superseded", reason),
    }


def test_an_older_rollout_leaves_devices_a_newer_one_has_taken(
    fleet_ctx: FleetContext, key: signing.SigningKey
) -> None:
    """A slow rollout whose later wave reaches devices a newer rollout has already updated
    must not take them back to its older release."""
    _devices(fleet_ctx, 3)
    pub = Recorder()
    older = _new_rollout(fleet_ctx, key, "0.2.0", threshold=1.0, waves=[1, "100%"])
    tick(fleet_ctx.sessions, pub, "http://x")  # the older canary: one device
    ((canary, offer),) = pub.offers().items()
    _report(fleet_ctx, canary, offer["id"], "succeeded", app="0.2.0")
    newer = _new_rollout(fleet_ctx, key, "0.3.0", threshold=1.0)
    tick(fleet_ctx.sessions, pub, "http://x")  # the newer rollout offers all three
    for device, body in pub.offers().items():
        assert body["version"] == "0.3.0"
        _report(fleet_ctx, device, body["id"], "succeeded", app="0.3.0")
    for _ in range(4):  # the older rollout's soak, then its second wave
        tick(fleet_ctx.sessions, pub, "http://x")
    assert {o["version"] for o in pub.offers().values()} == {"0.3.0"}
    assert _members(fleet_ctx, older) == {canary: ("succeeded", None)}
    assert _state(fleet_ctx, older)[0] == "completed"
    assert _state(fleet_ctx, newer)[0] == "completed"


def test_devices_an_aborted_rollout_never_updated_go_back_to_the_older_one(
    fleet_ctx: FleetContext, key: signing.SigningKey
) -> None:
    _devices(fleet_ctx, 2)
    pub = Recorder()
    older = _new_rollout(fleet_ctx, key, "0.2.0", threshold=1.0)
    tick(fleet_ctx.sessions, pub, "http://x")
    newer = _new_rollout(fleet_ctx, key, "0.3.0", threshold=1.0)
    tick(fleet_ctx.sessions, pub, "http://x")
    taken = pub.offers()["cs-r-000"]
    assert taken["version"] == "0.3.0"
    _report(fleet_ctx, "cs-r-000", taken["id"], "downloading")
    with fleet_ctx.sessions.begin() as s:
        rollout.abort(s, SYSTEM, s.get(Rollout, newer), pub)  # cs-r-001 had not begun
    tick(fleet_ctx.sessions, pub, "http://x")
    # The update cs-r-000 is taking keeps its offer; cs-r-001 is offered the older release.
    versions = {d: o["version"] for d, o in pub.offers().items()}
    assert versions == {"cs-r-000": "0.3.0", "cs-r-001": "0.2.0"}
    assert _members(fleet_ctx, older)["cs-r-001"] == ("offered", None)
    assert _members(fleet_ctx, older)["cs-r-000"][0] == "superseded"  # took 0.3.0 up
