"""The audit log: every staff action, with who, what, where and when."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from fleet.access.principal import Principal
from fleet.models import AuditEntry
from fleet.models.base import utcnow


def record(
    session: Session,
    principal: Principal,
    action: str,
    *,
    target_type: str | None = None,
    target_id: str | int | None = None,
    borough_id: int | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditEntry:
    entry = AuditEntry(
        at=utcnow(),
        actor=principal.actor,
        action=action,
        target_type=target_type,
        target_id=None if target_id is None else str(target_id),
        borough_id=borough_id,
        detail=detail,
    )
    session.add(entry)
    return entry
