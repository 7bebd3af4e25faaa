"""Alert lifecycle: open → acknowledged → resolved, one live alert per device and rule."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, func, select, update
from sqlalchemy.orm import Session

from fleet.access import audit
from fleet.access.principal import Principal
from fleet.core.db import rowcount
from fleet.core.keyset import Cursor
from fleet.health.alert_rules import Finding
from fleet.models import Alert, Device

LIVE_STATES = ("open", "acknowledged")
# Who resolved an alert whose condition cleared; the audit and the alert pages show it.
SYSTEM_RESOLVED = "system: condition cleared"


class AlertNotFound(Exception):
    pass


class AlertStateError(Exception):
    pass


def resolve_live(session: Session, which: ColumnElement[bool], *, at: datetime, by: str) -> int:
    """Resolve, in one statement, the live alerts ``which`` selects; how many were live.

    An alert a person resolved since it was read is left as they resolved it.
    """
    done = session.execute(
        update(Alert)
        .where(which, Alert.state.in_(LIVE_STATES))
        .values(state="resolved", resolved_at=at, resolved_by=by)
    )
    return rowcount(done)


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
            alert.resolved_by = SYSTEM_RESOLVED
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


class AlertCursor(Cursor):
    """Where a page of alerts ended: the last alert's opening time and id."""

    @classmethod
    def parse(cls, token: str, *, what: str = "alert") -> AlertCursor:
        cursor = Cursor.parse(token, what=what)
        return cls(cursor.at, cursor.row_id)

    @classmethod
    def after(cls, alert: Alert) -> AlertCursor:
        return cls(alert.opened_at, alert.id)


def _visible(
    principal: Principal, states: Sequence[str], device: Device | None
) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = [Alert.state.in_(states)]
    if principal.borough_ids is not None:
        where.append(Alert.borough_id.in_(principal.borough_ids))
    if device is not None:
        where.append(Alert.device_pk == device.id)
    return where


def list_alerts(
    session: Session,
    *,
    principal: Principal,
    states: Sequence[str] = LIVE_STATES,
    device: Device | None = None,
    limit: int = 200,
    offset: int = 0,
    after: AlertCursor | None = None,
) -> Sequence[tuple[Alert, str]]:
    """Newest first (the id breaks ties), from ``offset`` or from below ``after``."""
    stmt = (
        select(Alert, Device.device_id)
        .join(Device, Device.id == Alert.device_pk)
        .where(*_visible(principal, states, device))
    )
    if after is not None:
        stmt = stmt.where(after.below(Alert.opened_at, Alert.id))
    stmt = stmt.order_by(Alert.opened_at.desc(), Alert.id.desc()).offset(offset).limit(limit)
    return [(row[0], row[1]) for row in session.execute(stmt)]


def count_alerts(
    session: Session,
    *,
    principal: Principal,
    states: Sequence[str] = LIVE_STATES,
    device: Device | None = None,
) -> int:
    stmt = select(func.count()).select_from(Alert).where(*_visible(principal, states, device))
    return int(session.scalar(stmt) or 0)


def alert_device_id(session: Session, alert: Alert) -> str:
    return session.scalar(select(Device.device_id).where(Device.id == alert.device_pk)) or ""
