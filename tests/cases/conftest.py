"""Case and risk-engine fixtures: the fleet fixtures on SQLite and PostgreSQL, plus data."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from fleet.api.app import create_app
from fleet.core.context import FleetContext
from tests.firmware.conftest import micropython_bin  # noqa: F401  (re-exported fixture)
from tests.fleet.conftest import fleet_ctx, world  # noqa: F401  (re-exported fixtures)


@pytest.fixture
def client(fleet_ctx: FleetContext) -> Iterator[TestClient]:  # noqa: F811
    with TestClient(create_app(fleet_ctx)) as c:
        yield c
