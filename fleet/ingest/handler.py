"""Turn MQTT messages into stored rows or recorded rejects; never raises on bad input."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from sqlalchemy.orm import Session, sessionmaker

from fleet.ingest.batch import Decoded, Outcome, decode, write_batch
from fleet.ingest.store import is_sample_conflict

log = logging.getLogger(__name__)

__all__ = ["Decoded", "IngestHandler", "Outcome"]


class IngestHandler:
    """Validate and store device messages; database errors propagate so nothing is acked."""

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

    @property
    def parallel_writes(self) -> bool:
        """Whether batches may be stored from several threads at once (not on SQLite, which
        takes one writer at a time)."""
        bind = self._sessions.kw.get("bind")
        return bind is not None and bind.dialect.name != "sqlite"

    def handle(self, topic: str, payload: bytes) -> Outcome:
        """One message in its own transaction."""
        return self.handle_batch([(topic, payload)])[0]

    def handle_batch(self, messages: Sequence[tuple[str, bytes]]) -> list[Outcome]:
        """Many messages in one transaction: all are stored (or rejected) or none is."""
        return self.store([self.decode(topic, payload) for topic, payload in messages])

    def decode(self, topic: str, payload: bytes) -> Decoded:
        """The CPU-bound half, safe to run on another thread than `store`."""
        return decode(topic, payload, now=self._clock(), max_payload_bytes=self._max_payload)

    def store(self, decoded: Sequence[Decoded]) -> list[Outcome]:
        """The database half: one transaction for the whole batch."""
        if not decoded:
            return []
        try:
            return write_batch(self._sessions, decoded, now=self._clock())
        except Exception as exc:
            if not is_sample_conflict(exc):
                raise
            # Something that does not take the device's row lock stored one of these samples
            # between the lookup and the insert; the batch was rolled back, so store it again,
            # skipping whatever is there by then.
            log.warning("a sample of this batch was stored meanwhile by another writer: %s", exc)
            return write_batch(self._sessions, decoded, now=self._clock(), tolerate_conflicts=True)
