"""Run a simulated fleet: N asyncio devices, paced, with reconnect storms and bad payloads."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import resource
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from fleet.loadgen import payloads
from fleet.loadgen.manifest import DeviceLog, Manifest
from fleet.loadgen.mqtt import MqttClient, MqttError, Will
from fleet.loadgen.payloads import Kind

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadConfig:
    host: str = "127.0.0.1"
    port: int = 1883
    devices: int = 100
    prefix: str = "cs-load"
    # Telemetry packs per device; the run ends when every device has sent them.
    messages: int = 10
    # Total telemetry packs per second over all devices; 0: each device as fast as acks come.
    rate: float = 100.0
    health_every: int = 10  # one health pack per this many telemetry packs (0: none)
    ota_every: int = 0  # one OTA progress report per this many packs (0: none)
    bad_ratio: float = 0.0  # share of uplinks replaced by a payload the ingest must refuse
    connect_rate: float = 2000.0  # new connections per second while ramping up
    keepalive: int = 60
    clean_session: bool = False  # like the firmware's default
    # Seconds after the start at which every device drops its connection at once (no
    # DISCONNECT, so last wills fire) and reconnects without backoff.
    storm_at: tuple[float, ...] = ()
    hold_s: float = 0.0  # keep connections open this long after the last pack (liveness tests)
    max_run_s: float = 600.0  # stop sending new packs after this, whatever is left
    drain_timeout_s: float = 60.0  # how long unacknowledged packs are retried after that
    seed: int = 1

    def device_ids(self) -> list[str]:
        return [f"{self.prefix}-{i:05d}" for i in range(self.devices)]


def raise_fd_limit(wanted: int) -> int:
    """Each simulated device is a socket; lift the soft limit as far as the hard one allows."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(wanted, soft)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return target


class _Fleet:
    def __init__(self, cfg: LoadConfig, manifest: Manifest) -> None:
        self.cfg = cfg
        self.manifest = manifest
        self.clients: list[MqttClient] = []
        self.storms = 0  # reconnect storms so far
        self.finished = asyncio.Event()  # every device has sent (and had acked) its packs
        self.stop_sending = asyncio.Event()  # no new packs; retry what is pending
        self.give_up = asyncio.Event()  # stop retrying too
        self.next_storm = asyncio.Event()  # set by the next reconnect storm
        self.done_devices = 0
        self.came_online = 0  # devices connected at least once
        self.all_online = asyncio.Event()
        self._next_connect = 0.0

    @property
    def connected(self) -> int:
        return sum(1 for c in self.clients if c.is_connected)

    async def connect_slot(self) -> None:
        # Spread the initial ramp so the broker is not hit by 10,000 SYNs in one millisecond.
        now = time.monotonic()
        wait = self._next_connect - now
        self._next_connect = max(now, self._next_connect) + 1.0 / self.cfg.connect_rate
        if wait > 0:
            await asyncio.sleep(wait)

    def storm(self) -> None:
        self.storms += 1
        dropped = 0
        for client in self.clients:
            if client.is_connected:
                client.abort()
                dropped += 1
        self.manifest.storm_drops.append(dropped)
        self.next_storm.set()  # wakes the held devices, which reconnect
        self.next_storm = asyncio.Event()


async def _device(fleet: _Fleet, device_id: str, index: int) -> None:
    cfg = fleet.cfg
    rng = random.Random(cfg.seed * 1_000_003 + index)
    dlog: DeviceLog = fleet.manifest.device(device_id)
    client = MqttClient(
        cfg.host,
        cfg.port,
        device_id,
        keepalive=cfg.keepalive,
        clean_session=cfg.clean_session,
        will=Will(payloads.topic(device_id, Kind.STATUS), payloads.status("offline")),
    )
    fleet.clients.append(client)
    interval = cfg.devices / cfg.rate if cfg.rate > 0 else 0.0
    start = time.monotonic() + rng.uniform(0, interval)
    sent = 0
    last_bt = 0.0
    pending: tuple[Kind, bytes, float] | None = None
    backoff = 0.5
    storms_seen = 0
    await fleet.connect_slot()
    try:
        while not fleet.give_up.is_set():
            if pending is None and (sent >= cfg.messages or fleet.stop_sending.is_set()):
                break
            try:
                if not client.is_connected:
                    storms_seen = fleet.storms
                    await _come_online(fleet, client, device_id, dlog)
                    backoff = 0.5
                if pending is None:
                    if interval:
                        delay = start + sent * interval - time.monotonic()
                        if delay > 0:
                            await asyncio.sleep(delay)
                    # Unique per device (the readings' key is device, metric, time).
                    last_bt = max(round(time.time(), 3), round(last_bt + 0.001, 3))
                    pending = _next_message(cfg, device_id, sent, last_bt, rng, dlog)
                    sent += 1
                kind, body, bt = pending
                await client.publish(payloads.topic(device_id, kind), body)
                _record(dlog, kind, bt)
                pending = None
            except MqttError as exc:
                dlog.errors += 1
                if client.is_connected:
                    client.abort()
                if fleet.storms > storms_seen:
                    continue  # a storm: everyone reconnects at once, which is the point
                log.debug("%s: %s; retrying in %.1fs", device_id, exc, backoff)
                await asyncio.sleep(backoff * rng.uniform(0.5, 1.0))
                backoff = min(backoff * 2, 10.0)
        fleet.done_devices += 1
        if fleet.done_devices == cfg.devices:
            fleet.finished.set()
        if cfg.hold_s:
            await _hold(fleet, client, device_id, dlog)
    finally:
        if pending is not None and pending[0] is Kind.TELEMETRY:
            dlog.unconfirmed.append(pending[2])
        if client.is_connected:
            with contextlib.suppress(MqttError, TimeoutError):
                await asyncio.wait_for(
                    client.publish(
                        payloads.topic(device_id, Kind.STATUS),
                        payloads.status("offline"),
                        retain=True,
                    ),
                    5,
                )
                await asyncio.wait_for(client.disconnect(), 5)


async def _come_online(fleet: _Fleet, client: MqttClient, device_id: str, dlog: DeviceLog) -> None:
    """Connect and say so on the retained status topic, as the firmware does."""
    await client.connect()
    dlog.connects += 1
    if dlog.connects == 1:
        fleet.came_online += 1
        if fleet.came_online == fleet.cfg.devices:
            fleet.all_online.set()
    await client.publish(
        payloads.topic(device_id, Kind.STATUS), payloads.status("online"), retain=True
    )


async def _hold(fleet: _Fleet, client: MqttClient, device_id: str, dlog: DeviceLog) -> None:
    """Stay connected (the keepalive pinger runs) until the hold ends; a reconnect storm
    drops held devices too, and they come back like the others."""
    while not fleet.stop_sending.is_set():
        storm = fleet.next_storm
        if not client.is_connected:
            try:
                await _come_online(fleet, client, device_id, dlog)
            except MqttError:
                dlog.errors += 1
                if client.is_connected:
                    client.abort()
                await asyncio.sleep(random.uniform(0.25, 1.0))
                continue
        waits = [asyncio.ensure_future(e.wait()) for e in (fleet.stop_sending, storm)]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()


def _next_message(
    cfg: LoadConfig, device_id: str, seq: int, bt: float, rng: random.Random, dlog: DeviceLog
) -> tuple[Kind, bytes, float]:
    if cfg.health_every and seq % cfg.health_every == cfg.health_every - 1:
        return Kind.HEALTH, payloads.health(device_id, bt, uptime=seq, reconnects=dlog.connects), bt
    if cfg.ota_every and seq % cfg.ota_every == cfg.ota_every - 1:
        return Kind.OTA_PROGRESS, payloads.ota_progress(seq % 101), bt
    if cfg.bad_ratio and rng.random() < cfg.bad_ratio:
        return Kind.BAD, payloads.bad_telemetry(device_id, bt, rng), bt
    return Kind.TELEMETRY, payloads.telemetry(device_id, bt, rng), bt


def _record(dlog: DeviceLog, kind: Kind, bt: float) -> None:
    if kind is Kind.TELEMETRY:
        dlog.confirmed.append(bt)
    elif kind is Kind.BAD:
        dlog.bad += 1
    elif kind is Kind.HEALTH:
        dlog.health.append(bt)
    elif kind is Kind.OTA_PROGRESS:
        dlog.ota += 1


async def run_load_async(
    cfg: LoadConfig, *, on_running: Callable[[_Fleet], Coroutine[Any, Any, None]] | None = None
) -> Manifest:
    """Run the fleet until every device has sent its packs (or `max_run_s`), then return
    what it sent. `on_running` runs alongside (measurements, fault injection)."""
    raise_fd_limit(cfg.devices + 256)
    manifest = Manifest(started_at=time.time())
    fleet = _Fleet(cfg, manifest)
    tasks = [asyncio.create_task(_device(fleet, d, i)) for i, d in enumerate(cfg.device_ids())]
    extras = [asyncio.create_task(_storm(fleet, at)) for at in cfg.storm_at]
    measuring = asyncio.create_task(on_running(fleet)) if on_running is not None else None
    if measuring is not None:
        extras.append(measuring)
    try:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(fleet.finished.wait(), cfg.max_run_s)
        manifest.finished_at = time.time()
        if measuring is not None:
            # A measurement runs to its end while the fleet is still up (with hold_s, still
            # connected); a slow machine must not cut it short. Its errors propagate.
            await asyncio.wait_for(asyncio.shield(measuring), cfg.max_run_s)
        if cfg.hold_s:
            await asyncio.sleep(cfg.hold_s)
        fleet.stop_sending.set()
        await asyncio.wait(tasks, timeout=cfg.drain_timeout_s)
    finally:
        fleet.give_up.set()
        await asyncio.wait(tasks, timeout=10)
        for task in extras + tasks:
            task.cancel()
        await asyncio.gather(*extras, *tasks, return_exceptions=True)
    return manifest


async def _storm(fleet: _Fleet, at: float) -> None:
    """`at` seconds after the start, once every device has connected: a storm of the whole
    fleet, however long a loaded machine takes to bring it up."""
    await asyncio.sleep(at)
    await fleet.all_online.wait()
    log.info("reconnect storm: %d devices drop their connections at once", fleet.connected)
    fleet.storm()


def run_load(cfg: LoadConfig) -> Manifest:
    return asyncio.run(run_load_async(cfg))
