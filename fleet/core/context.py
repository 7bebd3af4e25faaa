"""Everything a running fleet process shares, built once and passed explicitly (no globals)."""

from __future__ import annotations

import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from fleet.core.db import make_engine, make_session_factory, upgrade
from fleet.core.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class FleetContext:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    admin_token: str

    def close(self) -> None:
        self.engine.dispose()


def build_context(settings: Settings, *, migrate: bool = True) -> FleetContext:
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    engine = make_engine(settings.resolved_database_url)
    if migrate:
        upgrade(engine)
    return FleetContext(
        settings=settings,
        engine=engine,
        sessions=make_session_factory(engine),
        admin_token=settings.admin_token or _development_token(settings.data_dir),
    )


def _development_token(data_dir: Path) -> str:
    """A random admin token kept in the data folder (mode 0600) when none is configured."""
    path = data_dir / "admin-token"
    if path.exists():
        return path.read_text().strip()
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(token + "\n")
    log.info("generated an admin API token in %s", path)
    return token
