"""Finding audit entries by action, actor, target and time, within the reader's boroughs: the
dashboard's audit page, the API and the CSV a borough hands over as evidence of what was done
and when."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session, sessionmaker

from fleet.access.principal import Principal
from fleet.core.spreadsheet import text_cell
from fleet.models import AuditEntry, Borough

CSV_HEADER = ("id", "at", "actor", "action", "target_type", "target_id", "borough", "detail")


class AuditFilterError(ValueError):
    """A filter that cannot match anything as asked (the reader is told which part)."""


@dataclass(frozen=True)
class AuditFilter:
    action: str | None = None
    actor: str | None = None  # part of "user:3 a@b.org", "token:7" or "system", any case
    target_type: str | None = None
    target_id: str | None = None
    since: datetime | None = None  # inclusive
    until: datetime | None = None  # exclusive

    def __post_init__(self) -> None:
        if self.since is not None and self.until is not None and self.since >= self.until:
            raise AuditFilterError("the start must be before the end")

    def params(self) -> dict[str, str]:
        """The filters that are set, as query parameters (for pager and export links)."""
        out = {
            k: v
            for k, v in (
                ("action", self.action),
                ("actor", self.actor),
                ("target_type", self.target_type),
                ("target_id", self.target_id),
            )
            if v
        }
        for name, at in (("since", self.since), ("until", self.until)):
            if at is not None:
                out[name] = at.isoformat()
        return out


def _scoped(principal: Principal, stmt: Select) -> Select:
    if principal.borough_ids is not None:
        stmt = stmt.where(AuditEntry.borough_id.in_(principal.borough_ids))
    return stmt


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped.lower()}%"


def _filtered(principal: Principal, wanted: AuditFilter, stmt: Select) -> Select:
    stmt = _scoped(principal, stmt)
    if wanted.action:
        stmt = stmt.where(AuditEntry.action == wanted.action)
    if wanted.actor:
        stmt = stmt.where(func.lower(AuditEntry.actor).like(_like(wanted.actor), escape="\\"))
    if wanted.target_type:
        stmt = stmt.where(AuditEntry.target_type == wanted.target_type)
    if wanted.target_id:
        stmt = stmt.where(AuditEntry.target_id == wanted.target_id)
    if wanted.since is not None:
        stmt = stmt.where(AuditEntry.at >= wanted.since)
    if wanted.until is not None:
        stmt = stmt.where(AuditEntry.at < wanted.until)
    return stmt


def find(
    session: Session, principal: Principal, wanted: AuditFilter, *, limit: int, offset: int = 0
) -> list[AuditEntry]:
    """Newest first."""
    stmt = _filtered(principal, wanted, select(AuditEntry))
    return list(session.scalars(stmt.order_by(AuditEntry.id.desc()).limit(limit).offset(offset)))


def count(session: Session, principal: Principal, wanted: AuditFilter) -> int:
    stmt = _filtered(principal, wanted, select(func.count()).select_from(AuditEntry))
    return int(session.scalar(stmt) or 0)


def choices(session: Session, principal: Principal) -> tuple[list[str], list[str]]:
    """The actions and target types the reader's entries hold, for the filter form's lists."""
    actions = _scoped(principal, select(AuditEntry.action).distinct())
    types = _scoped(
        principal,
        select(AuditEntry.target_type).where(AuditEntry.target_type.is_not(None)).distinct(),
    )
    return sorted(session.scalars(actions)), sorted(t for t in session.scalars(types) if t)


def stream_csv(
    sessions: sessionmaker[Session],
    principal: Principal,
    wanted: AuditFilter,
    *,
    chunk: int = 500,
) -> Iterator[str]:
    """The matching entries, oldest first (the order events happened), a chunk at a time.

    Opens its own session: a streamed response outlives the request's session. Free text
    (actor, target, detail) is made safe to open in a spreadsheet.
    """
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(CSV_HEADER)
    stmt = _filtered(
        principal,
        wanted,
        select(AuditEntry, Borough.code).outerjoin(Borough, Borough.id == AuditEntry.borough_id),
    )
    with sessions() as session:
        rows = session.execute(stmt.order_by(AuditEntry.id).execution_options(yield_per=chunk))
        for n, (entry, borough) in enumerate(rows, start=1):
            writer.writerow(
                (
                    entry.id,
                    entry.at.isoformat(),
                    text_cell(entry.actor),
                    entry.action,
                    entry.target_type or "",
                    text_cell(entry.target_id or ""),
                    borough or "",
                    text_cell(json.dumps(entry.detail) if entry.detail else ""),
                )
            )
            if n % chunk == 0:
                yield buf.getvalue()
                buf.seek(0)
                buf.truncate()
    yield buf.getvalue()
