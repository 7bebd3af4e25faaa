"""Waves of a rollout: their plan, and what stops one (failures, stalls, worse health)."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from fleet.models import Alert, Device
from fleet.models.ota import Rollout, RolloutDevice
from fleet.ota.errors import Invalid
from fleet.ota.progress import IN_PROGRESS, TERMINAL

PCT = re.compile(r"^(\d{1,3}(?:\.\d+)?)%$")
# A member that started its update and then reported nothing for this long has failed: a
# device gone dark mid-update must not hold its wave for ever. An update, its trial boot
# included, reports within minutes; the engine takes FLEET_OTA_STALL_MIN.
STALL_S = 3600
STALLED = "no progress for"
FOUND = "found running"  # an offered device that runs the release already
# Outcomes the engine decided for a silent device: a report it sends after all still counts.
PRESUMED = (STALLED, FOUND)
# Members that tried the release: the share of failures is taken among them only, so offers
# a device never took up (it is away, or the offer was withdrawn or superseded) do not
# dilute it.
TRIED = IN_PROGRESS | TERMINAL


def check_waves(waves: Sequence[Any]) -> list[Any]:
    if not waves:
        raise Invalid('give at least one wave, e.g. [2, "10%", "50%", "100%"]')
    out: list[Any] = []
    for w in waves:
        count = isinstance(w, int) and not isinstance(w, bool) and w >= 1
        share = isinstance(w, str) and PCT.match(w) is not None and 0 < float(w[:-1]) <= 100
        if count or share:
            out.append(w)
        else:
            raise Invalid(f"wave {w!r} is neither a device count (>= 1) nor a share like '10%'")
    last = out[-1]
    if not (isinstance(last, str) and float(last[:-1]) == 100):
        # The last wave offers every targeted device: a plan that ends short of it would be
        # shown as one thing and do another.
        raise Invalid(
            f'the last wave must be "100%" (every targeted device), not {last!r}: '
            f'e.g. [{last!r}, "100%"]'
        )
    return out


def cumulative_sizes(waves: Sequence[Any], total: int) -> list[int]:
    """How many devices have been offered once each wave is out (the last wave: everyone;
    new rollouts must say so, see check_waves)."""
    sizes, reached = [], 0
    for w in waves:
        n = w if isinstance(w, int) else math.ceil(total * float(w[:-1]) / 100)
        reached = min(total, max(reached, n))
        sizes.append(reached)
    sizes[-1] = total
    return sizes


def fail_stalled(members: Sequence[RolloutDevice], now: datetime, stall_s: float) -> None:
    """Members in the middle of an update that have reported nothing for `stall_s` fail."""
    limit = timedelta(seconds=stall_s)
    minutes = max(1, round(stall_s / 60))
    for m in members:
        if m.state in IN_PROGRESS and now - m.updated_at > limit:
            m.reason = f"{STALLED} {minutes} minutes (last report: {m.state})"
            m.state = "failed"
            m.updated_at = now


def wave_problem(
    session: Session,
    rollout: Rollout,
    wave: Sequence[RolloutDevice],
    by_pk: dict[int, Device],
) -> str | None:
    """Why the wave must stop: too many failed updates, or the updated devices look worse."""
    tried = [m for m in wave if m.state in TRIED]
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
