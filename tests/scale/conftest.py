"""Fault-injection fixtures: a private Mosquitto with the shipped limits, a migrated
PostgreSQL database, and a load run in the background while a test breaks things."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from fleet.broker.url import BrokerAddress
from fleet.core.context import FleetContext, build_context
from fleet.core.settings import Settings
from fleet.ingest.handler import IngestHandler
from fleet.ingest.worker import IngestWorker
from fleet.loadgen.fleetdb import register_devices
from fleet.loadgen.infra import PrivateMosquitto, ServiceUnavailable
from fleet.loadgen.manifest import Manifest
from fleet.loadgen.run import LoadConfig, run_load
from tests.conftest import missing_service


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[PrivateMosquitto]:
    try:
        mq = PrivateMosquitto(tmp_path / "mosquitto")
    except ServiceUnavailable as exc:
        missing_service(str(exc))
    mq.start()
    try:
        yield mq
    finally:
        mq.stop()


def make_context(database_url: str, tmp_path: Path) -> FleetContext:
    return build_context(
        Settings(environment="test", data_dir=tmp_path / "data", database_url=database_url)
    )


@pytest.fixture
def fleet_db(postgres_url: str, tmp_path: Path) -> Iterator[FleetContext]:
    ctx = make_context(postgres_url, tmp_path)
    try:
        yield ctx
    finally:
        ctx.close()


def worker_for(
    ctx: FleetContext, mq: PrivateMosquitto, client_id: str = "fleet-ingest", **kwargs: object
) -> IngestWorker:
    worker = IngestWorker(
        IngestHandler(ctx.sessions),
        BrokerAddress("127.0.0.1", mq.port),
        client_id=client_id,
        **kwargs,  # type: ignore[arg-type]
    )
    worker.start()
    if not worker.connected.wait(10):
        worker.stop()
        raise AssertionError("the ingest worker did not connect to the private broker")
    return worker


class BackgroundLoad:
    """A load run on its own thread; `result()` waits for it and returns its manifest."""

    def __init__(self, cfg: LoadConfig) -> None:
        self.cfg = cfg
        self._manifest: Manifest | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="loadgen", daemon=True)

    def _run(self) -> None:
        try:
            self._manifest = run_load(self.cfg)
        except BaseException as exc:  # reported by result()
            self._error = exc

    def start(self) -> BackgroundLoad:
        self._thread.start()
        return self

    def result(self, timeout: float = 90.0) -> Manifest:
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise AssertionError(f"the load run did not finish within {timeout}s")
        if self._error is not None:
            raise self._error
        assert self._manifest is not None
        return self._manifest


def load(ctx: FleetContext, mq: PrivateMosquitto, **fields: object) -> BackgroundLoad:
    """Register the simulated devices, then start sending in the background."""
    cfg = replace(LoadConfig(port=mq.port, health_every=5), **fields)  # type: ignore[arg-type]
    register_devices(ctx.sessions, cfg.device_ids())
    return BackgroundLoad(cfg).start()
