"""Readiness: may this process take HTTP traffic? (`/healthz` only says it is alive.)

Ready means the database answers a trivial query in time: without it every API call and page
fails. The broker connection is reported but never makes a process unready: all replicas share
one broker, so taking them out of service while it is away would only add an outage of the
dashboard and the read API to one of commands (which answer 503 meanwhile); a connection that
stays down shows in `fleet_broker_connected`.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Protocol, runtime_checkable

from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from fleet.core.db import failure_reason

log = logging.getLogger(__name__)

# Under the probe's own timeout (deploy/kubernetes/50-api.yaml), so the answer is a 503 with
# a reason rather than a probe timeout.
DB_CHECK_TIMEOUT_S = 3.0


@runtime_checkable
class BrokerLink(Protocol):
    """A process's own broker connection: the ingest worker's or a publish-only one."""

    connected: threading.Event


class Readiness:
    def __init__(
        self,
        engine: Engine,
        broker: BrokerLink | None,
        *,
        timeout_s: float = DB_CHECK_TIMEOUT_S,
    ) -> None:
        self._engine = engine
        self._broker = broker
        self._timeout_s = timeout_s
        self._lock = threading.Lock()
        self._pending: Future[None] | None = None
        self._last_failure: str | None = None

    def check(self) -> tuple[bool, dict[str, str]]:
        """(ready, report). The report is public (probes do not sign in): it names states,
        not hosts or driver messages, which go to the log."""
        failure = self._database_failure()
        report = {"status": "ready" if failure is None else "not ready"}
        report["database"] = "ok" if failure is None else "unavailable"
        if self._broker is not None:
            report["broker"] = "connected" if self._broker.connected.is_set() else "disconnected"
        self._log_change(failure)
        return failure is None, report

    def _database_failure(self) -> str | None:
        # One query at a time: probes of a database that hangs must not pile up threads and
        # pooled connections, they wait on the query already running.
        with self._lock:
            if self._pending is None or self._pending.done():
                self._pending = Future()
                threading.Thread(
                    target=self._query, args=(self._pending,), name="readiness", daemon=True
                ).start()
            pending = self._pending
        try:
            pending.result(self._timeout_s)
        except FutureTimeout:
            return f"no answer within {self._timeout_s:g} s"
        except DBAPIError as exc:
            return failure_reason(exc)
        except Exception as exc:  # the pool's own timeout, a driver bug: still not ready
            return f"{type(exc).__name__}: {exc}"
        return None

    def _query(self, result: Future[None]) -> None:
        try:
            with self._engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception as exc:
            result.set_exception(exc)
        else:
            result.set_result(None)

    def _log_change(self, failure: str | None) -> None:
        # Probes come every few seconds: log when readiness changes, not on every probe.
        with self._lock:
            before, self._last_failure = self._last_failure, failure
        if failure is not None and before is None:
            log.warning("not ready: the database does not answer (%s)", failure)
        elif failure is None and before is not None:
            log.info("ready: the database answers again")
