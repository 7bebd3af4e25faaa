"""Run the fleet (broker, ingest and HTTP) inside a test, on free ports."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn

from fleet.api.app import create_app
from fleet.broker.url import BrokerAddress
from fleet.core.context import FleetContext, build_context
from fleet.core.settings import Settings
from fleet.runtime import FleetRuntime
from tests.conftest import free_port, wait_for_port


@dataclass
class RunningFleet:
    ctx: FleetContext
    runtime: FleetRuntime
    broker: BrokerAddress
    base_url: str


@contextmanager
def running_fleet(ctx: FleetContext) -> Iterator[RunningFleet]:
    runtime = FleetRuntime(ctx)
    broker = runtime.start()
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(ctx, commands=runtime.ingest, rollouts=runtime.ota, broker=broker),
            host="127.0.0.1",
            port=port,
            log_level="warning",
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_for_port("127.0.0.1", port)
        yield RunningFleet(ctx, runtime, broker, f"http://127.0.0.1:{port}")
    finally:
        server.should_exit = True
        thread.join(10)
        runtime.stop()


BACKENDS = [
    pytest.param("postgres+mosquitto", marks=[pytest.mark.postgres, pytest.mark.mosquitto]),
    "sqlite+embedded",
]


@contextmanager
def fleet_on_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RunningFleet]:
    """A running fleet on Mosquitto + PostgreSQL (production shape) or the embedded defaults,
    chosen by the fixture parameter (use `BACKENDS` as the params)."""
    if request.param == "postgres+mosquitto":
        broker: BrokerAddress = request.getfixturevalue("mosquitto")
        settings = Settings(
            environment="test",
            data_dir=tmp_path / "fleet",
            database_url=request.getfixturevalue("postgres_url"),
            mqtt_url=broker.url,
        )
    else:
        settings = Settings(
            environment="test",
            data_dir=tmp_path / "fleet",
            database_url=f"sqlite:///{tmp_path / 'fleet.sqlite3'}",
            embedded_broker_port=0,
        )
    ctx = build_context(settings)
    try:
        with running_fleet(ctx) as running:
            yield running
    finally:
        ctx.close()
