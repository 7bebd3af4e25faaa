"""Read models for people: a rollout's waves, members and target, releases with their rollouts."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from fleet.access.principal import Principal
from fleet.models import Borough, Device, Estate
from fleet.models.ota import Release, Rollout, RolloutDevice
from fleet.ota.progress import IN_PROGRESS
from fleet.ota.rollout import (
    OPEN,
    cumulative_sizes,
    held_back,
    not_yet_offered,
    target_devices,
    visible_rollouts,
)
from fleet.ota.service import list_releases

KIND_LABELS = {"app": "app bundle", "image": "firmware image"}


@dataclass
class WaveView:
    number: int  # 1-based, as people count
    size: str  # as configured: a device count or a share
    targeted: int
    waiting: int  # offered, not taken up yet (or to be offered again)
    in_progress: int
    succeeded: int
    failed: int
    withdrawn: int
    superseded: int  # a newer rollout's offer replaced this one's
    status: str  # done | offering | soaking | waiting | paused | aborted | not reached
    soak_left: timedelta | None = None


@dataclass
class MemberView:
    device_id: str
    wave: int
    state: str
    reason: str | None
    from_version: str | None
    updated_at: datetime


@dataclass
class RolloutView:
    rollout: Rollout
    release: Release
    target: list[tuple[str, str]]
    waves: list[WaveView]
    members: list[MemberView] = field(default_factory=list)

    @property
    def failures(self) -> list[MemberView]:
        return [m for m in self.members if m.state == "failed"]


def kind_label(kind: str) -> str:
    return KIND_LABELS.get(kind, kind)


def describe_target(session: Session, rollout: Rollout) -> list[tuple[str, str]]:
    """The target selector in words: [(what, value), ...]; an empty target is every device."""
    t = rollout.target
    out: list[tuple[str, str]] = []
    borough_id = t.get("borough_id", rollout.borough_id)
    if borough_id is not None:
        borough = session.get(Borough, borough_id)
        out.append(("Borough", borough.name if borough else f"#{borough_id}"))
    if t.get("estate_id") is not None:
        estate = session.get(Estate, t["estate_id"])
        out.append(("Estate", estate.name if estate else f"#{t['estate_id']}"))
    if t.get("tag"):
        out.append(("Tag", str(t["tag"])))
    if t.get("board"):
        out.append(("Board", str(t["board"])))
    if t.get("device_ids"):
        ids = [str(i) for i in t["device_ids"]]
        shown = ", ".join(ids[:10]) + (f" and {len(ids) - 10} more" if len(ids) > 10 else "")
        out.append(("Devices", shown))
    if t.get("all") or not t:  # chosen explicitly (an empty target is from older rollouts)
        out.append(("Devices", "every device"))
    return out


def _members(session: Session, rollout: Rollout, principal: Principal) -> list[MemberView]:
    rows = session.execute(
        select(RolloutDevice, Device.device_id, Device.borough_id)
        .join(Device, Device.id == RolloutDevice.device_pk)
        .where(RolloutDevice.rollout_id == rollout.id)
        .order_by(RolloutDevice.wave, Device.device_id)
    ).all()
    return [
        MemberView(d, m.wave + 1, m.state, m.reason, m.from_version, m.updated_at)
        for m, d, borough_id in rows
        if principal.can_see(borough_id)
    ]


def _wave_status(rollout: Rollout, index: int, now: datetime) -> tuple[str, timedelta | None]:
    if rollout.state == "completed" or index < rollout.wave:
        return "done", None
    if index > rollout.wave:
        return ("waiting" if rollout.state in OPEN else "not reached"), None
    if rollout.state != "running":
        return rollout.state, None
    if rollout.wave_started_at is None:
        return "offering", None
    left = rollout.wave_started_at + timedelta(seconds=rollout.soak_s) - now
    return "soaking", max(left, timedelta(0))


def _wave_size(size: object, last: bool) -> str:
    """As planned; a last wave short of 100 % (only rollouts made before that was refused)
    offered every device all the same, and says so."""
    if last and not (isinstance(size, str) and size.endswith("%") and float(size[:-1]) == 100):
        return f"{size}, then every device (last wave)"
    return str(size)


def rollout_view(
    session: Session, rollout: Rollout, principal: Principal, now: datetime
) -> RolloutView:
    release = session.get(Release, rollout.release_id)
    if release is None:  # a foreign key keeps it; only a broken database gets here
        raise LookupError(f"rollout {rollout.id} names release {rollout.release_id}, not stored")
    members = _members(session, rollout, principal)
    member_pks = set(
        session.scalars(
            select(RolloutDevice.device_pk).where(RolloutDevice.rollout_id == rollout.id)
        )
    )
    still_to_offer: Sequence[Device] = []
    if rollout.state in OPEN:
        targeted = target_devices(session, rollout)
        still_to_offer = not_yet_offered(targeted, release, member_pks, held_back(session, rollout))
    planned = cumulative_sizes(rollout.waves, len(member_pks) + len(still_to_offer))
    by_wave: dict[int, Counter[str]] = {}
    for m in members:
        by_wave.setdefault(m.wave - 1, Counter())[m.state] += 1
    waves = []
    for i, size in enumerate(rollout.waves):
        states = by_wave.get(i, Counter())
        offered = sum(states.values())
        share = planned[i] - (planned[i - 1] if i else 0)
        status, soak_left = _wave_status(rollout, i, now)
        waves.append(
            WaveView(
                number=i + 1,
                size=_wave_size(size, last=i == len(rollout.waves) - 1),
                targeted=max(offered, share)
                if status in ("offering", "waiting", "paused")
                else offered,
                waiting=states["offered"] + states["pending"],
                in_progress=sum(n for s, n in states.items() if s in IN_PROGRESS),
                succeeded=states["succeeded"],
                failed=states["failed"],
                withdrawn=states["withdrawn"],
                superseded=states["superseded"],
                status=status,
                soak_left=soak_left,
            )
        )
    return RolloutView(rollout, release, describe_target(session, rollout), waves, members)


def member_counts(session: Session, rollout_ids: Sequence[int]) -> dict[int, Counter[str]]:
    """{rollout id: {state: devices}} for the rollout list."""
    out: dict[int, Counter[str]] = {}
    for rid, state in session.execute(
        select(RolloutDevice.rollout_id, RolloutDevice.state).where(
            RolloutDevice.rollout_id.in_(rollout_ids)
        )
    ):
        out.setdefault(rid, Counter())[state] += 1
    return out


def releases_with_rollouts(
    session: Session, principal: Principal, limit: int = 500
) -> list[tuple[Release, list[Rollout]]]:
    """Every release (they are fleet-wide), each with the rollouts of it this user may see."""
    releases = list_releases(session, limit)
    using: dict[int, list[Rollout]] = {}
    for r in visible_rollouts(session, principal, limit=10_000):
        using.setdefault(r.release_id, []).append(r)
    return [(rel, using.get(rel.id, [])) for rel in releases]
