"""The sweep's alert changes for a batch of devices: the live alerts read in one query, and
the opened, refreshed and resolved ones written with one statement each.

The same lifecycle as `fleet.health.alerts.apply_findings`, which handles one device; resolving
goes through `fleet.health.alerts.resolve_live`, as a retired device's alerts do.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.orm import Session

from fleet.health.alert_rules import Finding
from fleet.health.alerts import LIVE_STATES, SYSTEM_RESOLVED, resolve_live
from fleet.models import Alert


def live_alert_ids(session: Session, device_pks: Sequence[int]) -> dict[int, dict[str, int]]:
    """The live alerts of many devices: device → rule → alert id."""
    live: dict[int, dict[str, int]] = {}
    if device_pks:
        stmt = select(Alert.device_pk, Alert.rule, Alert.id).where(
            Alert.device_pk.in_(device_pks), Alert.state.in_(LIVE_STATES)
        )
        for pk, rule, alert_id in session.execute(stmt):
            live.setdefault(pk, {})[rule] = alert_id
    return live


@dataclass
class AlertWrites:
    opened: list[dict[str, Any]] = field(default_factory=list)
    refreshed: list[dict[str, Any]] = field(default_factory=list)
    resolved: list[int] = field(default_factory=list)

    def add(
        self,
        device_pk: int,
        borough_id: int | None,
        findings: Sequence[Finding],
        live: Mapping[str, int],
        *,
        now: datetime,
    ) -> None:
        """Open an alert while none of its rule is live, refresh the live one while the
        condition holds, resolve it once the condition has cleared."""
        for finding in findings:
            alert_id = live.get(finding.rule)
            if finding.active and alert_id is None:
                self.opened.append(
                    {
                        "device_pk": device_pk,
                        "borough_id": borough_id,
                        "rule": finding.rule,
                        "severity": finding.severity,
                        "state": "open",
                        "message": finding.message,
                        "detail": finding.detail,
                        "opened_at": now,
                        "last_seen_at": now,
                    }
                )
            elif finding.active and alert_id is not None:
                self.refreshed.append(
                    {
                        "alert_id": alert_id,
                        "seen": now,
                        "msg": finding.message,
                        "det": finding.detail,
                    }
                )
            elif alert_id is not None:
                self.resolved.append(alert_id)

    def extend(self, other: AlertWrites) -> None:
        self.opened += other.opened
        self.refreshed += other.refreshed
        self.resolved += other.resolved

    def write(self, session: Session, *, now: datetime) -> None:
        if self.opened:
            session.execute(insert(Alert), self.opened)
        # Neither touches an alert a person has resolved (or a device deleted) since it was
        # read: no row to update is no error.
        if self.refreshed:
            session.execute(_REFRESH, self.refreshed)  # one executemany
        if self.resolved:
            resolve_live(session, Alert.id.in_(self.resolved), at=now, by=SYSTEM_RESOLVED)


_ALERTS: Table = Alert.__table__  # type: ignore[assignment]
_REFRESH = (
    update(_ALERTS)
    # Not `IN LIVE_STATES`: an executemany takes no expanding IN list.
    .where(_ALERTS.c.id == bindparam("alert_id"), _ALERTS.c.state != "resolved")
    .values(last_seen_at=bindparam("seen"), message=bindparam("msg"), detail=bindparam("det"))
)
