"""`provision verify`: only what the sensor sends after its reset counts."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from sqlalchemy import select

from fleet.loadgen.payloads import status
from fleet.models import Device
from fleet.models.base import utcnow
from provisioning.cli import main
from provisioning.errors import ExitCode
from provisioning.fleet_client import FleetClient
from provisioning.verify import baseline, wait_online
from provisioning.virtual_board import VirtualBoard
from tests.fleet.conftest import World
from tests.fleet.packs import telemetry
from tests.fleet.server import RunningFleet
from tests.provisioning.conftest import said
from tests.provisioning.test_cli_fleet import PROVISION

DEVICE = "cs-3c71bf0a12f4"


def _enrolled(fleet: RunningFleet, world: World, work: Path) -> str:
    """Enrols DEVICE and gives it what the fleet keeps from an earlier life: "online" and a
    reading, both five minutes old. Returns the token."""
    token = world.tokens["tech_hackney"]
    place = ["--borough", "hackney", "--property", "HK-000123", "--room", "bathroom"]
    fleet_args = ["--fleet-url", fleet.base_url, "--token", token, "--work-dir", str(work)]
    assert main(["enroll", "--device-id", DEVICE, *place, *fleet_args]) == 0
    before = utcnow() - timedelta(minutes=5)
    with fleet.ctx.sessions.begin() as s:
        device = s.scalars(select(Device).where(Device.device_id == DEVICE)).one()
        device.status, device.status_at, device.last_seen_at = "online", before, before
        t = before.timestamp()
        device.latest = {
            "temperature": {"v": 19.19, "u": "Cel", "t": t},
            "humidity": {"v": 63.48, "u": "%RH", "t": t},
        }
    return token


def _verify(fleet: RunningFleet, token: str, *extra: str) -> int:
    common = ["--device-id", DEVICE, "--fleet-url", fleet.base_url, "--token", token]
    return main(["verify", *common, *extra])


def test_readings_from_before_the_start_do_not_pass(
    fleet: RunningFleet, world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    token = _enrolled(fleet, world, tmp_path)
    assert _verify(fleet, token, "--no-reset", "--timeout", "2") == ExitCode.VERIFY_FAILED
    assert "sent no new temperature/humidity reading" in said(capsys)


@pytest.mark.vm
def test_a_sensor_dead_after_the_reset_does_not_pass_on_the_fleets_old_status(
    fleet: RunningFleet,
    world: World,
    tmp_path: Path,
    virtual_board: Callable[[str], VirtualBoard],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The fleet still says "online" (a reset board's MQTT session outlives it by about
    90 s) and has readings, but nothing boots after the reset."""
    token = _enrolled(fleet, world, tmp_path)
    board = virtual_board(DEVICE)
    code = _verify(fleet, token, "--port", board.port, "--timeout", "3")
    assert code == ExitCode.VERIFY_FAILED
    text = said(capsys)
    assert "device reset" in text and "did not come online after the reset" in text
    assert "status from before the reset" in text


@pytest.fixture
def device_link(fleet: RunningFleet) -> Iterator[mqtt.Client]:
    """An MQTT connection to the fleet's broker, sending as the sensor would."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=DEVICE)
    client.connect(fleet.broker.host, fleet.broker.port)
    client.loop_start()
    yield client
    client.loop_stop()
    client.disconnect()


def test_a_status_and_readings_sent_after_the_reset_pass(
    fleet: RunningFleet, world: World, tmp_path: Path, device_link: mqtt.Client
) -> None:
    token = _enrolled(fleet, world, tmp_path)
    sent: list[str] = []

    def sensor_boots_meanwhile(seconds: float) -> None:
        # Between two polls the reset sensor connects ("online") and sends a reading.
        if not sent:
            topic = f"cs/v1/d/{DEVICE}"
            device_link.publish(f"{topic}/status", status("online"), qos=1).wait_for_publish(5)
            pack = telemetry(DEVICE, time.time(), [(0, 21.5, 58.25)])
            device_link.publish(f"{topic}/up", pack, qos=1).wait_for_publish(5)
            sent.append("booted")
        time.sleep(seconds)

    with FleetClient(fleet.base_url, token) as client:
        since = baseline(client, DEVICE)
        verified = wait_online(
            client,
            DEVICE,
            since=since,
            after_reset=True,
            timeout_s=30,
            poll_s=0.2,
            sleep=sensor_boots_meanwhile,
        )
    assert sent == ["booted"]
    assert verified.readings["humidity"]["v"] == 58.25
    assert verified.readings["temperature"]["v"] == 21.5


def test_an_unknown_device_fails_at_once(
    fleet: RunningFleet, world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    token = world.tokens["tech_hackney"]
    fleet_args = ["--fleet-url", fleet.base_url, "--token", token]
    code = main(
        ["verify", "--mac", "3c:71:bf:0a:99:99", "--no-reset", "--timeout", "600", *fleet_args]
    )
    assert code == ExitCode.FLEET_REFUSED
    text = said(capsys)
    assert "no device cs-3c71bf0a9999" in text and "provision enroll" in text


@pytest.mark.vm
def test_an_unfinished_install_is_named_instead_of_the_wifi(
    fleet: RunningFleet,
    world: World,
    tmp_path: Path,
    virtual_board: Callable[[str], VirtualBoard],
    capsys: pytest.CaptureFixture[str],
) -> None:
    token = _enrolled(fleet, world, tmp_path)
    board = virtual_board(DEVICE)
    (board.root / "maintenance").write_text("")  # what an install that was cut off leaves
    code = _verify(fleet, token, "--port", board.port, "--timeout", "30")
    assert code == ExitCode.VERIFY_FAILED
    text = said(capsys)
    assert "last install" in text and f"provision install --device-id {DEVICE}" in text
    assert board.running  # not reset: it would only boot to the REPL


def test_ctrl_c_says_it_was_interrupted(tmp_path: Path) -> None:
    """Ctrl-C while waiting on the fleet: the message and exit 130, not a silent exit."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        args = [PROVISION, "verify", "--device-id", DEVICE, "--no-reset"]
        args += ["--fleet-url", f"http://127.0.0.1:{port}", "--token", "fst_x"]
        proc = subprocess.Popen(args, stderr=subprocess.PIPE, text=True)
        try:
            server.settimeout(60)
            conn, _ = server.accept()  # the CLI is now waiting for an answer that never comes
            with conn:
                proc.send_signal(signal.SIGINT)
                err = proc.communicate(timeout=30)[1]
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == ExitCode.INTERRUPTED
    assert "interrupted: run the same command again" in " ".join(err.split())
