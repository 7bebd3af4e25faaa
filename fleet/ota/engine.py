"""The rollout engine: a background thread that advances every open rollout."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from fleet.models.ota import Release, Rollout
from fleet.ota.rollout import Publisher, advance

log = logging.getLogger(__name__)


class OtaSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FLEET_OTA_", extra="ignore")

    public_url: str | None = Field(
        default=None,
        description="Base URL devices fetch release blobs from (http://host:port); "
        "default http://FLEET_HTTP_HOST:FLEET_HTTP_PORT",
    )
    tick_s: float = Field(default=5.0, gt=0, description="How often rollouts are advanced")


def blob_url(base_url: str, release: Release) -> str:
    return f"{base_url.rstrip('/')}/ota/blobs/{release.blob_path}"


def tick(sessions: sessionmaker[Session], publisher: Publisher, base_url: str) -> int:
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
                advance(session, rollout, publisher, lambda r: blob_url(base_url, r))
    return len(ids)


class RolloutEngine:
    """Runs `tick` every `interval_s` until stopped; `wake()` runs one sooner."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        publisher: Callable[[], Publisher | None],
        base_url: str,
        interval_s: float = 5.0,
    ) -> None:
        self._sessions = sessions
        self._publisher = publisher
        self.base_url = base_url
        self._interval = interval_s
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
            if publisher is None:
                continue
            try:
                tick(self._sessions, publisher, self.base_url)
            except Exception:  # a database blip must not end rollouts; try again next tick
                log.exception("rollout tick failed; retrying next interval")
