"""End-to-end ingest: simulated devices → private Mosquitto → ingest process(es) → PostgreSQL.

Phases, each on a fresh broker and counted against the database:
1. backlog: devices publish a backlog into the ingest's persistent session (and into two
   discarding subscribers': the ingest's own MQTT client, and paho), then each discarding
   subscriber drains its copy (the broker's drain rate; the faster one is the limit the
   pipeline is compared with) and one ingest worker process drains its copy into PostgreSQL
   (the pipeline's rate);
2. two ingest worker processes on a shared subscription drain a backlog the same way;
3. live load at a steady rate for end-to-end latency (device time → ingest batch);
4. 10,000 device connections held, then a reconnect storm, with memory measured around it.
Needs PostgreSQL (FLEET_BENCH_POSTGRES_URL, default the test server) and mosquitto.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import psutil
from sqlalchemy import func, select

from fleet.core.context import FleetContext, build_context
from fleet.core.settings import Settings
from fleet.loadgen import harness
from fleet.loadgen.fleetdb import count_against_db, register_devices
from fleet.loadgen.infra import PrivateMosquitto
from fleet.loadgen.manifest import Manifest
from fleet.loadgen.payloads import READINGS_PER_PACK
from fleet.loadgen.run import LoadConfig, _Fleet, run_load, run_load_async
from fleet.models import Device, Reading

BACKLOG_DEVICES = int(os.environ.get("FLEET_BENCH_DEVICES", "1000"))
BACKLOG_PACKS = int(os.environ.get("FLEET_BENCH_PACKS", "60000"))
HELD_CONNECTIONS = int(os.environ.get("FLEET_BENCH_CONNECTIONS", "10000"))
LIVE_RATE = 2000.0
INGEST_FILTER = "cs/v1/d/#"


def run() -> dict[str, Any]:
    admin = os.environ.get("FLEET_BENCH_POSTGRES_URL", harness.DEFAULT_ADMIN_URL)
    figures: dict[str, Any] = {}
    manifests: list[Manifest] = []
    with (
        tempfile.TemporaryDirectory(prefix="fleet-bench-") as tmp,
        harness.temporary_database(admin) as url,
    ):
        work = Path(tmp)
        ctx = build_context(Settings(environment="test", data_dir=work / "data", database_url=url))
        try:
            manifests.append(_backlog(ctx, url, work / "one", workers=1, figures=figures))
            manifests.append(_backlog(ctx, url, work / "two", workers=2, figures=figures))
            manifests += _live_and_connections(ctx, url, work / "live", figures)
            lost = duplicates = unexpected = 0
            for manifest in manifests:
                tally = count_against_db(ctx.sessions, manifest)
                lost += tally.lost
                duplicates += tally.duplicates
                unexpected += tally.unexpected
            figures.update(lost=lost, duplicates=duplicates, unexpected=unexpected)
        finally:
            ctx.close()
    figures.update(
        cpus=os.cpu_count(),
        python=platform.python_version(),
        machine=platform.machine(),
        load_average_1m=round(os.getloadavg()[0], 2),
    )
    return figures


def _backlog(
    ctx: FleetContext, url: str, work: Path, *, workers: int, figures: dict[str, Any]
) -> Manifest:
    prefix = f"cs-bl{workers}"
    cfg = LoadConfig(
        devices=BACKLOG_DEVICES,
        messages=BACKLOG_PACKS // BACKLOG_DEVICES,
        rate=0,
        health_every=0,
        prefix=prefix,
    )
    register_devices(ctx.sessions, cfg.device_ids())
    ids = [f"fleet-ingest-{i}" for i in range(workers)]
    group = "ingest" if workers > 1 else None
    with PrivateMosquitto(work) as mq:
        topic = f"$share/{group}/{INGEST_FILTER}" if group else INGEST_FILTER
        for client_id in ids:
            harness.prime_session(mq.port, client_id, topic)
        if workers == 1:
            harness.prime_session(mq.port, "bench-drain", INGEST_FILTER)
            harness.prime_session(mq.port, "bench-drain-paho", INGEST_FILTER)
        manifest = run_load(replace(cfg, port=mq.port))
        # Each device also published `online` and `offline` status messages.
        messages = manifest.packs + 2 * cfg.devices
        if workers == 1:
            received, seconds = harness.drain(mq.port, "bench-drain", messages)
            figures["broker_drain_messages_per_s"] = round(received / seconds)
            received, seconds = harness.drain_paho(mq.port, "bench-drain-paho", messages)
            figures["paho_drain_messages_per_s"] = round(received / seconds)
            figures["backlog_publish_messages_per_s"] = round(
                messages / manifest.totals()["elapsed_s"]
            )
        procs = [
            harness.spawn_ingest(
                database_url=url,
                mqtt_url=mq.url,
                client_id=client_id,
                share_group=group,
                data_dir=work / "data",
                log_path=work / f"{client_id}.log",
            )
            for client_id in ids
        ]
        watched = [psutil.Process(p.pid) for p in procs]
        split = _CpuSplit(watched, mq) if workers == 1 else None
        try:
            if split is not None:
                split.start(lambda: harness.count_readings(ctx.sessions, prefix))
            done = harness.wait_for(
                lambda: harness.count_readings(ctx.sessions, prefix) >= manifest.readings, 300, 0.5
            )
            if split is not None:
                figures.update(split.stop(harness.count_readings(ctx.sessions, prefix)))
            cpu = sum(p.cpu_times().user + p.cpu_times().system for p in watched)
            rss = max(p.memory_info().rss for p in watched)
        finally:
            for proc in procs:
                harness.stop_process(proc)
    low, high = harness.received_window(ctx.sessions, prefix)
    seconds = max((high - low).total_seconds(), 1e-9)
    if workers == 1:
        figures["messages_per_s"] = round(messages / seconds)
        figures["readings_per_s"] = round(manifest.readings / seconds)
        figures["drain_ratio"] = round(
            figures["messages_per_s"] / figures["broker_drain_messages_per_s"], 3
        )
        # Against paho's drain, as figures before the intake client were measured.
        figures["paho_drain_ratio"] = round(
            figures["messages_per_s"] / figures["paho_drain_messages_per_s"], 3
        )
        figures["backlog_messages"] = messages
        figures["backlog_devices"] = cfg.devices
        # CPU over the process's whole life (start-up and migrations included), per second
        # of draining: an upper bound of the steady-state share of one core.
        figures["ingest_cpu_percent"] = round(100 * cpu / seconds)
        figures["ingest_rss_mb"] = round(rss / 2**20, 1)
    else:
        figures["two_workers_messages_per_s"] = round(messages / seconds)
        figures["two_workers_readings_per_s"] = round(manifest.readings / seconds)
    if not done:
        figures[f"incomplete_{workers}"] = "the ingest did not finish the backlog within 300 s"
    return manifest


class _CpuSplit:
    """CPU time of the ingest, the database server and the broker while a backlog drains,
    per message: where the machine's cores go (the database only when it runs here)."""

    def __init__(self, ingest: list[psutil.Process], broker: PrivateMosquitto) -> None:
        self._ingest = ingest
        self._broker = [psutil.Process(broker.proc.pid)] if broker.proc is not None else []
        self._begin: dict[str, dict[int, float]] = {}
        self._stored = 0
        self._t0 = 0.0

    def _sample(self) -> dict[str, dict[int, float]]:
        database = [p for p in psutil.process_iter(["name"]) if p.info["name"] == "postgres"]
        return {
            "ingest": _cpu_by_pid(self._ingest),
            "database": _cpu_by_pid(database),
            "broker": _cpu_by_pid(self._broker),
        }

    def start(self, stored: Callable[[], int]) -> None:
        """Begin once the drain has (start-up and migrations are not the pipeline's cost)."""
        harness.wait_for(lambda: stored() > 0, 120, 0.02)
        self._begin, self._stored, self._t0 = self._sample(), stored(), time.monotonic()

    def stop(self, stored: int) -> dict[str, Any]:
        """Per telemetry message (status messages, 3 % of the backlog, ride along)."""
        end, seconds = self._sample(), max(time.monotonic() - self._t0, 1e-9)
        messages = max((stored - self._stored) // READINGS_PER_PACK, 1)
        per_message: dict[str, float | None] = {}
        cores: dict[str, float | None] = {}
        for part, now in end.items():
            if not now:  # e.g. a database on another machine: nothing to see here
                per_message[part] = cores[part] = None
                continue
            before = self._begin.get(part, {})
            # Processes that started in the window count whole; ones that ended are missed.
            used = sum(cpu - before.get(pid, 0.0) for pid, cpu in now.items())
            per_message[part] = round(1e6 * used / messages, 1)
            cores[part] = round(used / seconds, 2)
        return {"cpu_us_per_message": per_message, "cpu_cores_while_draining": cores}


def _cpu_by_pid(procs: list[psutil.Process]) -> dict[int, float]:
    out: dict[int, float] = {}
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            times = proc.cpu_times()
            out[proc.pid] = times.user + times.system
    return out


def _live_and_connections(
    ctx: FleetContext, url: str, work: Path, figures: dict[str, Any]
) -> list[Manifest]:
    live = LoadConfig(devices=1000, messages=10, rate=LIVE_RATE, health_every=0, prefix="cs-live")
    held = LoadConfig(
        devices=HELD_CONNECTIONS,
        messages=3,
        rate=HELD_CONNECTIONS / 10.0,  # every device sends a pack every 10 s
        health_every=0,
        connect_rate=1000.0,
        prefix="cs-held",
        keepalive=60,
        hold_s=1.0,  # stay connected after the last pack until the storm is measured
    )
    register_devices(ctx.sessions, live.device_ids() + held.device_ids())
    with PrivateMosquitto(work) as mq:
        harness.prime_session(mq.port, "fleet-ingest-0", INGEST_FILTER)
        proc = harness.spawn_ingest(
            database_url=url,
            mqtt_url=mq.url,
            client_id="fleet-ingest-0",
            data_dir=work / "data",
            log_path=work / "ingest.log",
        )
        try:
            if not harness.wait_until_subscribed(work / "ingest.log"):
                figures["incomplete_live"] = "the ingest did not subscribe within 60 s"
            live_manifest = run_load(replace(live, port=mq.port))
            harness.wait_for(
                lambda: harness.count_readings(ctx.sessions, "cs-live") >= live_manifest.readings,
                60,
            )
            figures.update(_latency(ctx, "cs-live"))
            ingest = psutil.Process(proc.pid)
            broker = psutil.Process(mq.proc.pid) if mq.proc else None
            held_manifest = asyncio.run(
                run_load_async(
                    replace(held, port=mq.port),
                    on_running=lambda fleet: _storm(fleet, ctx, ingest, broker, figures),
                )
            )
            harness.wait_for(
                lambda: harness.count_readings(ctx.sessions, "cs-held") >= held_manifest.readings,
                60,
            )
        finally:
            harness.stop_process(proc)
    return [live_manifest, held_manifest]


def _latency(ctx: FleetContext, prefix: str) -> dict[str, Any]:
    with ctx.sessions() as session:
        delays = sorted(
            (received - ts).total_seconds() * 1000
            for received, ts in session.execute(
                select(Reading.received_at, Reading.ts)
                .join(Device, Device.id == Reading.device_pk)
                .where(Device.device_id.startswith(prefix), Reading.metric == "temperature")
            )
        )
    if not delays:
        return {}
    return {
        "live_rate_messages_per_s": LIVE_RATE,
        "latency_p50_ms": round(statistics.median(delays), 1),
        "latency_p99_ms": round(delays[int(len(delays) * 0.99) - 1], 1),
    }


async def _storm(
    fleet: _Fleet,
    ctx: FleetContext,
    ingest: psutil.Process,
    broker: psutil.Process | None,
    figures: dict[str, Any],
) -> None:
    target = fleet.cfg.devices
    start = time.monotonic()
    while fleet.connected < target and time.monotonic() - start < 120:
        await asyncio.sleep(0.2)
    figures["connections_held"] = fleet.connected
    figures["connect_ramp_s"] = round(time.monotonic() - start, 1)
    await asyncio.sleep(3)  # let every device's first pack and status reach the database
    with ctx.sessions() as session:
        figures["held_devices_online"] = int(
            session.scalar(
                select(func.count())
                .select_from(Device)
                .where(Device.device_id.startswith("cs-held"), Device.state == "online")
            )
            or 0
        )
    loadgen = psutil.Process()
    before = {
        "broker": broker.memory_info().rss if broker else 0,
        "ingest": ingest.memory_info().rss,
        "loadgen": loadgen.memory_info().rss,
    }
    storm_at = time.monotonic()
    fleet.storm()
    await asyncio.sleep(0.5)
    while fleet.connected < target and time.monotonic() - storm_at < 120:
        await asyncio.sleep(0.2)
    figures["storm_reconnected"] = fleet.connected
    figures["storm_reconnect_s"] = round(time.monotonic() - storm_at, 1)
    await asyncio.sleep(3)
    after = {
        "broker": broker.memory_info().rss if broker else 0,
        "ingest": ingest.memory_info().rss,
        "loadgen": loadgen.memory_info().rss,
    }
    for name in before:
        figures[f"storm_{name}_rss_mb"] = round(after[name] / 2**20, 1)
        figures[f"storm_{name}_rss_growth_mb"] = round((after[name] - before[name]) / 2**20, 1)
