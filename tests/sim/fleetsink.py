"""Test helpers for end-to-end device tests: a Mosquitto that can be stopped and restarted
with its persistence, and the fleet's own ingest writing to a SQLite fleet database."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from sqlalchemy import select

from fleet.core.context import FleetContext, build_context
from fleet.core.settings import Settings
from fleet.ingest.handler import IngestHandler
from fleet.models import Device
from fleet.models.reading import Reading
from fleet.registry.devices import register_device
from fleet.simulator import VirtualDevice
from tests.firmware.conftest import _free_port, _port_open, need, wait_until


@dataclass
class RestartableBroker:
    """Mosquitto with persistence on: sessions and queued QoS 1 messages survive a restart,
    as they do for the production broker."""

    folder: Path
    port: int = field(default_factory=_free_port)
    host: str = "127.0.0.1"

    def __post_init__(self) -> None:
        self.binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not Path(self.binary).exists():
            need("the mosquitto binary is not installed")
        self.folder.mkdir(parents=True, exist_ok=True)
        # Started as root, mosquitto switches to its own user, which cannot write into a
        # private temporary folder; keep root so the persistence file can be saved.
        user = "user root\n" if os.geteuid() == 0 else ""
        self.conf = self.folder / "mosquitto.conf"
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\n"
            f"persistence true\npersistence_location {self.folder}/\n"
            f"max_queued_messages 100000\nmax_inflight_messages 100\n{user}"
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = (self.folder / "mosquitto.log").open("ab")
        self.proc = subprocess.Popen([self.binary, "-c", str(self.conf)], stdout=log, stderr=log)
        wait_until(lambda: _port_open(self.host, self.port), 10, "mosquitto to listen")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()  # SIGTERM: mosquitto saves its persistence file
            self.proc.wait(10)
            self.proc = None


class FleetSink:
    """The fleet's ingest handler behind a persistent-session QoS 1 subscriber: a message
    is acknowledged to the broker only after it is stored (or rejected with a reason)."""

    def __init__(self, tmp: Path, broker: RestartableBroker, device_ids: list[str]) -> None:
        self.ctx: FleetContext = build_context(
            Settings(
                environment="test",
                data_dir=tmp / "fleet",
                database_url=f"sqlite:///{tmp / 'fleet.db'}",
            )
        )
        with self.ctx.sessions.begin() as s:
            for device_id in device_ids:
                register_device(s, device_id=device_id, power_mode="mains")
        self.handler = IngestHandler(self.ctx.sessions)
        self.rejects: list[str] = []
        self.health: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id="test-sink", clean_session=False
        )
        self.client.on_message = self._on_message
        self.client.on_connect = lambda c, *a: c.subscribe(
            [("cs/v1/d/+/up", 1), ("cs/v1/d/+/health", 1)]
        )
        self.client.reconnect_delay_set(0.2, 1)
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        import json

        outcome = self.handler.handle(msg.topic, bytes(msg.payload))
        with self._lock:
            if msg.topic.endswith("/health"):
                pack = json.loads(msg.payload)
                rec = {r["n"]: r.get("v", r.get("vs", r.get("vb"))) for r in pack}
                rec["bt"] = pack[0].get("bt")  # the device's UTC time when it reported
                self.health.append(rec)
            if outcome.action == "rejected":
                self.rejects.append(f"{msg.topic}: {outcome.reason} {outcome.detail}")

    def readings(self, device_id: str) -> list[tuple[str, datetime, float]]:
        with self.ctx.sessions() as s:
            pk = s.scalars(select(Device.id).where(Device.device_id == device_id)).one()
            rows = s.execute(
                select(Reading.metric, Reading.ts, Reading.value).where(Reading.device_pk == pk)
            ).all()
        return [(m, ts, v) for m, ts, v in rows]

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()
        self.ctx.close()


# SHT4x words carry 175/65535 degC and 125/65535 %RH; the firmware sends 2 decimals.
TOLERANCE = {
    "temperature": 0.005 + 175 / 65535 / 2,
    "humidity": 0.005 + 125 / 65535 / 2,
    "surface_temperature": 0.0051,
    "battery_voltage": 0.006,
    "co2": 0.5,
}


def match_served(
    served: list[dict[str, Any]],
    stored: list[tuple[str, datetime, float]],
    metrics: tuple[str, ...],
    slack_s: float = 2.0,
) -> tuple[list[dict[str, Any]], list[tuple[str, datetime, float]]]:
    """Pair each served sensor reading with the one stored row per metric that has its value
    and a time within `slack_s` (a reading taken before NTP is re-dated to within a second;
    a room clock running faster than the host's stretches host scheduling delays between
    taking a reading and stamping it).
    Returns (served readings with no stored row, stored rows matching no served reading)."""
    unused = sorted(stored, key=lambda r: r[1])
    missing = []
    for rec in served:
        for metric in metrics:
            if metric not in rec:
                continue
            hit = next(
                (
                    row
                    for row in unused
                    if row[0] == metric
                    and abs(row[1].timestamp() - rec["ts"]) <= slack_s
                    and abs(row[2] - rec[metric]) <= TOLERANCE[metric]
                ),
                None,
            )
            if hit is None:
                missing.append(rec)
                break
            unused.remove(hit)
    return missing, [r for r in unused if r[0] in metrics]


def wait_all_stored(
    sink: FleetSink,
    device_id: str,
    served: list[dict[str, Any]],
    metrics: tuple[str, ...],
    slack_s: float,
    what: str,
    timeout: float = 30,
) -> None:
    """Wait until every served reading has its stored row (see match_served)."""

    def arrived() -> bool:
        missing, _ = match_served(served, sink.readings(device_id), metrics, slack_s)
        return not missing

    wait_until(arrived, timeout, what)


def assert_stored_once(stored: list[tuple[str, datetime, float]]) -> None:
    assert len(stored) == len({(m, ts) for m, ts, _ in stored}), "a reading stored twice"


def quick_mains(tmp: Path, broker: RestartableBroker, seed: int, heapsize: str) -> VirtualDevice:
    """A mains device two hours in the past whose room runs 60x: 30 s samples every half a
    second of host time, health every 5 minutes."""
    return VirtualDevice(
        data_dir=tmp,
        seed=seed,
        broker_port=broker.port,
        sample_interval_s=30,
        health_interval_s=300,
        speed=60,
        clock_start=time.time() - 7200,
        heapsize=heapsize,
    )


def last_finished_uplink(dev: VirtualDevice) -> float:
    """Room time of the Wi-Fi association of the last uplink that finished (its wake went on
    to sleep): readings after it are still queued. Stopping the device can cut the day's last
    uplink short, as a power cut would, and its readings then wait on flash."""
    associations = (dev.device_dir / "sim_radio.log").read_text().split()
    finished, open_uplink = 0, False
    for line in dev.log_path.read_text().splitlines():
        if "uplink: fw" in line:
            open_uplink = True
        elif "] sleep " in line and open_uplink:
            finished, open_uplink = finished + 1, False
    return float(associations[finished - 1])
