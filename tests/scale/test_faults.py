"""Faults during load: every case ends with every acknowledged reading stored exactly once.

Loss is counted end to end: the load generator records each pack the broker acknowledged,
and the database must hold exactly its readings, no more, no fewer.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from fleet.core.context import FleetContext
from fleet.loadgen import harness
from fleet.loadgen.fleetdb import count_against_db
from fleet.loadgen.infra import PrivateMosquitto, TcpProxy
from fleet.loadgen.manifest import Manifest
from tests.scale.conftest import load, make_context, worker_for

pytestmark = [pytest.mark.postgres, pytest.mark.mosquitto, pytest.mark.timeout(120)]


def _all_stored(ctx: FleetContext, manifest: Manifest, timeout: float = 40.0) -> None:
    def arrived() -> bool:
        tally = count_against_db(ctx.sessions, manifest)
        return tally.lost == 0 and tally.health_lost == 0

    harness.wait_for(arrived, timeout)
    tally = count_against_db(ctx.sessions, manifest)
    assert manifest.readings > 0
    assert (tally.lost, tally.duplicates, tally.unexpected) == (0, 0, 0), tally
    assert (tally.health_lost, tally.health_duplicates) == (0, 0), tally


def _progress(ctx: FleetContext, prefix: str, at_least: int = 1, timeout: float = 30.0) -> None:
    reached = harness.wait_for(
        lambda: harness.count_readings(ctx.sessions, prefix) >= at_least, timeout, interval=0.05
    )
    assert reached, f"no readings from {prefix} reached the database: the load never started"


def test_kill_9_of_the_ingest_process_loses_nothing(
    fleet_db: FleetContext, broker: PrivateMosquitto, postgres_url: str, tmp_path: Path
) -> None:
    def spawn() -> object:
        return harness.spawn_ingest(
            database_url=postgres_url,
            mqtt_url=broker.url,
            client_id="fleet-ingest-0",
            data_dir=tmp_path / "data",
            log_path=tmp_path / "ingest.log",
        )

    # The worker's persistent session exists before devices send, as in production.
    harness.prime_session(broker.port, "fleet-ingest-0", "cs/v1/d/#")
    proc = spawn()
    run = load(fleet_db, broker, devices=100, messages=40, rate=800, prefix="cs-k9")
    try:
        _progress(fleet_db, "cs-k9", at_least=300)
        os.kill(proc.pid, signal.SIGKILL)  # type: ignore[attr-defined]
        proc.wait()  # type: ignore[attr-defined]
        _progress(fleet_db, "cs-k9", at_least=0)
        # The broker keeps the dead worker's session and unacknowledged messages.
        proc = spawn()
        manifest = run.result()
        _all_stored(fleet_db, manifest)
    finally:
        harness.stop_process(proc)  # type: ignore[arg-type]


def test_broker_restart_during_load_loses_nothing(
    fleet_db: FleetContext, broker: PrivateMosquitto
) -> None:
    worker = worker_for(fleet_db, broker)
    try:
        run = load(fleet_db, broker, devices=100, messages=40, rate=800, prefix="cs-br")
        _progress(fleet_db, "cs-br", at_least=300)
        broker.restart()  # graceful: Mosquitto saves its queues and sessions
        manifest = run.result()
        _all_stored(fleet_db, manifest)
        assert sum(d.connects for d in manifest.devices.values()) > 100  # devices did reconnect
    finally:
        worker.stop()


def test_database_outage_during_load_loses_nothing(
    broker: PrivateMosquitto, postgres_url: str, tmp_path: Path
) -> None:
    direct = make_context(postgres_url, tmp_path)
    host_port = postgres_url.split("@", 1)[1].split("/", 1)[0]
    host, port = host_port.split(":")
    proxy = TcpProxy(host, int(port)).start()
    via_proxy = make_context(postgres_url.replace(host_port, f"127.0.0.1:{proxy.port}"), tmp_path)
    worker = worker_for(via_proxy, broker)
    try:
        run = load(direct, broker, devices=100, messages=40, rate=800, prefix="cs-db")
        _progress(direct, "cs-db", at_least=300)
        proxy.cut()
        outage = harness.wait_for(lambda: worker.counters.db_errors >= 2, 20, interval=0.05)
        proxy.restore()
        assert outage, "the ingest never noticed the database outage"
        manifest = run.result()
        _all_stored(direct, manifest)
    finally:
        worker.stop()
        proxy.close()
        via_proxy.close()
        direct.close()


def test_full_ingest_queue_applies_backpressure_and_loses_nothing(
    broker: PrivateMosquitto, postgres_url: str, tmp_path: Path
) -> None:
    direct = make_context(postgres_url, tmp_path)
    host_port = postgres_url.split("@", 1)[1].split("/", 1)[0]
    host, port = host_port.split(":")
    proxy = TcpProxy(host, int(port)).start()
    via_proxy = make_context(postgres_url.replace(host_port, f"127.0.0.1:{proxy.port}"), tmp_path)
    worker = worker_for(via_proxy, broker, queue_size=20, batch_size=10)
    try:
        run = load(direct, broker, devices=100, messages=30, rate=800, prefix="cs-qf")
        _progress(direct, "cs-qf", at_least=100)
        proxy.cut()  # the writer stalls; the queue fills; paho's thread must wait
        filled = harness.wait_for(lambda: worker.counters.backpressure > 0, 20, interval=0.05)
        proxy.restore()
        assert filled, "the ingest queue never filled"
        manifest = run.result()
        _all_stored(direct, manifest)
    finally:
        worker.stop()
        proxy.close()
        via_proxy.close()
        direct.close()


def test_two_workers_on_a_shared_subscription_split_without_loss_or_duplicates(
    fleet_db: FleetContext, broker: PrivateMosquitto
) -> None:
    workers = [
        worker_for(fleet_db, broker, client_id=f"fleet-ingest-{i}", share_group="ingest")
        for i in range(2)
    ]
    try:
        run = load(fleet_db, broker, devices=200, messages=20, rate=1500, prefix="cs-sh")
        manifest = run.result()
        _all_stored(fleet_db, manifest)
        delivered = [w.counters.received for w in workers]
        # Every device message reached exactly one worker (status online/offline included).
        sent = manifest.packs + sum(len(d.health) for d in manifest.devices.values())
        assert harness.wait_for(lambda: sum(w.counters.stored for w in workers) >= sent, 20)
        assert all(n > 0 for n in delivered), delivered
        assert sum(w.counters.readings for w in workers) == manifest.readings
    finally:
        for w in workers:
            w.stop()
