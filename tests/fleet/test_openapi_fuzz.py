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


def test_every_integer_parameter_is_bounded() -> None:
    # An unbounded integer reaches the database driver, which cannot bind a value past 64 bits.
    unbounded = [
        f"{method.upper()} {path} {param['name']}"
        for path, item in APP.openapi()["paths"].items()
        for method, op in item.items()
        for param in op.get("parameters", [])
        if _integer(param.get("schema", {})) and "maximum" not in _integer(param["schema"])
    ]
    assert unbounded == []


def _integer(schema: dict) -> dict:  # type: ignore[type-arg]
    """The integer branch of a parameter's schema (plain or `anyOf` with null), if any."""
    for branch in [schema, *schema.get("anyOf", [])]:
        if branch.get("type") == "integer":
            return branch  # type: ignore[no-any-return]
    return {}
