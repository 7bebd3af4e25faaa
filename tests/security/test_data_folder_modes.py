"""The embedded database holds password hashes, tenants' addresses and the feed's pseudonym
key: its folder and files are its owner's only."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from fleet.core.context import build_context
from fleet.core.settings import Settings


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_a_new_data_folder_and_database_are_owner_only(tmp_path: Path) -> None:
    data = tmp_path / "fleet-data"
    ctx = build_context(Settings(environment="test", data_dir=data))
    try:
        with ctx.sessions.begin() as s:
            s.execute(text("SELECT 1"))
        database = Path(ctx.engine.url.database or "")
        assert database.parent == data
        assert _mode(data) == 0o700
        found = [p for p in data.iterdir() if p.name.startswith(database.name)]
        assert database in found and len(found) >= 2  # with its -wal/-shm companions
        assert {p.name: _mode(p) for p in found} == {p.name: 0o600 for p in found}
    finally:
        ctx.close()


def test_an_existing_readable_database_is_tightened(tmp_path: Path) -> None:
    database = tmp_path / "old.sqlite3"
    database.touch(mode=0o644)
    database.chmod(0o644)
    settings = Settings(
        environment="test", data_dir=tmp_path / "d", database_url=f"sqlite:///{database}"
    )
    build_context(settings).close()
    assert _mode(database) == 0o600
