"""Apply derived liveness to devices and record every change with its time and reason."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from fleet.health.liveness import DEFAULT_POLICY, LivenessPolicy, derive_state
from fleet.models import Device, StateChange


def refresh_state(
    session: Session, device: Device, *, now: datetime, policy: LivenessPolicy = DEFAULT_POLICY
) -> bool:
    """Recompute the device's state; returns True when it changed."""
    state, reason = derive_state(
        power_mode=device.power_mode,
        report_interval_s=device.report_interval_s,
        status=device.status,
        last_seen_at=device.last_seen_at,
        now=now,
        policy=policy,
    )
    if state == device.state:
        return False
    session.add(
        StateChange(
            device_pk=device.id, at=now, from_state=device.state, to_state=state, reason=reason
        )
    )
    device.state = state
    device.state_at = now
    return True
