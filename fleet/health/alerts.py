"""Alert lifecycle: open → acknowledged → resolved, one live alert per device and rule."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from fleet.access import audit
from fleet.access.principal import Principal
from fleet.health.alert_rules import Finding
from fleet.models import Alert, Device

LIVE_STATES = ("open", "acknowledged")


class AlertNotFound(Exception):
    pass


class AlertStateError(Exception):
    pass


def live_alerts(session: Session, device: Device) -> dict[str, Alert]:
    stmt = select(Alert).where(Alert.device_pk == device.id, Alert.state.in_(LIVE_STATES))
    return {a.rule: a for a in session.scalars(stmt)}


def apply_findings(
    session: Session, device: Device, findings: Sequence[Finding], *, now: datetime
) -> list[Alert]:
    """Open, refresh or resolve alerts to match the findings; returns newly opened alerts."""
    live = live_alerts(session, device)
    opened: list[Alert] = []
    for finding in findings:
        alert = live.get(finding.rule)
        if finding.active and alert is None:
            alert = Alert(
                device_pk=device.id,
                borough_id=device.borough_id,
                rule=finding.rule,
                severity=finding.severity,
                state="open",
                message=finding.message,
                detail=finding.detail,
                opened_at=now,
                last_seen_at=now,
            )
            session.add(alert)
            opened.append(alert)
        elif finding.active and alert is not None:
            alert.last_seen_at = now
            alert.message = finding.message
            alert.detail = finding.detail
        elif not finding.active and alert is not None:
            alert.state = "resolved"
            alert.resolved_at = now
            alert.resolved_by = "system: condition cleared"
    return opened


def _scoped_alert(session: Session, alert_id: int, principal: Principal) -> Alert:
    alert = session.get(Alert, alert_id)
    if alert is None or not principal.can_see(alert.borough_id):
        raise AlertNotFound(f"no alert {alert_id}")
    return alert


def acknowledge(session: Session, *, alert_id: int, principal: Principal, now: datetime) -> Alert:
    alert = _scoped_alert(session, alert_id, principal)
    if alert.state != "open":
        raise AlertStateError(
            f"alert {alert_id} is {alert.state}; only open alerts can be acknowledged"
        )
    alert.state = "acknowledged"
    alert.acknowledged_at = now
    alert.acknowledged_by = principal.actor
    audit.record(
        session,
        principal,
        "alert.acknowledge",
        target_type="alert",
        target_id=alert.id,
        borough_id=alert.borough_id,
        detail={"rule": alert.rule},
    )
    return alert


def resolve(session: Session, *, alert_id: int, principal: Principal, now: datetime) -> Alert:
    alert = _scoped_alert(session, alert_id, principal)
    if alert.state == "resolved":
        raise AlertStateError(f"alert {alert_id} is already resolved")
    alert.state = "resolved"
    alert.resolved_at = now
    alert.resolved_by = principal.actor
    audit.record(
        session,
        principal,
        "alert.resolve",
        target_type="alert",
        target_id=alert.id,
        borough_id=alert.borough_id,
        detail={"rule": alert.rule},
    )
    return alert


def list_alerts(
    session: Session,
    *,
    principal: Principal,
    states: Sequence[str] = LIVE_STATES,
    device: Device | None = None,
    limit: int = 200,
) -> Sequence[tuple[Alert, str]]:
    stmt = (
        select(Alert, Device.device_id)
        .join(Device, Device.id == Alert.device_pk)
        .where(Alert.state.in_(states))
    )
    if principal.borough_ids is not None:
        stmt = stmt.where(Alert.borough_id.in_(principal.borough_ids))
    if device is not None:
        stmt = stmt.where(Alert.device_pk == device.id)
    stmt = stmt.order_by(Alert.opened_at.desc()).limit(limit)
    return [(row[0], row[1]) for row in session.execute(stmt)]
