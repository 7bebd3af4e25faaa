"""The periodic health sweep: liveness that changes with time passing, and alert rules."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from fleet.health.alert_rules import evaluate, thresholds_for
from fleet.health.alerts import apply_findings
from fleet.health.retention import Retention, purge_history
from fleet.health.transitions import refresh_state
from fleet.models import Borough, Device
from fleet.models.base import utcnow

log = logging.getLogger(__name__)
BATCH = 500


@dataclass
class SweepResult:
    devices: int = 0
    state_changes: int = 0
    alerts_opened: int = 0


def sweep(sessions: sessionmaker[Session]) -> SweepResult:
    """One pass over every device, in batches so each transaction stays short."""
    result = SweepResult()
    with sessions() as session:
        settings = {b.id: b.alert_settings for b in session.scalars(select(Borough))}
        ids = list(session.scalars(select(Device.id).order_by(Device.id)))
    for start in range(0, len(ids), BATCH):
        with sessions.begin() as session:
            now = utcnow()
            devices = session.scalars(
                select(Device).where(Device.id.in_(ids[start : start + BATCH]))
            ).all()
            for device in devices:
                result.devices += 1
                if refresh_state(session, device, now=now):
                    result.state_changes += 1
                thresholds = thresholds_for(settings.get(device.borough_id or -1))
                findings = evaluate(session, device, now=now, thresholds=thresholds)
                result.alerts_opened += len(apply_findings(session, device, findings, now=now))
    return result


class HealthSweeper:
    """Runs `sweep` every `interval_s` on a background thread until stopped, and the purge
    of expired history every `purge_every_s` (the first with the first sweep)."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        interval_s: float = 30.0,
        *,
        retention: Retention | None = None,
        purge_every_s: float = 3600.0,
        gate: Callable[[], bool] = lambda: True,
    ) -> None:
        self._sessions = sessions
        self._gate = gate  # false: another process runs the sweep (fleet.core.lease)
        self._interval = interval_s
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

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            if not self._gate():
                continue
            if time.monotonic() >= self._next_purge:
                self._purge()
            try:
                result = sweep(self._sessions)
            except Exception:  # the sweep must survive a database blip and try again
                log.exception("health sweep failed; retrying next interval")
                continue
            if result.state_changes or result.alerts_opened:
                log.info(
                    "health sweep: %d devices, %d state changes, %d alerts opened",
                    result.devices,
                    result.state_changes,
                    result.alerts_opened,
                )

    def _purge(self) -> None:
        try:
            deleted = purge_history(self._sessions, self._retention)
        except Exception:  # like the sweep: try again next interval
            log.exception("purge of expired health history failed; retrying next interval")
            return
        self._next_purge = time.monotonic() + self._purge_every
        if deleted:
            log.info("purged expired history: %s", deleted)
