"""The rollout engine: a background thread that advances every open rollout."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from fleet.models.ota import Release, Rollout
from fleet.ota.offers import Publisher, restate_offers
from fleet.ota.rollout import advance
from fleet.ota.waves import STALL_S

log = logging.getLogger(__name__)


class OtaSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FLEET_OTA_", extra="ignore")

    public_url: str | None = Field(
        default=None,
        description="Base URL devices fetch release blobs from (http://host:port); "
        "default http://FLEET_HTTP_HOST:FLEET_HTTP_PORT",
    )
    tick_s: float = Field(default=5.0, gt=0, description="How often rollouts are advanced")
    restate_s: float = Field(
        default=3600.0,
        gt=0,
        description="How often every device's retained offer is published again from the "
        "database (also once at start), in case the broker lost or kept a stale one",
    )
    stall_min: float = Field(
        default=STALL_S / 60,
        gt=0,
        description="Minutes a device in the middle of an update may go without reporting "
        "progress before its update counts as failed (which feeds the automatic pause)",
    )


def blob_url(base_url: str, release: Release) -> str:
    return f"{base_url.rstrip('/')}/ota/blobs/{release.blob_path}"


def tick(
    sessions: sessionmaker[Session],
    publisher: Publisher,
    base_url: str,
    stall_s: float = STALL_S,
) -> int:
    """Advance every running or completed rollout, each in its own transaction."""
    with sessions() as session:
        ids = list(
            session.scalars(
                select(Rollout.id)
                .where(Rollout.state.in_(("running", "completed")))
                .order_by(Rollout.id)
            )
        )
    for rollout_id in ids:
        with sessions.begin() as session:
            rollout = session.get(Rollout, rollout_id)
            if rollout is not None:
                advance(
                    session, rollout, publisher, lambda r: blob_url(base_url, r), stall_s=stall_s
                )
    return len(ids)


def restate(sessions: sessionmaker[Session], publisher: Publisher, base_url: str) -> bool:
    """Every device's retained offer published again; False if some could not be sent."""
    with sessions() as session:
        offers, withdrawals, ok = restate_offers(
            session, publisher, lambda r: blob_url(base_url, r)
        )
    if offers or withdrawals:
        log.info("restated %d update offers and %d withdrawals", offers, withdrawals)
    return ok


class RolloutEngine:
    """Runs `tick` every `interval_s` until stopped; `wake()` runs one sooner. Every
    `restate_s`, and first at start, each device's retained offer is published again."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        publisher: Callable[[], Publisher | None],
        base_url: str,
        interval_s: float = 5.0,
        restate_s: float = 3600.0,
        stall_s: float = STALL_S,
        gate: Callable[[], bool] = lambda: True,
    ) -> None:
        self._sessions = sessions
        self._gate = gate  # false: another process advances rollouts (fleet.core.lease)
        self._stall_s = stall_s
        self._publisher = publisher
        self.base_url = base_url
        self._interval = interval_s
        self._restate_s = restate_s
        self._restated_at: float | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ota-rollouts", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self._interval)
            self._wake.clear()
            if self._stop.is_set():
                return
            publisher = self._publisher()
            if publisher is None or not self._gate():
                continue
            try:
                self._restate_when_due(publisher)
                tick(self._sessions, publisher, self.base_url, self._stall_s)
            except Exception:  # a database blip must not end rollouts; try again next tick
                log.exception("rollout tick failed; retrying next interval")

    def _restate_when_due(self, publisher: Publisher) -> None:
        now = time.monotonic()
        if self._restated_at is not None and now - self._restated_at < self._restate_s:
            return
        if restate(self._sessions, publisher, self.base_url):
            self._restated_at = now  # else again next tick: the connection was down
