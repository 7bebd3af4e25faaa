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

import secrets
from collections.abc import Callable, Collection, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from fleet.access import audit
from fleet.access.principal import SYSTEM, Principal
from fleet.access.roles import Scope
from fleet.health.alert_rules import version_tuple
from fleet.models import Device
from fleet.models.base import utcnow
from fleet.models.ota import Release, Rollout, RolloutDevice, VersionPin
from fleet.ota.errors import NoBroker, NotFound, OtaError
from fleet.ota.offers import Publisher, offer_payload, publish_offer, restate_offers
from fleet.ota.progress import IN_PROGRESS, TERMINAL
from fleet.ota.service import release_floor
from fleet.ota.target import check_target, clean_target, target_devices
from fleet.ota.waves import (
    FOUND,
    STALL_S,
    check_waves,
    cumulative_sizes,
    fail_stalled,
    wave_problem,
)

# Also known as rollout.*:
__all__ = ["Publisher", "check_waves", "cumulative_sizes", "restate_offers", "target_devices"]

OPEN = ("running", "paused")
# A completed rollout still offers its release to late joiners, so it can be aborted too.
ABORTABLE = (*OPEN, "completed")
# Open memberships an offer of a newer rollout overtakes: their offer is no longer retained.
OVERTAKEN = ("offered", "pending", "withdrawn")
# An aborted rollout still holds the devices that took its release up.
TAKEN = (*sorted(IN_PROGRESS), "succeeded")
AUDIT_IDS = 50  # device ids kept in the audit entry of a new rollout
SUPERSEDE_CHUNK = 500  # device ids per UPDATE, well inside SQLite's bound-parameter limit


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
    target = clean_target(target)
    borough = target.get("borough_id")
    if not principal.all_boroughs and (borough is None or not principal.can_see(borough)):
        raise OtaError("name one of your boroughs in the target (target.borough_id)")
    floor = release_floor(session)
    if version_tuple(release.version) < version_tuple(floor):
        raise OtaError(
            f"release {release.version} is below the fleet's anti-rollback floor {floor} "
            "(declared by a published release): devices would refuse it; roll out a "
            f"release at or above {floor}"
        )
    rollout = Rollout(
        release_id=release.id,
        borough_id=borough,
        target=target,
        waves=check_waves(waves),
        soak_s=soak_s,
        failure_threshold=failure_threshold,
        state="running",
        created_by=principal.actor,
    )
    devices = check_target(session, rollout)
    _refuse_duplicate(session, rollout, release, {d.id for d in devices})
    session.add(rollout)
    session.flush()
    ids = target.get("device_ids") or []
    _audit(
        session,
        principal,
        rollout,
        "ota.rollout.create",
        release=release.version,
        # The list is cut short in the entry; the count says how long it was.
        target={**target, "device_ids": ids[:AUDIT_IDS]} if ids else target,
        devices=len(devices),
        waves=rollout.waves,
        soak_s=soak_s,
        failure_threshold=failure_threshold,
    )
    return rollout


def _refuse_duplicate(
    session: Session, rollout: Rollout, release: Release, devices: set[int]
) -> None:
    """A second open rollout of a release to the same devices (a form sent twice) would
    offer them what the first is installing, and wait for ever on those that have it."""
    for other in session.scalars(
        select(Rollout).where(Rollout.release_id == release.id, Rollout.state.in_(OPEN))
    ):
        if {d.id for d in target_devices(session, other)} == devices:
            raise OtaError(
                f"rollout {other.id} ({other.state}) already offers {release.version} to "
                "these devices; resume or abort it instead"
            )


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
    # A retired device's withdrawn offer stays withdrawn: it would hold the wave for ever.
    retry = session.scalars(
        select(RolloutDevice)
        .join(Device, Device.id == RolloutDevice.device_pk)
        .where(
            RolloutDevice.rollout_id == rollout.id,
            RolloutDevice.state.in_(("failed", "withdrawn")),
            Device.active(),
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
    """Stop for good: offers not yet taken are withdrawn and no device is offered again, not
    even a late joiner of a completed rollout."""
    principal.require(Scope.RELEASES_WRITE)
    if rollout.state not in ABORTABLE:
        raise OtaError(f"rollout {rollout.id} is {rollout.state} already")
    was = rollout.state
    rollout.state = "aborted"
    rollout.updated_at = utcnow()
    withdrawn = _withdraw(session, rollout, publisher, ("offered", "pending"))
    _audit(session, principal, rollout, "ota.rollout.abort", was=was, withdrawn=withdrawn)


def _withdraw(
    session: Session, rollout: Rollout, publisher: Publisher, states: tuple[str, ...]
) -> int:
    """Clear retained offers not yet taken up, so no further device starts this update."""
    rows = session.execute(
        select(RolloutDevice, Device.device_id)
        .join(Device, Device.id == RolloutDevice.device_pk)
        .where(RolloutDevice.rollout_id == rollout.id, RolloutDevice.state.in_(states))
    ).all()
    for member, device_id in rows:
        publish_offer(publisher, device_id, b"")
        member.state = "withdrawn"
    return len(rows)


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


def advance(
    session: Session,
    rollout: Rollout,
    publisher: Publisher,
    blob_url: Callable[[Release], str],
    now: datetime | None = None,
    stall_s: float = STALL_S,
) -> None:
    """One step of a running (or completed, for late joiners) rollout. A member that went
    silent in the middle of its update for `stall_s` has failed."""
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
    fail_stalled(list(members.values()), now, stall_s)
    _settle_found_on_release(members.values(), by_pk, release, now)
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


def _settle_found_on_release(
    members: Collection[RolloutDevice], by_pk: dict[int, Device], release: Release, now: datetime
) -> None:
    """An offered device that runs the release already (another rollout of it got there
    first, or its report was lost) ignores the offer: it would wait for ever otherwise."""
    for m in members:
        device = by_pk.get(m.device_pk)
        if m.state == "offered" and device is not None and device.fw_version == release.version:
            m.state = "succeeded"
            m.reason = f"{FOUND} {release.version}"
            m.updated_at = now
