"""Property-based requests from the OpenAPI document: no input makes the service fail (5xx)."""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from fleet.api.app import create_app
from fleet.core.context import build_context
from fleet.core.settings import Settings
from tests.fleet.conftest import World
from tests.fleet.test_borough_scoping import RecordingPublisher


def _app(tmp_path: Path):  # type: ignore[no-untyped-def]
    ctx = build_context(Settings(environment="test", data_dir=tmp_path / "fuzz"))
    world = World(ctx)
    # A connected broker stand-in: without one, commands answer 503 by design.
    return create_app(ctx, commands=RecordingPublisher()), world


_TMP = Path(__import__("tempfile").mkdtemp(prefix="fleet-fuzz-"))
APP, WORLD = _app(_TMP)
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@pytest.mark.parametrize("who", ["admin", "staff_camden"])
@schema.parametrize()
@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_no_server_errors(case, who: str) -> None:  # type: ignore[no-untyped-def]
    response = case.call(headers={"Authorization": f"Bearer {WORLD.tokens[who]}"})
    assert response.status_code < 500, f"{case.method} {case.formatted_path}: {response.text}"
