"""Turn one MQTT message into stored rows or a recorded reject; never raises on bad input."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.orm import Session, sessionmaker

from fleet.health.transitions import refresh_state
from fleet.ingest import store
from fleet.ingest.errors import Rejected, RejectReason
from fleet.ingest.profile import STATUS_STATES, supported_version
from fleet.ingest.senml import decode_health, decode_telemetry
from fleet.ingest.topics import Upstream, parse_topic

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Outcome:
    action: str  # "stored" | "ignored" | "rejected"
    inserted: int = 0
    newest_sample_ts: float | None = None
    reason: str | None = None
    detail: str | None = None


class IngestHandler:
    """Validate and store device messages; database errors propagate so the message is not acked."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        *,
        max_payload_bytes: int = 64 * 1024,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._sessions = session_factory
        self._max_payload = max_payload_bytes
        self._clock = clock

    def handle(self, topic: str, payload: bytes) -> Outcome:
        now = self._clock()
        received_at = datetime.fromtimestamp(now, UTC)
        device_id: str | None = None
        with self._sessions.begin() as session:
            try:
                parsed = parse_topic(topic)
                device_id = parsed.device_id
                if parsed.kind is None:
                    return Outcome("ignored")
                if len(payload) > self._max_payload:
                    raise Rejected(
                        RejectReason.PAYLOAD_TOO_LARGE,
                        f"{len(payload)} bytes; the limit is {self._max_payload}",
                    )
                device = store.find_device(session, device_id=device_id)
                if device is None:
                    raise Rejected(
                        RejectReason.UNKNOWN_DEVICE,
                        f"device {device_id!r} is not registered; enrol it first",
                    )
                inserted = 0
                newest: float | None = None
                if parsed.kind is Upstream.TELEMETRY:
                    samples = decode_telemetry(payload, device_id, now=now)
                    inserted = store.store_samples(
                        session, device=device, samples=samples, received_at=received_at
                    )
                    newest = max(s.ts.timestamp() for s in samples)
                elif parsed.kind is Upstream.HEALTH:
                    snapshot = decode_health(payload, device_id, now=now)
                    store.apply_health(session, device, snapshot=snapshot, at=received_at)
                elif parsed.kind is Upstream.STATUS:
                    store.apply_status(device, state=_status_state(payload), at=received_at)
                else:
                    store.mark_seen(device, at=received_at)
                refresh_state(session, device, now=received_at)
                return Outcome("stored", inserted=inserted, newest_sample_ts=newest)
            except Rejected as exc:
                log.info("rejected %s on %s: %s", exc.reason, topic, exc.detail)
                store.record_reject(
                    session,
                    topic=topic,
                    device_id=device_id,
                    reason=exc.reason.value,
                    detail=exc.detail,
                    payload=payload,
                    received_at=received_at,
                )
                return Outcome("rejected", reason=exc.reason.value, detail=exc.detail)


def _status_state(payload: bytes) -> str:
    try:
        doc = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise Rejected(RejectReason.MALFORMED_JSON, f"status is not JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise Rejected(RejectReason.BAD_STATUS, "status must be a JSON object")
    if not supported_version(doc.get("sv")):
        raise Rejected(RejectReason.UNSUPPORTED_SCHEMA, f"status sv={doc.get('sv')!r}")
    state = doc.get("state")
    if not isinstance(state, str) or state not in STATUS_STATES:
        raise Rejected(
            RejectReason.BAD_STATUS,
            f"state {state!r} is not one of {', '.join(sorted(STATUS_STATES))}",
        )
    return str(state)
