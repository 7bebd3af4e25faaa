"""Commands to devices on `cs/v1/d/{id}/cmd`; results come back on `cmd/ack`."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy.orm import Session

from fleet.ingest.profile import device_topic
from fleet.models import DesiredConfig, DeviceCommand

COMMAND_OPS = frozenset({"reboot", "sample-now", "identify", "set-config", "enter-maintenance"})


class Publisher(Protocol):
    def publish(self, topic: str, payload: bytes, *, qos: int, retain: bool = False) -> bool: ...


class CommandUnavailable(Exception):
    pass


@dataclass(frozen=True)
class SentCommand:
    id: str
    op: str
    topic: str
    payload: bytes


def build_command(device_id: str, op: str, args: dict[str, object] | None = None) -> SentCommand:
    if op not in COMMAND_OPS:
        raise ValueError(f"unknown command {op!r}; known: {', '.join(sorted(COMMAND_OPS))}")
    cmd_id = secrets.token_hex(8)
    body: dict[str, object] = {"sv": 1, "id": cmd_id, "op": op}
    if args:
        body["args"] = args
    payload = json.dumps(body, separators=(",", ":")).encode()
    return SentCommand(cmd_id, op, device_topic(device_id, "cmd"), payload)


def connected(publisher: Publisher | None) -> Publisher:
    if publisher is None:
        raise CommandUnavailable("the fleet is not connected to a broker; try again shortly")
    return publisher


def publish_kept(
    session: Session,
    publisher: Publisher,
    row: DeviceCommand | DesiredConfig,
    topic: str,
    payload: bytes,
    *,
    what: str,
    retain: bool = False,
) -> None:
    """Commit `row` (what was sent, waiting for the device's answer), then publish.

    Committed first: a mains device answers within milliseconds, and its answer must find
    the row. A refused publish marks it not_sent rather than waiting for an answer that
    cannot come.
    """
    session.commit()
    if not publisher.publish(topic, payload, qos=1, retain=retain):
        row.state, row.error = "not_sent", "the broker connection was down"
        session.commit()
        raise CommandUnavailable(f"the broker connection is down; {what} not sent")
