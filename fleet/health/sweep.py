"""The periodic health sweep: liveness that changes with time passing, and alert rules."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from fleet.health.alert_batch import AlertWrites, live_alert_ids
from fleet.health.alert_rules import evaluate, thresholds_for
from fleet.health.history import FACT_COLUMNS, DeviceFacts, load_devices, load_histories
from fleet.health.retention import Retention, purge_history
from fleet.health.transitions import Transition, derive, write_transitions
from fleet.models import Borough, Device
from fleet.models.base import utcnow

log = logging.getLogger(__name__)
BATCH = 500
ATTEMPTS = 3  # per batch, when it loses a deadlock or a lock wait to another writer
# deadlock_detected, serialization_failure, lock_not_available
RETRYABLE_SQLSTATES = frozenset({"40P01", "40001", "55P03"})


@dataclass
class SweepResult:
    devices: int = 0
    state_changes: int = 0
    alerts_opened: int = 0
    devices_skipped: int = 0  # in batches that kept losing lock conflicts: next pass
    devices_left: int = 0  # not reached: the pass was told to stop (next pass or lease holder)

    def add(self, other: SweepResult) -> None:
        self.devices += other.devices
        self.state_changes += other.state_changes
        self.alerts_opened += other.alerts_opened
        self.devices_skipped += other.devices_skipped


def sweep(
    sessions: sessionmaker[Session],
    *,
    batch: int = BATCH,
    should_continue: Callable[[], bool] = lambda: True,
) -> SweepResult:
    """One pass over every device, in batches of a constant number of statements each.

    A batch that loses a deadlock is retried on its own; the rest of the pass goes on.
    `should_continue` is asked before each batch, outside any transaction: once false (the
    process is stopping, or another replica took the lease) the pass ends there. Each batch
    commits on its own and the next pass sweeps every device again, so nothing is lost.
    """
    result = SweepResult()
    with sessions() as session:
        settings = {b.id: b.alert_settings for b in session.scalars(select(Borough))}
        ids = list(session.scalars(select(Device.id).where(Device.active()).order_by(Device.id)))
    for start in range(0, len(ids), batch):
        if not should_continue():
            result.devices_left = len(ids) - start
            log.info(
                "health sweep stopped after %d of %d devices; the next pass sweeps them all",
                start,
                len(ids),
            )
            break
        pks = ids[start : start + batch]
        for attempt in range(1, ATTEMPTS + 1):
            try:
                result.add(_sweep_batch(sessions, pks, settings))
                break
            except DBAPIError as exc:
                if not _retryable(exc):
                    raise
                log.warning(
                    "health sweep batch of %d devices hit a lock conflict (attempt %d of %d): %s",
                    len(pks),
                    attempt,
                    ATTEMPTS,
                    exc.orig,
                )
        else:
            result.devices_skipped += len(pks)
    return result


def _retryable(exc: DBAPIError) -> bool:
    if getattr(exc.orig, "sqlstate", None) in RETRYABLE_SQLSTATES:
        return True
    return "database is locked" in str(exc.orig)  # SQLite's busy timeout ran out


def _sweep_batch(
    sessions: sessionmaker[Session], pks: list[int], settings: dict[int, dict | None]
) -> SweepResult:
    """Read without locks, decide in Python, then lock only the device rows to be written,
    in id order as the ingest does (fleet.ingest.store.load_devices), and write them with
    set-based statements. A device the ingest changed in between is left to the next pass,
    so the sweep never writes a state over fresher news."""
    result = SweepResult()
    with sessions.begin() as session:
        now = utcnow()
        devices = load_devices(session, pks)
        histories = load_histories(session, devices, now)
        live = live_alert_ids(session, pks)
        thresholds = {b: thresholds_for(s) for b, s in settings.items()}
        default = thresholds_for(None)
        planned: list[tuple[DeviceFacts, Transition | None, AlertWrites]] = []
        for device in devices:
            transition = derive(device, now=now)
            current = device if transition is None else replace(device, state=transition.to_state)
            findings = evaluate(
                current,
                now=now,
                thresholds=thresholds.get(device.borough_id or -1, default),
                history=histories[device.id],
            )
            writes = AlertWrites()
            writes.add(device.id, device.borough_id, findings, live.get(device.id, {}), now=now)
            planned.append((device, transition, writes))
        # A state update, and an alert insert's foreign-key check, lock the device row.
        held = _lock(session, [d.id for d, t, w in planned if t is not None or w.opened])
        transitions: list[Transition] = []
        alerts = AlertWrites()
        for device, transition, writes in planned:
            result.devices += 1
            if (transition is not None or writes.opened) and held.get(device.id) != device:
                continue  # changed (or deleted) since it was read: the next pass sees it
            if transition is not None:
                transitions.append(transition)
            alerts.extend(writes)
        write_transitions(session, transitions, now=now)
        alerts.write(session, now=now)
        result.state_changes = len(transitions)
        result.alerts_opened = len(alerts.opened)
    return result


def _lock(session: Session, pks: list[int]) -> dict[int, DeviceFacts]:
    """The rows as they are now, locked in primary-key order (FOR UPDATE is a no-op on
    SQLite, whose writers are serialised anyway)."""
    if not pks:
        return {}
    stmt = select(*FACT_COLUMNS).where(Device.id.in_(pks)).order_by(Device.id).with_for_update()
    return {row[0]: DeviceFacts(*row) for row in session.execute(stmt)}


class HealthSweeper:
    """Runs `sweep` every `interval_s` on a background thread until stopped, and the purge
    of expired history every `purge_every_s` (the first with the first sweep). Both end
    between batches once the worker is stopped or the lease is lost."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        interval_s: float = 30.0,
        *,
        retention: Retention | None = None,
        purge_every_s: float = 3600.0,
        gate: Callable[[], bool] = lambda: True,
        batch: int = BATCH,
    ) -> None:
        self._sessions = sessions
        self._gate = gate  # false: another process runs the sweep (fleet.core.lease)
        self._interval = interval_s
        self._batch = batch
        self._retention = retention or Retention()
        self._purge_every = purge_every_s
        self._next_purge = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="health-sweep", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _should_continue(self) -> bool:
        return not self._stop.is_set() and self._gate()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            if not self._gate():
                continue
            if time.monotonic() >= self._next_purge:
                self._purge()
            try:
                result = sweep(
                    self._sessions, batch=self._batch, should_continue=self._should_continue
                )
            except Exception:  # the sweep must survive a database blip and try again
                log.exception("health sweep failed; retrying next interval")
                continue
            if result.devices_skipped:
                log.error(
                    "health sweep: %d devices skipped after repeated lock conflicts",
                    result.devices_skipped,
                )
            if result.state_changes or result.alerts_opened:
                log.info(
                    "health sweep: %d devices, %d state changes, %d alerts opened",
                    result.devices,
                    result.state_changes,
                    result.alerts_opened,
                )

    def _purge(self) -> None:
        try:
            deleted = purge_history(
                self._sessions, self._retention, should_continue=self._should_continue
            )
        except Exception:  # like the sweep: try again next interval
            log.exception("purge of expired health history failed; retrying next interval")
            return
        if self._should_continue():  # else it was cut short: finish it next interval
            self._next_purge = time.monotonic() + self._purge_every
        if deleted:
            log.info("purged expired history: %s", deleted)
