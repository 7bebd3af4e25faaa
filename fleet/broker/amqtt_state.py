"""The embedded broker's state kept across a graceful restart, as Mosquitto keeps it in its
persistence file: retained messages (OTA offers for devices that are away), persistent
sessions (their subscriptions, the QoS 1 messages queued while they were away, the ones in
flight) and messages the broker acknowledged but had not yet routed.

The file is written when the broker stops and removed once it is read back, so a crash
never brings back an older state (a withdrawn offer, messages already delivered).
"""

from __future__ import annotations

import base64
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

STATE_VERSION = 1


class StateUnreadable(ValueError):
    pass


@dataclass(frozen=True)
class Restored:
    retained: int
    sessions: int
    queued: int
    in_flight: int
    pending: int

    def __str__(self) -> str:
        return (
            f"{self.retained} retained messages, {self.sessions} sessions with "
            f"{self.queued} queued and {self.in_flight} in flight, "
            f"{self.pending} messages to route"
        )


def _message(topic: str, data: bytes | bytearray | None, qos: int | None) -> dict[str, Any]:
    return {"topic": topic, "qos": qos, "data": base64.b64encode(bytes(data or b"")).decode()}


def _items(queue: Any) -> list[Any]:
    # asyncio.Queue has no way to look without taking; its deque is read, not changed.
    return list(queue._queue)


def capture(broker: Any) -> dict[str, Any]:
    """What the broker holds now; synchronous, so nothing changes while it is read."""
    subscriptions: dict[int, list[list[Any]]] = {}
    for topic_filter, holders in broker._subscriptions.items():
        for session, qos in holders:
            subscriptions.setdefault(id(session), []).append([topic_filter, qos])
    # Routed with each subscriber's own QoS, as the broker routes what a client publishes.
    pending = [
        {**_message(b["topic"], b["data"], b.get("qos")), "retain": False}
        for b in _items(broker._broadcast_queue)
    ]
    sessions = []
    now = time.time()
    for client_id, (session, _) in broker._sessions.items():
        for m in _items(session.delivered_message_queue):  # acknowledged, not yet routed
            retain = bool(m.publish_packet is not None and m.publish_packet.retain_flag)
            pending.append({**_message(m.topic, m.data, None), "retain": retain, "qos_in": m.qos})
        if session.clean_session:
            continue
        sessions.append(
            {
                "client_id": client_id,
                # Its 30 days away start now if it was connected until the stop.
                "disconnected_at": (
                    now
                    if session.transitions.is_connected()
                    else session.last_disconnect_time or now
                ),
                "subscriptions": subscriptions.get(id(session), []),
                "in_flight": [
                    {**_message(m.topic, m.data, m.qos), "packet_id": pid}
                    for pid, m in session.inflight_out.items()
                ],
                "queued": [
                    _message(m.topic, m.data, m.qos) for m in _items(session.retained_messages)
                ],
            }
        )
    retained = [_message(t, m.data, m.qos) for t, m in broker._retained_messages.items()]
    return {
        "version": STATE_VERSION,
        "retained": retained,
        "sessions": sessions,
        "pending": pending,
    }


def save(path: Path, state: dict[str, Any]) -> None:
    """Write atomically: a stop cut short leaves the old file or the new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        # Readings and commands are in it: for the service's own user only.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with open(fd, "w", encoding="utf-8") as f:
            json.dump(state, f, separators=(",", ":"))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def load(path: Path) -> dict[str, Any] | None:
    """The saved state, or None when there is none. A file that cannot be read back is moved
    aside (kept for inspection, never overwritten) and the broker starts empty."""
    if not path.exists():
        return None
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
        _check(state)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, StateUnreadable) as exc:
        aside = path.with_name(
            f"{path.name}.unreadable-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}"
        )
        os.replace(path, aside)
        log.error(
            "the embedded broker's saved state %s cannot be read (%s): kept as %s; "
            "starting without it",
            path,
            exc,
            aside,
        )
        return None
    return state


def _check(state: Any) -> None:
    if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
        version = state.get("version") if isinstance(state, dict) else None
        raise StateUnreadable(f"expected version {STATE_VERSION}, found {version!r}")
    try:
        messages = [*state["retained"], *state["pending"]]
        for s in state["sessions"]:
            if not isinstance(s["client_id"], str) or not isinstance(
                s["disconnected_at"], (int, float)
            ):
                raise StateUnreadable(f"session {s.get('client_id')!r} is malformed")
            for topic_filter, qos in s["subscriptions"]:
                if not isinstance(topic_filter, str) or qos not in (0, 1, 2):
                    raise StateUnreadable(f"subscription {topic_filter!r} is malformed")
            messages += [*s["queued"], *s["in_flight"]]
            if not all(m["packet_id"] in range(1, 65536) for m in s["in_flight"]):
                raise StateUnreadable(f"session {s['client_id']!r} has a bad packet id")
        for m in messages:
            qos = (m["qos"], m.get("qos_in"))
            if not isinstance(m["topic"], str) or not all(q in (None, 0, 1, 2) for q in qos):
                raise StateUnreadable(f"message on {m.get('topic')!r} is malformed")
            base64.b64decode(m["data"], validate=True)
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, StateUnreadable):
            raise
        raise StateUnreadable(f"malformed: {exc!r}") from exc


def _data(m: dict[str, Any]) -> bytes:
    return base64.b64decode(m["data"])


def restore(broker: Any, state: dict[str, Any]) -> Restored:
    """Put a loaded state back into a broker that has not started listening yet."""
    from amqtt.broker import RetainedApplicationMessage
    from amqtt.session import OutgoingApplicationMessage

    for m in state["retained"]:
        broker._retained_messages[m["topic"]] = RetainedApplicationMessage(
            None, m["topic"], _data(m), m["qos"]
        )
    queued = in_flight = 0
    for s in state["sessions"]:
        handler, session = broker.create_offline_session(s["client_id"])
        session.clean_session = False
        session.last_disconnect_time = s["disconnected_at"]
        broker._sessions[s["client_id"]] = (session, handler)
        for topic_filter, qos in s["subscriptions"]:
            broker._subscriptions.setdefault(topic_filter, []).append((session, qos))
        for m in s["in_flight"]:
            message = OutgoingApplicationMessage(
                m["packet_id"], m["topic"], m["qos"], _data(m), False
            )
            # Sent before: the next connection sends it again flagged DUP.
            message.publish_packet = message.build_publish_packet()
            session.inflight_out[m["packet_id"]] = message
            session._packet_id = max(session._packet_id, m["packet_id"])
        for m in s["queued"]:
            session.retained_messages.put_nowait(
                RetainedApplicationMessage(None, m["topic"], _data(m), m["qos"])
            )
        queued += len(s["queued"])
        in_flight += len(s["in_flight"])
    for m in state["pending"]:
        data = _data(m)
        if m.get("retain"):
            if data:
                broker._retained_messages[m["topic"]] = RetainedApplicationMessage(
                    None, m["topic"], data, m.get("qos_in")
                )
            else:  # an empty retained message clears the topic
                broker._retained_messages.pop(m["topic"], None)
        broadcast: dict[str, Any] = {"session": None, "topic": m["topic"], "data": data}
        if m["qos"] is not None:
            broadcast["qos"] = m["qos"]
        broker._broadcast_queue.put_nowait(broadcast)
    return Restored(
        len(state["retained"]), len(state["sessions"]), queued, in_flight, len(state["pending"])
    )
