"""Turn MQTT messages into stored rows or recorded rejects; never raises on bad input."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from fleet.ingest.batch import Decoded, Outcome, decode, write_batch
from fleet.ingest.errors import RejectReason
from fleet.ingest.reject_log import RejectLog
from fleet.ingest.store import insert_rejects, is_sample_conflict, reject_row

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
        reject_log: RejectLog | None = None,
    ) -> None:
        self._sessions = session_factory
        self._max_payload = max_payload_bytes
        self._clock = clock
        self._reject_log = reject_log or RejectLog(log)

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

    def decode(
        self, topic: str, payload: bytes, dup: bool = False, retained: bool = False
    ) -> Decoded:
        """The CPU-bound half, safe to run on another thread than `store`. `dup`: the broker
        delivers the message again (its reject may be stored already); `retained`: the
        broker's stored copy, replayed because the ingest subscribed."""
        return decode(
            topic,
            payload,
            now=self._clock(),
            max_payload_bytes=self._max_payload,
            dup=dup,
            retained=retained,
        )

    def store(self, decoded: Sequence[Decoded]) -> list[Outcome]:
        """The database half: one transaction for the whole batch.

        Errors that say the database cannot be used now (unreachable, restarting) propagate:
        the caller retries the batch. A message the database refuses for its content (a value
        out of a column's range, text it cannot hold) would fail every retry and hold up
        everything behind it, so it is found by storing the batch's messages one at a time and
        recorded as a reject instead."""
        outcomes = self._store(decoded)
        self._reject_log.note(
            (o.reason or "", m.topic, o.detail or "")
            for m, o in zip(decoded, outcomes, strict=True)
            if o.action == "rejected"
        )
        return outcomes

    def _store(self, decoded: Sequence[Decoded]) -> list[Outcome]:
        if not decoded:
            return []
        try:
            return self._write(decoded)
        except Exception as exc:
            if not refused_for_content(exc):
                raise
            if len(decoded) == 1:
                return [self._refused(decoded[0], exc)]
            log.warning(
                "the database refused a batch of %d messages (%s); storing them one at a time",
                len(decoded),
                _first_line(exc),
            )
            return [self._store([m])[0] for m in decoded]

    def _write(self, decoded: Sequence[Decoded]) -> list[Outcome]:
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

    def _refused(self, m: Decoded, exc: Exception) -> Outcome:
        detail = f"valid, but the database refused to store it: {_first_line(exc)}"
        log.error("%s on %s recorded as a reject: %s", m.device_id, m.topic, detail)
        row = reject_row(
            topic=m.topic,
            device_id=m.device_id,
            reason=RejectReason.STORE_FAILED.value,
            detail=detail,
            payload=m.payload,
            received_at=datetime.fromtimestamp(self._clock(), UTC),
        )
        with self._sessions.begin() as session:
            insert_rejects(session, [row])
        return Outcome("rejected", reason=RejectReason.STORE_FAILED.value, detail=detail)


def refused_for_content(exc: BaseException) -> bool:
    """Whether retrying the same messages would fail the same way: the database refused a
    value or a constraint (DataError, IntegrityError), or the ingest's own code raised.
    Anything else from the database or its driver (connection lost, shutting down, a table
    missing while a migration runs) may pass on a later try."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    if names & {"DataError", "IntegrityError"}:
        return True
    # DB-API drivers derive every error from a class named Error (psycopg.Error, sqlite3.Error).
    return not (isinstance(exc, SQLAlchemyError) or "Error" in names)


def _first_line(exc: BaseException) -> str:
    # SQLAlchemy appends the statement and its parameters, which may be long or hold payloads.
    err = getattr(exc, "orig", None) or exc
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}"
