"""Which process of a scaled-out fleet runs the background jobs.

Every API replica starts the health sweep, the risk sweep and the OTA rollout engine, but
two replicas advancing one rollout or sweeping one device at once would race (double offers,
alerts opened twice, risk hours written twice). The jobs therefore run only in the process
holding a PostgreSQL advisory lock on a connection of its own; when that process dies its
session ends, the lock is released, and another replica takes over at its next check.
SQLite serves one process, which always holds the lease.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import zlib

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError

log = logging.getLogger(__name__)

#: How long a held lease is trusted before its connection is checked again.
RECHECK_S = 15.0


class Lease:
    """`held()` is true in exactly one process per database at a time."""

    def __init__(
        self, engine: Engine, name: str = "fleet-background-jobs", *, recheck_s: float = RECHECK_S
    ) -> None:
        self._engine = engine
        self._recheck_s = recheck_s
        self.name = name
        self.key = zlib.crc32(name.encode())
        self._conn: Connection | None = None
        self._checked = 0.0
        self._lock = threading.Lock()

    def held(self) -> bool:
        if self._engine.dialect.name != "postgresql":
            return True
        with self._lock:
            if self._conn is not None and self._still_held():
                return True
            return self._try_acquire()

    def release(self) -> None:
        with self._lock:
            if self._conn is not None:
                # At once, so a replica checking now takes over; a session already gone
                # took its lock with it.
                with contextlib.suppress(DBAPIError):
                    self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
            self._drop()

    def _still_held(self) -> bool:
        now = time.monotonic()
        if now - self._checked < self._recheck_s:
            return True
        assert self._conn is not None
        try:
            self._conn.exec_driver_sql("SELECT 1")
        except DBAPIError:
            log.warning("lost the %s lease with its database connection", self.name)
            self._drop()
            return False
        self._checked = now
        return True

    def _try_acquire(self) -> bool:
        try:
            conn = self._engine.connect()
            conn.execution_options(isolation_level="AUTOCOMMIT")
        except DBAPIError:
            return False
        try:
            got = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": self.key}).scalar()
        except DBAPIError:
            conn.invalidate()
            conn.close()
            return False
        if not got:
            conn.close()
            return False
        self._conn, self._checked = conn, time.monotonic()
        log.info("this process runs the background jobs (%s lease)", self.name)
        return True

    def _drop(self) -> None:
        # Invalidated, not returned to the pool: the lock belongs to the database session,
        # which must end with it rather than be handed to other code still holding it.
        if self._conn is not None:
            self._conn.invalidate()
            self._conn.close()
            self._conn = None
