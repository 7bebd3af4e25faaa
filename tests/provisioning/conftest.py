"""Provisioning fixtures: a fleet behind a TLS Mosquitto started from the shipped config,
virtual boards (the MicroPython VM on a pty) and synthetic firmware images."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from esptool.bin_image import ELFSection, ESP32FirmwareImage, ESP32S3FirmwareImage

from fleet.core.context import FleetContext, build_context
from fleet.core.settings import Settings
from fleet.simulator import VirtualDevice, find_micropython
from fleet.simulator.build import build_firmware
from fleet.simulator.paths import FROZEN_PATH
from provisioning.virtual_board import VirtualBoard
from tests.conftest import free_port
from tests.fleet.conftest import World, fleet_ctx, world  # noqa: F401
from tests.fleet.server import RunningFleet, running_fleet
from tests.security.conftest import HOST, Broker, make_pki, mosquitto_binary

WIFI = {"ssid": "HackneyTenants", "password": "damp-free-homes"}


@pytest.fixture
def fleet(fleet_ctx: FleetContext, world: World) -> Iterator[RunningFleet]:  # noqa: F811
    """The fleet over HTTP with its broker and ingest, and a `default` Wi-Fi profile in
    hackney and camden."""
    with running_fleet(fleet_ctx) as running:
        for borough in ("hackney", "camden"):
            httpx.put(
                f"{running.base_url}/api/v1/enrolments/wifi-profiles/{borough}/default",
                json={"ssid": "Tenants", "password": "password-1"},
                headers=world.headers("admin"),
                timeout=30,
            ).raise_for_status()
        yield running


def said(capsys: pytest.CaptureFixture[str]) -> str:
    """What the CLI printed, with rich's line wrapping undone."""
    return " ".join(capsys.readouterr().err.split())


def synthetic_image(path: Path, *, chip: str = "esp32") -> Path:
    """A small but well-formed app image made with esptool's own image classes."""
    image = ESP32S3FirmwareImage() if chip == "esp32s3" else ESP32FirmwareImage()
    image.entrypoint = 0x40080000
    image.segments = [
        ELFSection(b".dram0.data", 0x3FFB0000, bytes(range(256)) * 4, 0),
        ELFSection(b".iram0.text", 0x40080000, b"\x00" * 1024, 0),
    ]
    image.save(str(path))
    return path


@pytest.fixture
def esp32_image(tmp_path: Path) -> Path:
    return synthetic_image(tmp_path / "ESP32_GENERIC-OTA.bin")


@dataclass
class TlsFleet:
    running: RunningFleet
    broker: Broker
    world: World

    @property
    def url(self) -> str:
        return self.running.base_url

    def token(self, who: str = "tech_hackney") -> str:
        return self.world.tokens[who]

    def set_wifi(self, borough: str = "hackney", name: str = "default") -> None:
        response = httpx.put(
            f"{self.url}/api/v1/enrolments/wifi-profiles/{borough}/{name}",
            json=WIFI,
            headers=self.world.headers("admin"),
            timeout=30,
        )
        response.raise_for_status()


@pytest.fixture
def tls_fleet(tmp_path: Path, sqlite_url: str) -> Iterator[TlsFleet]:
    """Fleet (ingest and feed over mqtts, each with its own certificate) + TLS Mosquitto + HTTP."""
    mosquitto_binary()
    port = free_port()
    pki = make_pki(tmp_path / "tls", port)
    broker = Broker(pki, port)
    ingest_cert, ingest_key = pki.result.services["fleet-ingest-0"]
    feed_cert, feed_key = pki.result.services["fleet-feed"]
    settings = Settings(
        environment="test",
        data_dir=tmp_path / "data",
        database_url=sqlite_url,
        mqtt_url=f"mqtts://{HOST}:{port}",
        mqtt_ca_file=pki.result.services_dir / "ca.crt",
        mqtt_cert_file=ingest_cert,
        mqtt_key_file=ingest_key,
        feed_mqtt_cert_file=feed_cert,
        feed_mqtt_key_file=feed_key,
        ca_dir=pki.result.ca_dir,
        crl_publish_path=pki.result.broker_files.crlfile,
        health_sweep_s=1.0,
    )
    ctx: FleetContext = build_context(settings)
    try:
        world = World(ctx)
        with running_fleet(ctx) as running:
            yield TlsFleet(running, broker, world)
    finally:
        ctx.close()
        broker.stop()


@pytest.fixture(scope="session")
def sim_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The launcher's build (firmware + simulated board), shared by the whole session."""
    find_micropython()
    return build_firmware(tmp_path_factory.mktemp("sim-build"))


@pytest.fixture
def virtual_board(tmp_path: Path, sim_build: Path) -> Iterator[Callable[[str], VirtualBoard]]:
    """Boards whose filesystem is `tmp/devices/<device_id>`; the simulated `machine` is on
    the path so `machine.reset()` ends the VM as a reset ends a real board's session."""
    boards: list[VirtualBoard] = []

    def make(device_id: str) -> VirtualBoard:
        board = VirtualBoard(
            tmp_path / "devices" / device_id,
            micropython=find_micropython(),
            micropypath=[sim_build, Path(FROZEN_PATH)],
        )
        board.start()
        boards.append(board)
        return board

    yield make
    for board in boards:
        board.stop()


class InstalledDevice(VirtualDevice):
    """The launcher, booting what provisioning installed in the device folder (not its own
    firmware build): the folder comes first on the path, the simulated board after it."""

    def command(self) -> list[str]:
        return [str(find_micropython()), "-X", f"heapsize={self.heapsize}", "main.py"]

    def env(self) -> dict[str, str]:
        env = super().env()
        env["MICROPYPATH"] = ":".join([str(self.device_dir.resolve()), env["MICROPYPATH"]])
        return env


def boot_after_reset(
    board: VirtualBoard, device: InstalledDevice, timeout: float = 60.0
) -> threading.Thread:
    """Plays the chip: when the REPL session ends with a reset, boot the installed firmware."""

    def watch() -> None:
        board.wait(timeout)
        device.start()

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread
