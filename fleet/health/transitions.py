"""Derived liveness for a batch of devices, each change recorded with its time and reason."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Table, bindparam, insert, update
from sqlalchemy.orm import Session

from fleet.health.history import DeviceFacts
from fleet.health.liveness import DEFAULT_POLICY, LivenessPolicy, derive_state
from fleet.models import Device, StateChange


@dataclass(frozen=True, slots=True)
class Transition:
    device_pk: int
    from_state: str
    to_state: str
    reason: str


def derive(
    device: DeviceFacts, *, now: datetime, policy: LivenessPolicy = DEFAULT_POLICY
) -> Transition | None:
    """The device's change of state at `now`, or None when it stays as it is."""
    state, reason = derive_state(
        power_mode=device.power_mode,
        report_interval_s=device.report_interval_s,
        status=device.status,
        last_seen_at=device.last_seen_at,
        now=now,
        policy=policy,
    )
    if state == device.state:
        return None
    return Transition(device.id, device.state, state.value, reason)


def write_transitions(
    session: Session, transitions: Sequence[Transition], *, now: datetime
) -> None:
    """Two statements whatever the number of changes; the caller holds the devices' rows."""
    if not transitions:
        return
    session.execute(
        insert(StateChange),
        [
            {
                "device_pk": t.device_pk,
                "at": now,
                "from_state": t.from_state,
                "to_state": t.to_state,
                "reason": t.reason,
            }
            for t in transitions
        ],
    )
    session.execute(
        _UPDATE, [{"pk": t.device_pk, "to": t.to_state, "at": now} for t in transitions]
    )


_DEVICES: Table = Device.__table__  # type: ignore[assignment]
_UPDATE = (
    update(_DEVICES)
    .where(_DEVICES.c.id == bindparam("pk"))
    .values(state=bindparam("to"), state_at=bindparam("at"))
)
