"""Commands to devices on `cs/v1/d/{id}/cmd`; results come back on `cmd/ack`."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Protocol

from fleet.ingest.profile import device_topic

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
