"""Fleet-side fixtures: a migrated context on each database backend."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fleet.core.context import FleetContext, build_context
from fleet.core.settings import Settings


@pytest.fixture
def fleet_ctx(database_url: str, tmp_path: Path) -> Iterator[FleetContext]:
    ctx = build_context(
        Settings(environment="test", data_dir=tmp_path / "data", database_url=database_url)
    )
    try:
        yield ctx
    finally:
        ctx.close()
