"""Commands kept with their answers: sent by a person, answered by the device on `cmd/ack`.

The row is committed before the command is published (`send.publish_kept`), so an answer
arriving at once finds it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from fleet.access import audit
from fleet.access.principal import Principal
from fleet.commands import settings
from fleet.commands.send import Publisher, SentCommand, build_command, connected, publish_kept
from fleet.ingest.errors import Rejected, RejectReason
from fleet.ingest.jsondoc import parse_json
from fleet.ingest.profile import supported_version
from fleet.models import Device, DeviceCommand
from fleet.models.base import utcnow
from fleet.models.device import ANSWER_ERROR_CHARS


def issue(
    session: Session,
    publisher: Publisher | None,
    *,
    device: Device,
    op: str,
    principal: Principal,
) -> SentCommand:
    """Send `op` to the device, keep it, audit it; CommandUnavailable when not sent."""
    publisher = connected(publisher)
    command = build_command(device.device_id, op)
    row = DeviceCommand(
        device_pk=device.id,
        command_id=command.id,
        op=op,
        sent_by=principal.actor,
        sent_at=utcnow(),
        state="sent",
    )
    session.add(row)
    publish_kept(session, publisher, row, command.topic, command.payload, what="the command was")
    audit.record(
        session,
        principal,
        f"device.command.{op}",
        target_type="device",
        target_id=device.device_id,
        borough_id=device.borough_id,
        detail={"command_id": command.id},
    )
    session.commit()
    return command


def decode_ack(payload: bytes) -> dict[str, Any]:
    """{"id", "ok", "result"|"error"}; Rejected (with a reason) if it breaks the schema."""
    doc = parse_json(payload, "cmd/ack")
    if not isinstance(doc, dict):
        raise Rejected(RejectReason.MALFORMED_JSON, "cmd/ack must be a JSON object")
    if not supported_version(doc.get("sv")):
        raise Rejected(RejectReason.UNSUPPORTED_SCHEMA, f"cmd/ack sv={doc.get('sv')!r}")
    if doc.get("id") is not None and not isinstance(doc.get("id"), str):
        raise Rejected(RejectReason.MALFORMED_JSON, "cmd/ack 'id' must be a string or null")
    if not isinstance(doc.get("ok"), bool):
        raise Rejected(RejectReason.MALFORMED_JSON, "cmd/ack needs 'ok': true or false")
    if not doc["ok"] and not isinstance(doc.get("error"), str):
        raise Rejected(RejectReason.MALFORMED_JSON, "a failed cmd/ack needs an 'error' string")
    return doc


def record_answer(session: Session, device_pk: int, ack: dict[str, Any], at: datetime) -> bool:
    """Store the device's answer on its command, or on the settings it answers; False when
    nothing of ours has that id (an answer to a command that could not be parsed)."""
    command_id = ack.get("id")
    if not command_id:
        return False
    version = settings.config_version(command_id)
    if version is not None:
        return settings.record_answer(session, device_pk, version, ack, at)
    ok = bool(ack["ok"])
    error = None if ok else str(ack.get("error"))[:ANSWER_ERROR_CHARS]
    done = session.execute(
        update(DeviceCommand)
        .where(
            DeviceCommand.device_pk == device_pk,
            DeviceCommand.command_id == command_id,
            # A redelivered answer ({"duplicate": true}) does not overwrite the first one.
            DeviceCommand.answered_at.is_(None),
        )
        .values(
            state="ok" if ok else "failed",
            answered_at=at,
            result=ack.get("result") if ok else None,
            error=error,
        )
    )
    return bool(getattr(done, "rowcount", 0))


def recent(session: Session, device_pk: int, *, limit: int = 20) -> Sequence[DeviceCommand]:
    stmt = select(DeviceCommand).where(DeviceCommand.device_pk == device_pk)
    return session.scalars(stmt.order_by(DeviceCommand.id.desc()).limit(limit)).all()
