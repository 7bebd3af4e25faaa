"""Everything a running fleet process shares, built once and passed explicitly (no globals)."""

from __future__ import annotations

import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from fleet.core.db import failure_reason, make_engine, make_session_factory, masked_url, upgrade
from fleet.core.settings import Settings

log = logging.getLogger(__name__)


class ConfigurationError(RuntimeError):
    """The settings name a data folder or database this process cannot use; the message names
    the variable to change. The `fleet` command prints it as one line and exits 2."""


@dataclass
class FleetContext:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    admin_token: str

    def close(self) -> None:
        self.engine.dispose()


def build_context(settings: Settings, *, migrate: bool = True) -> FleetContext:
    """Raises ConfigurationError when the data folder or the database cannot be used."""
    if settings.database_url is None:  # the embedded SQLite file lives there
        ensure_data_dir(settings, instead="FLEET_DATABASE_URL")
    engine = _open_database(settings, migrate=migrate)
    try:
        admin_token = settings.admin_token or _development_token(settings)
    except BaseException:
        engine.dispose()
        raise
    return FleetContext(
        settings=settings,
        engine=engine,
        sessions=make_session_factory(engine),
        admin_token=admin_token,
    )


def ensure_data_dir(settings: Settings, *, instead: str = "") -> Path:
    """The data folder (owner-only), created only when something is written there: a process
    on an external database and broker, with its secrets configured, never needs one (a
    container's working folder is often not writable). `instead` names the setting that
    would make writing there unnecessary."""
    try:
        settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigurationError(
            f"cannot use the data folder {settings.data_dir} ({exc.strerror or exc}); "
            "choose a writable one with FLEET_DATA_DIR (or --data-dir)"
            + (f", or set {instead}" if instead else "")
        ) from exc
    return settings.data_dir


def _open_database(settings: Settings, *, migrate: bool) -> Engine:
    url = settings.resolved_database_url
    if settings.database_url is None:
        hint = f"check FLEET_DATA_DIR (the SQLite file {url.removeprefix('sqlite:///')})"
    else:
        hint = "check FLEET_DATABASE_URL and that the database is running"
    try:
        engine = make_engine(url)
    except (ArgumentError, ValueError) as exc:
        # Its message repeats the URL, password and all.
        raise ConfigurationError(
            "FLEET_DATABASE_URL is not a database URL: use "
            "postgresql+psycopg://user:password@host:5432/database or sqlite:///path"
        ) from exc
    except OSError as exc:  # the SQLite file cannot be created
        raise ConfigurationError(
            f"cannot use the database at {masked_url(url)} ({exc.strerror or exc}); {hint}"
        ) from exc
    if migrate:
        try:
            upgrade(engine)
        except OperationalError as exc:
            engine.dispose()
            raise ConfigurationError(
                f"cannot use the database at {masked_url(url)}: {failure_reason(exc)}; {hint}"
            ) from exc
    return engine


def _development_token(settings: Settings) -> str:
    """A random admin token kept in the data folder (mode 0600) when none is configured."""
    path = settings.data_dir / "admin-token"
    if path.exists():
        return path.read_text().strip()
    token = secrets.token_urlsafe(32)
    ensure_data_dir(settings, instead="FLEET_ADMIN_TOKEN")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process won the race: use its token
        return path.read_text().strip()
    except OSError as exc:
        raise ConfigurationError(
            f"cannot write a generated admin token to {path} ({exc.strerror or exc}); "
            "set FLEET_ADMIN_TOKEN, or choose a writable FLEET_DATA_DIR"
        ) from exc
    with os.fdopen(fd, "w") as fh:
        fh.write(token + "\n")
    log.info("generated an admin API token in %s", path)
    return token
