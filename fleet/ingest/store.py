"""Persist what devices send: idempotent readings, health, status and rejects."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from fleet.ingest.senml import Sample
from fleet.models import Device, HealthSnapshot, Reading, RejectedMessage

PAYLOAD_EXCERPT_BYTES = 512


def find_device(session: Session, *, device_id: str) -> Device | None:
    return session.scalars(select(Device).where(Device.device_id == device_id)).one_or_none()


def store_samples(
    session: Session, *, device: Device, samples: Sequence[Sample], received_at: datetime
) -> int:
    """Insert readings, skipping ones already stored; returns how many were new."""
    if not samples:
        return 0
    rows = [
        {
            "device_pk": device.id,
            "metric": s.metric,
            "ts": s.ts,
            "value": s.value,
            "unit": s.unit,
            "received_at": received_at,
        }
        for s in samples
    ]
    dialect = session.get_bind().dialect.name
    stmt: Any
    if dialect == "postgresql":
        stmt = postgresql.insert(Reading).on_conflict_do_nothing(constraint="uq_readings_sample")
    elif dialect == "sqlite":
        stmt = sqlite.insert(Reading).on_conflict_do_nothing()
    else:  # pragma: no cover - only the two supported backends reach here
        stmt = insert(Reading)
    result = session.execute(stmt.returning(Reading.id), rows)
    inserted = len(result.all())
    _update_latest(device, samples)
    mark_seen(device, at=received_at)
    return inserted


def _update_latest(device: Device, samples: Sequence[Sample]) -> None:
    # A per-device cache of the newest value per metric keeps the overview off the readings table.
    latest = dict(device.latest or {})
    for s in samples:
        current = latest.get(s.metric)
        if current is None or s.ts.timestamp() >= current["t"]:
            latest[s.metric] = {"v": s.value, "u": s.unit, "t": s.ts.timestamp()}
    device.latest = latest
    newest = max(s.ts for s in samples)
    if device.latest_at is None or newest > device.latest_at:
        device.latest_at = newest


def mark_seen(device: Device, *, at: datetime) -> None:
    if device.last_seen_at is None or at > device.last_seen_at:
        device.last_seen_at = at


def apply_status(device: Device, *, state: str, at: datetime) -> None:
    device.status = state
    device.status_at = at
    if state != "offline":
        mark_seen(device, at=at)


def apply_health(
    session: Session, device: Device, *, snapshot: dict[str, Any], at: datetime
) -> None:
    session.add(HealthSnapshot(device_pk=device.id, at=at, data=snapshot))
    device.health = snapshot
    device.health_at = at
    fw = snapshot.get("fw_version")
    if isinstance(fw, str):
        device.fw_version = fw[:32]
    mark_seen(device, at=at)


def record_reject(
    session: Session,
    *,
    topic: str,
    device_id: str | None,
    reason: str,
    detail: str,
    payload: bytes,
    received_at: datetime,
) -> None:
    session.add(
        RejectedMessage(
            received_at=received_at,
            topic=topic[:512],
            device_id=device_id,
            reason=reason,
            detail=detail[:2000],
            payload_excerpt=payload[:PAYLOAD_EXCERPT_BYTES].decode("utf-8", "backslashreplace"),
            payload_size=len(payload),
        )
    )
