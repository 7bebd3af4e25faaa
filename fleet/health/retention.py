"""Retention of the fleet's operational history: health snapshots, state changes, commands
and their answers, rejects.

Readings follow each borough's dataset policy (`fleet.feed.stewardship`); this history is
for operating the fleet and would otherwise grow without end (at 100,000 devices, 2.4 M
health snapshots a day).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from fleet.core.db import rowcount
from fleet.models import DeviceCommand, HealthSnapshot, RejectedMessage, StateChange
from fleet.models.base import utcnow

log = logging.getLogger(__name__)

# Rows deleted per transaction: a long backlog (the first purge of an old database) is
# removed in short transactions that never hold up the ingest for long.
CHUNK = 5_000


@dataclass(frozen=True)
class Retention:
    health_days: int = 90  # health snapshots, state changes, commands
    rejects_days: int = 30


def purge_history(
    sessions: sessionmaker[Session],
    retention: Retention,
    *,
    now: datetime | None = None,
    chunk: int = CHUNK,
    should_continue: Callable[[], bool] = lambda: True,
) -> dict[str, int]:
    """Delete history older than its retention; returns the rows deleted per table.

    `should_continue` is asked before each chunk's transaction: once false (the process is
    stopping, or another replica took the lease) the purge ends there, its committed chunks
    deleted and the rest still expired for the next purge to find."""
    now = now or utcnow()
    health_cutoff = now - timedelta(days=retention.health_days)
    tables: list[tuple[Any, Any]] = [
        (HealthSnapshot, HealthSnapshot.at < health_cutoff),
        (StateChange, StateChange.at < health_cutoff),
        (DeviceCommand, DeviceCommand.sent_at < health_cutoff),
        (
            RejectedMessage,
            RejectedMessage.received_at < now - timedelta(days=retention.rejects_days),
        ),
    ]
    deleted: dict[str, int] = {}
    for model, expired in tables:
        total = 0
        while True:
            if not should_continue():
                if total:
                    deleted[model.__tablename__] = total
                log.info(
                    "purge of expired history stopped at %s after deleting %s; "
                    "the next purge deletes the rest",
                    model.__tablename__,
                    deleted or "nothing",
                )
                return deleted
            with sessions.begin() as session:
                ids = select(model.id).where(expired).order_by(model.id).limit(chunk)
                count = rowcount(session.execute(delete(model).where(model.id.in_(ids))))
            total += count
            if count < chunk:
                break
        if total:
            deleted[model.__tablename__] = total
    return deleted
