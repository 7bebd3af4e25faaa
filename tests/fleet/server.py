"""Run the fleet (broker, ingest and HTTP) inside a test, on free ports."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import uvicorn

from fleet.api.app import create_app
from fleet.broker.url import BrokerAddress
from fleet.core.context import FleetContext
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
            create_app(ctx, commands=runtime.ingest),
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
