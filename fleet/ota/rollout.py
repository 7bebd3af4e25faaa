"""Rollouts in waves: who is targeted, offers on `cs/v1/d/{id}/ota`, automatic pause.

A tick (`advance`) is idempotent and runs from the engine thread: it offers the current wave,
pauses the rollout when the wave's failure rate passes the threshold or its health regresses,
waits the soak once the wave has finished, then moves to the next wave. After the last wave
the rollout stays open to devices that join the target later.

Rollouts may overlap. A device follows the newest rollout that has taken it (`newer_claims`):
older ones no longer offer it, which would take it back a release, and its open memberships
of older rollouts become `superseded`, so they neither hold their wave nor come back when
their rollout resumes. Its topic retains one offer, so only the newest could be taken anyway.
"""

from __future__ import annotations

import json
import math
import re
import secrets
from collections.abc import Callable, Collection, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from fleet.access import audit
from fleet.access.principal import SYSTEM, Principal
from fleet.access.roles import Scope
from fleet.models import Alert, Borough, Device, Estate, Placement, Property, Tag
from fleet.models.base import utcnow
from fleet.models.ota import Release, Rollout, RolloutDevice, VersionPin
from fleet.ota.errors import NoBroker, NotFound, OtaError
from fleet.ota.progress import IN_PROGRESS, TERMINAL

PCT = re.compile(r"^(\d{1,3}(?:\.\d+)?)%$")
OPEN = ("running", "paused")
# Open memberships an offer of a newer rollout overtakes: their offer is no longer retained.
OVERTAKEN = ("offered", "pending", "withdrawn")
# An aborted rollout still holds the devices that took its release up.
TAKEN = (*sorted(IN_PROGRESS), "succeeded")
SUPERSEDE_CHUNK = 500  # device ids per UPDATE, well inside SQLite's bound-parameter limit


class Publisher(Protocol):
    def publish(self, topic: str, payload: bytes, *, qos: int, retain: bool = False) -> bool: ...


def offer_topic(device_id: str) -> str:
    return f"cs/v1/d/{device_id}/ota"


def publish_offer(publisher: Publisher, device_id: str, payload: bytes) -> bool:
    """An offer, or its withdrawal when empty: the retained message on the device's topic,
    so a device that is away finds it when it comes back."""
    return publisher.publish(offer_topic(device_id), payload, qos=1, retain=True)


def check_waves(waves: Sequence[Any]) -> list[Any]:
    if not waves:
        raise OtaError('give at least one wave, e.g. [2, "10%", "50%", "100%"]')
    out: list[Any] = []
    for w in waves:
        count = isinstance(w, int) and not isinstance(w, bool) and w >= 1
        share = isinstance(w, str) and PCT.match(w) is not None and 0 < float(w[:-1]) <= 100
        if count or share:
            out.append(w)
        else:
            raise OtaError(f"wave {w!r} is neither a device count (>= 1) nor a share like '10%'")
    return out


def cumulative_sizes(waves: Sequence[Any], total: int) -> list[int]:
    """How many devices have been offered once each wave is out (the last wave: everyone)."""
    sizes, reached = [], 0
    for w in waves:
        n = w if isinstance(w, int) else math.ceil(total * float(w[:-1]) / 100)
        reached = min(total, max(reached, n))
        sizes.append(reached)
    sizes[-1] = total
    return sizes


def target_devices(session: Session, rollout: Rollout) -> list[Device]:
    t = rollout.target
    stmt = select(Device)
    if rollout.borough_id is not None:
        stmt = stmt.where(Device.borough_id == rollout.borough_id)
    if t.get("borough_id") is not None:
        stmt = stmt.where(Device.borough_id == t["borough_id"])
    if t.get("estate_id") is not None:
        stmt = (
            stmt.join(Placement, Placement.id == Device.placement_id)
            .join(Property, Property.id == Placement.property_id)
            .where(Property.estate_id == t["estate_id"])
        )
    if t.get("tag"):
        stmt = stmt.where(Device.tags.any(Tag.name == t["tag"]))
    if t.get("board"):
        stmt = stmt.where(Device.board == t["board"])
    if t.get("device_ids"):
        stmt = stmt.where(Device.device_id.in_(t["device_ids"]))
    return list(session.scalars(stmt.order_by(Device.id)))


def not_yet_offered(
    devices: Sequence[Device], release: Release, members: Collection[int], held: Collection[int]
) -> list[Device]:
    """Targeted devices still to be offered: not members yet, not held (pinned, or taken by
    a newer rollout), not on the release."""
    return [
        d
        for d in devices
        if d.id not in members and d.id not in held and d.fw_version != release.version
    ]


def held_back(session: Session, rollout: Rollout) -> set[int]:
    """Devices this rollout leaves alone: pinned ones and those a newer rollout has taken."""
    pinned = set(session.scalars(select(VersionPin.device_pk)))
    return pinned | newer_claims(session, rollout).keys()


def newer_claims(session: Session, rollout: Rollout) -> dict[int, tuple[int, str]]:
    """{device pk: (rollout id, release version)}: the newest later rollout that has taken
    each device. Such devices follow it, not this rollout; an aborted rollout keeps only the
    devices that took its release up."""
    rows = session.execute(
        select(RolloutDevice.device_pk, Rollout.id, Release.version)
        .join(Rollout, Rollout.id == RolloutDevice.rollout_id)
        .join(Release, Release.id == Rollout.release_id)
        .where(
            Rollout.id > rollout.id,
            (Rollout.state != "aborted") | RolloutDevice.state.in_(TAKEN),
        )
        .order_by(Rollout.id)
    )
    return {device: (by, version) for device, by, version in rows}  # the newest wins


def create_rollout(
    session: Session,
    principal: Principal,
    *,
    release_id: int,
    target: dict[str, Any],
    waves: Sequence[Any],
    soak_s: int,
    failure_threshold: float,
) -> Rollout:
    principal.require(Scope.RELEASES_WRITE)
    release = session.get(Release, release_id)
    if release is None:
        raise NotFound(f"release {release_id} not found")
    if not 0 <= failure_threshold <= 1:
        raise OtaError("failure_threshold is a share of the wave: 0 to 1")
    borough = target.get("borough_id")
    if not principal.all_boroughs and (borough is None or not principal.can_see(borough)):
        raise OtaError("name one of your boroughs in the target (target.borough_id)")
    rollout = Rollout(
        release_id=release.id,
        borough_id=borough,
        target={k: v for k, v in target.items() if v not in (None, "", [])},
        waves=check_waves(waves),
        soak_s=soak_s,
        failure_threshold=failure_threshold,
        state="running",
        created_by=principal.actor,
    )
    _check_target(session, rollout)
    session.add(rollout)
    session.flush()
    _audit(session, principal, rollout, "ota.rollout.create", release=release.version)
    return rollout


def _check_target(session: Session, rollout: Rollout) -> None:
    """A rollout that reaches no device, or not every device it names, is a mistake (a typo in
    a board, tag or device id) that would otherwise "complete" with nothing updated."""
    matched = {d.device_id for d in target_devices(session, rollout)}
    missing = sorted(set(rollout.target.get("device_ids") or []) - matched)
    if missing:
        more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
        raise OtaError(f"no such device in the target: {', '.join(missing[:10])}{more}")
    if not matched:
        raise OtaError(
            f"the target matches no device ({_describe(session, rollout.target)}): "
            "check the board, tag and borough"
        )


def _describe(session: Session, target: dict[str, Any]) -> str:
    parts = []
    for key, value in target.items():
        if key == "borough_id":
            borough = session.get(Borough, value)
            parts.append(f"borough {borough.name if borough else value}")
        elif key == "estate_id":
            estate = session.get(Estate, value)
            parts.append(f"estate {estate.name if estate else value}")
        elif key != "device_ids":
            parts.append(f"{key} {value!r}")
    return ", ".join(parts) or "the whole fleet"


def _audit(
    session: Session, principal: Principal, rollout: Rollout, action: str, **detail: Any
) -> None:
    audit.record(
        session,
        principal,
        action,
        target_type="ota_rollout",
        target_id=rollout.id,
        borough_id=rollout.borough_id,
        detail=detail or None,
    )


def visible_rollout(session: Session, principal: Principal, rollout_id: int) -> Rollout:
    rollout = session.get(Rollout, rollout_id)
    if rollout is None or not (principal.all_boroughs or principal.can_see(rollout.borough_id)):
        raise NotFound(f"rollout {rollout_id} not found")
    return rollout


def visible_rollouts(session: Session, principal: Principal, limit: int = 200) -> list[Rollout]:
    """The newest rollouts of the user's boroughs (every rollout for all-borough users)."""
    stmt = select(Rollout).order_by(Rollout.id.desc()).limit(limit)
    if not principal.all_boroughs:
        stmt = stmt.where(Rollout.borough_id.in_(principal.borough_ids or ()))
    return list(session.scalars(stmt))


# What an operator may do to a rollout, and how to say it was done.
ACTIONS = {"pause": "paused", "resume": "resumed", "abort": "aborted"}


def act(
    session: Session,
    principal: Principal,
    rollout: Rollout,
    action: str,
    publisher: Publisher | None,
    reason: str = "paused by an operator",
) -> None:
    """pause (offers not yet taken are withdrawn), resume (failed devices are offered again)
    or abort; pausing and aborting need the broker to withdraw offers."""
    if action == "resume":
        resume(session, principal, rollout)
        return
    if action not in ACTIONS:
        raise OtaError(f"{action!r} is not one of {', '.join(ACTIONS)}")
    if publisher is None:
        raise NoBroker(f"no broker connection to withdraw offers; try {action} again shortly")
    if action == "pause":
        pause(session, principal, rollout, reason, publisher)
    else:
        abort(session, principal, rollout, publisher)


def pause(
    session: Session, principal: Principal, rollout: Rollout, reason: str, publisher: Publisher
) -> None:
    if rollout.state != "running":
        raise OtaError(f"rollout {rollout.id} is {rollout.state}; only a running one can pause")
    rollout.state = "paused"
    rollout.pause_reason = reason
    rollout.updated_at = utcnow()
    _withdraw(session, rollout, publisher, ("offered",))
    _audit(session, principal, rollout, "ota.rollout.pause", reason=reason)


def resume(session: Session, principal: Principal, rollout: Rollout) -> None:
    """Carry on; devices that failed or whose offer was withdrawn are offered again."""
    principal.require(Scope.RELEASES_WRITE)
    if rollout.state != "paused":
        raise OtaError(f"rollout {rollout.id} is {rollout.state}; only a paused one can resume")
    rollout.state = "running"
    rollout.pause_reason = None
    rollout.wave_started_at = None
    rollout.updated_at = utcnow()
    retry = session.scalars(
        select(RolloutDevice).where(
            RolloutDevice.rollout_id == rollout.id,
            RolloutDevice.state.in_(("failed", "withdrawn")),
        )
    ).all()
    claims = newer_claims(session, rollout)
    for member in retry:
        if member.device_pk in claims:
            # A newer rollout has the device: retrying would take it back a release. Its
            # failure leaves the wave's count, as a retried one does.
            by, version = claims[member.device_pk]
            failure = f" after failing: {member.reason}" if member.state == "failed" else ""
            member.state = "superseded"
            member.reason = f"superseded by rollout {by} ({version}){failure}"
            member.updated_at = rollout.updated_at
            continue
        member.state = "pending"  # offered again, under a new job id, on the next tick
        member.reason = None
    retry = [m for m in retry if m.state == "pending"]
    _audit(session, principal, rollout, "ota.rollout.resume", retried=len(retry))


def abort(session: Session, principal: Principal, rollout: Rollout, publisher: Publisher) -> None:
    principal.require(Scope.RELEASES_WRITE)
    if rollout.state not in OPEN:
        raise OtaError(f"rollout {rollout.id} is {rollout.state} already")
    rollout.state = "aborted"
    rollout.updated_at = utcnow()
    _withdraw(session, rollout, publisher, ("offered", "pending"))
    _audit(session, principal, rollout, "ota.rollout.abort")


def _withdraw(
    session: Session, rollout: Rollout, publisher: Publisher, states: tuple[str, ...]
) -> None:
    """Clear retained offers not yet taken up, so no further device starts this update."""
    rows = session.execute(
        select(RolloutDevice, Device.device_id)
        .join(Device, Device.id == RolloutDevice.device_pk)
        .where(RolloutDevice.rollout_id == rollout.id, RolloutDevice.state.in_(states))
    ).all()
    for member, device_id in rows:
        publish_offer(publisher, device_id, b"")
        member.state = "withdrawn"


def restate_offers(
    session: Session, publisher: Publisher, blob_url: Callable[[Release], str]
) -> tuple[int, int, bool]:
    """Publish again the retained offer each device should find, from the database: the
    broker may have lost it (a crash of the embedded broker, or of Mosquitto between its
    autosaves) or missed a withdrawal sent while the fleet's connection was down.

    Only a device's newest rollout membership counts, as only the newest offer is retained
    on its topic: an older rollout's offer must never come back after a newer one. Returns
    (offers, withdrawals, all published)."""
    # Ranked in the database: only the newest membership of each device comes back.
    rank = (
        func.row_number()
        .over(
            partition_by=RolloutDevice.device_pk,
            order_by=(RolloutDevice.offered_at.desc(), RolloutDevice.id.desc()),
        )
        .label("rank")
    )
    newest = select(RolloutDevice.id, rank).subquery()
    rows = session.execute(
        select(RolloutDevice.state, RolloutDevice.job_id, Rollout.state, Rollout.release_id)
        .add_columns(Device.device_id)
        .join(newest, newest.c.id == RolloutDevice.id)
        .join(Rollout, Rollout.id == RolloutDevice.rollout_id)
        .join(Device, Device.id == RolloutDevice.device_pk)
        .where(newest.c.rank == 1, RolloutDevice.state.in_(("offered", "withdrawn")))
    ).all()
    release_ids = {row.release_id for row in rows}
    releases = {
        r.id: r for r in session.scalars(select(Release).where(Release.id.in_(release_ids)))
    }
    offers = withdrawals = 0
    ok = True
    for member_state, job_id, rollout_state, release_id, device_id in rows:
        if member_state == "withdrawn":
            payload = b""
            withdrawals += 1
        elif rollout_state in ("running", "completed"):
            release = releases[release_id]
            payload = offer_payload(release, job_id, blob_url(release))
            offers += 1
        else:
            continue  # an offer of a rollout no longer open is withdrawn when it closes
        ok = publish_offer(publisher, device_id, payload) and ok
    return offers, withdrawals, ok


def supersede(
    session: Session, rollout: Rollout, release: Release, device_pks: Sequence[int], now: datetime
) -> None:
    """Mark the open memberships of older rollouts that these devices' new offers replaced."""
    reason = f"superseded by rollout {rollout.id} ({release.version})"
    for i in range(0, len(device_pks), SUPERSEDE_CHUNK):
        session.execute(
            update(RolloutDevice)
            .where(
                RolloutDevice.device_pk.in_(device_pks[i : i + SUPERSEDE_CHUNK]),
                RolloutDevice.rollout_id < rollout.id,
                RolloutDevice.state.in_(OVERTAKEN),
            )
            .values(state="superseded", reason=reason, updated_at=now)
        )


def offer_payload(release: Release, job_id: str, url: str) -> bytes:
    body = {
        "sv": 1,
        "id": job_id,
        "kind": release.kind,
        "version": release.version,
        "manifest": release.manifest,
        "sigs": release.sigs,
        "url": url,
    }
    return json.dumps(body, separators=(",", ":")).encode()


def advance(
    session: Session,
    rollout: Rollout,
    publisher: Publisher,
    blob_url: Callable[[Release], str],
    now: datetime | None = None,
) -> None:
    """One step of a running (or completed, for late joiners) rollout."""
    now = now or utcnow()
    release = session.get(Release, rollout.release_id)
    if release is None or rollout.state not in ("running", "completed"):
        return
    members = {
        m.device_pk: m
        for m in session.scalars(
            select(RolloutDevice).where(RolloutDevice.rollout_id == rollout.id)
        )
    }
    held = held_back(session, rollout)
    devices = target_devices(session, rollout)
    by_pk = {d.id: d for d in devices}
    eligible = not_yet_offered(devices, release, members.keys(), held)
    total = len(members) + len(eligible)
    url = blob_url(release)
    offered: list[int] = []

    def offer(device: Device, member: RolloutDevice | None) -> None:
        job = f"r{rollout.id}-{secrets.token_hex(4)}"
        if member is None:
            member = RolloutDevice(
                rollout_id=rollout.id, device_pk=device.id, wave=rollout.wave, job_id=job
            )
            session.add(member)
            members[device.id] = member
        member.job_id, member.state, member.reason = job, "offered", None
        member.from_version = device.fw_version
        member.offered_at = member.updated_at = now
        publish_offer(publisher, device.device_id, offer_payload(release, job, url))
        offered.append(device.id)

    for member in [m for m in members.values() if m.state in ("pending", "superseded")]:
        device = by_pk.get(member.device_pk)
        if device is None or member.device_pk in held:
            continue
        # Superseded, but the newer rollout was aborted before the device took it up.
        if member.state == "pending" or device.fw_version != release.version:
            offer(device, member)
    if rollout.state == "completed":
        for device in eligible:  # joined the target after the last wave
            offer(device, None)
        supersede(session, rollout, release, offered, now)
        return
    sizes = cumulative_sizes(rollout.waves, total)
    # Online devices first, so a wave is not held up by devices that are not there.
    eligible.sort(key=lambda d: (d.state != "online", d.id))
    for device in eligible[: max(0, sizes[rollout.wave] - len(members))]:
        offer(device, None)
    supersede(session, rollout, release, offered, now)
    wave = [m for m in members.values() if m.wave == rollout.wave]
    reason = wave_problem(session, rollout, wave, by_pk)
    if reason is not None:
        pause(session, SYSTEM, rollout, reason, publisher)
        return
    # An offer an offline device has not taken up does not hold the wave (it stays retained
    # for when the device is back); a device in the middle of its update does.
    done = all(
        m.state in TERMINAL
        or m.state in ("withdrawn", "superseded")
        or (m.state == "offered" and _away(by_pk.get(m.device_pk)))
        for m in wave
    )
    if not done:
        return
    if rollout.wave_started_at is None:  # the wave has finished: the soak starts now
        rollout.wave_started_at = now
        return
    if now < rollout.wave_started_at + timedelta(seconds=rollout.soak_s):
        return
    rollout.updated_at = now
    if rollout.wave + 1 >= len(rollout.waves):
        rollout.state = "completed"
        _audit(session, SYSTEM, rollout, "ota.rollout.complete")
        return
    rollout.wave += 1
    rollout.wave_started_at = None
    _audit(session, SYSTEM, rollout, "ota.rollout.wave", wave=rollout.wave)


def _away(device: Device | None) -> bool:
    return device is None or device.state == "offline"


def wave_problem(
    session: Session,
    rollout: Rollout,
    wave: Sequence[RolloutDevice],
    by_pk: dict[int, Device],
) -> str | None:
    """Why the wave must stop: too many failed updates, or the updated devices look worse."""
    if not wave:
        return None
    # A member a newer rollout took over never tried this release: it does not dilute the rate.
    tried = [m for m in wave if m.state != "superseded"]
    failed = [m for m in tried if m.state == "failed"]
    if failed and len(failed) / len(tried) > rollout.failure_threshold:
        reasons = sorted({m.reason or "?" for m in failed})
        return (
            f"wave {rollout.wave + 1}: {len(failed)} of {len(tried)} updates failed "
            f"(threshold {rollout.failure_threshold:.0%}): {'; '.join(reasons)[:400]}"
        )
    succeeded_at = {m.device_pk: m.updated_at for m in wave if m.state == "succeeded"}
    updated = [by_pk[pk] for pk in succeeded_at if pk in by_pk]
    if not updated:
        return None
    members = {m.device_pk for m in wave}
    baseline = [d for d in by_pk.values() if d.id not in members]
    looping = set(
        session.scalars(
            select(Alert.device_pk).where(Alert.rule == "reboot_loop", Alert.state != "resolved")
        )
    )

    def rebooting(device: Device) -> bool:
        return device.id in looping

    def faulty_since_update(device: Device) -> bool:
        # Only health sent after the update succeeded speaks for the release: a trial boot's
        # first health still carries what the old version saw (a sensor flag kept in RTC
        # memory across the resets, say).
        return _reported_since(device, succeeded_at[device.id]) and _sensor_fault(device)

    checks: tuple[tuple[str, Callable[[Device], bool], Callable[[Device], bool]], ...] = (
        ("offline", _offline, _offline),
        ("in a reboot loop", rebooting, rebooting),
        ("reporting sensor faults", faulty_since_update, _sensor_fault),
    )
    for label, bad, bad_before in checks:
        rate = sum(map(bad, updated)) / len(updated)
        base = sum(map(bad_before, baseline)) / len(baseline) if baseline else 0.0
        if rate - base > rollout.failure_threshold:
            return (
                f"wave {rollout.wave + 1}: {rate:.0%} of updated devices {label} "
                f"against {base:.0%} on the previous version"
            )
    return None


def _reported_since(device: Device, at: datetime | None) -> bool:
    return device.health_at is not None and (at is None or device.health_at > at)


def _offline(device: Device) -> bool:
    return device.state == "offline"


def _sensor_fault(device: Device) -> bool:
    health = device.health or {}
    return bool(health.get("sensor_faults") or health.get("sensor_errors"))
