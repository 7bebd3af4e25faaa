"""What a technician meets on site: a typo before a flash, a flaky hotspot during verify, an
interrupted batch, a replacement sensor, a port without a REPL, and how each is told."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from rich.console import Console

from provisioning import batch, device_fs, flashing, steps
from provisioning.batch import Options, Row, RowState, StateFile
from provisioning.cli import main
from provisioning.errors import DeviceNotResponding, ExitCode, FleetUnreachable
from provisioning.fleet_client import refusal
from provisioning.verify import Baseline, wait_online
from tests.fleet.conftest import World
from tests.fleet.server import RunningFleet
from tests.provisioning.conftest import said
from tests.provisioning.fake_rom import FakeEsp32

MAC = "3c:71:bf:0a:12:f4"
DEVICE = "cs-3c71bf0a12f4"


def _fleet(fleet: RunningFleet, world: World, work: Path) -> list[str]:
    return [
        "--fleet-url",
        fleet.base_url,
        "--token",
        world.tokens["tech_hackney"],
        "--work-dir",
        str(work),
    ]


def _place(borough: str, reference: str, room: str) -> list[str]:
    return ["--borough", borough, "--property", reference, "--room", room]


def test_device_and_batch_ask_the_fleet_before_erasing_the_chip(
    fleet: RunningFleet, world: World, tmp_path: Path, esp32_image: Path
) -> None:
    refused = [
        ("hackny", "default", None, ExitCode.BOROUGH_NOT_PERMITTED),  # a typo
        ("camden", "default", None, ExitCode.BOROUGH_NOT_PERMITTED),  # not the token's
        ("hackney", "office", None, ExitCode.WIFI_PROFILE_MISSING),
        ("hackney", "default", "fst_bogus", ExitCode.TOKEN_REJECTED),
    ]
    for borough, wifi, token, exit_code in refused:
        with FakeEsp32(MAC) as chip:
            args = ["device", "--image", str(esp32_image), "--port", chip.port, "--skip-verify"]
            args += [*_place(borough, "HK-000102", "kitchen"), "--wifi-profile", wifi]
            args += [*_fleet(fleet, world, tmp_path)] + (["--token", token] if token else [])
            assert main(args) == exit_code, borough
            assert not chip.erased and chip.writes == [], borough
    csv_path = tmp_path / "devices.csv"
    with FakeEsp32(MAC) as chip:
        csv_path.write_text(
            f"port,device_id,borough,property_reference,room\n{chip.port},,camdem,CM-1,hall\n"
        )
        args = ["batch", str(csv_path), "--image", str(esp32_image)]
        assert main([*args, *_fleet(fleet, world, tmp_path)]) == ExitCode.BATCH_INCOMPLETE
        assert not chip.erased


def test_a_failure_after_flashing_says_the_sensor_is_flashed_and_how_to_go_on(
    fleet: RunningFleet,
    world: World,
    tmp_path: Path,
    esp32_image: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fleet_args = _fleet(fleet, world, tmp_path)
    enrolled = ["enroll", "--mac", MAC, *_place("hackney", "HK-000101", "hall")]
    assert main([*enrolled, *fleet_args]) == 0
    flashed: list[str | None] = []

    def flash(_ctx: steps.Context, *, port: str | None, **_: object) -> flashing.ChipInfo:
        flashed.append(port)  # what follows a flash is under test, not esptool
        return flashing.ChipInfo("ESP32", MAC)

    monkeypatch.setattr(steps, "flash", flash)
    # Every pre-flash check passes; only enrolment knows the sensor is placed elsewhere.
    args = ["device", "--image", str(esp32_image), "--port", "/dev/ttyUSB7"]
    args += _place("hackney", "HK-000102", "kitchen")
    assert main([*args, *fleet_args]) == ExitCode.ENROLLED_ELSEWHERE
    assert flashed == ["/dev/ttyUSB7"]
    text = said(capsys)
    assert f"({DEVICE} is already flashed)" in text
    assert f"--skip-flash --device-id {DEVICE}" in text


class FlakyFleet:
    """A fleet that cannot be reached for the first `down` polls, then shows the device
    online with fresh readings."""

    def __init__(self, down: int) -> None:
        self.down = down
        self.polls = 0

    def device(self, device_id: str) -> dict[str, Any]:
        self.polls += 1
        if self.polls <= self.down:
            raise FleetUnreachable("cannot reach the fleet (Connection refused)", remedy="-")
        fresh = {"t": 1_000, "v": 20.5}
        return {
            "status": "online",
            "status_at": "2026-11-25T10:00:00+00:00",
            "latest": {"temperature": fresh, "humidity": {**fresh, "v": 55.0}},
        }


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_verify_keeps_waiting_through_a_short_network_drop() -> None:
    fleet, clock = FlakyFleet(down=10), FakeClock()
    told: list[str] = []
    verified = wait_online(
        fleet,  # type: ignore[arg-type]
        DEVICE,
        since=Baseline(),
        after_reset=True,
        timeout_s=90,
        poll_s=1,
        tick=told.append,
        clock=clock,
        sleep=clock.sleep,
    )
    assert verified.readings["humidity"]["v"] == 55.0
    assert any("unreachable" in t for t in told) and "the fleet answers again" in told


def test_verify_fails_as_unreachable_only_when_the_timeout_is_spent() -> None:
    fleet, clock = FlakyFleet(down=1_000), FakeClock()
    with pytest.raises(FleetUnreachable, match="still unreachable when the 30 s wait ended"):
        wait_online(
            fleet,  # type: ignore[arg-type]
            DEVICE,
            since=Baseline(),
            after_reset=True,
            timeout_s=30,
            poll_s=1,
            clock=clock,
            sleep=clock.sleep,
        )
    assert clock.now >= 30


def _summary_text(done: list[str], opts: Options) -> str:
    row = Row(line=2, port=None, device_id=DEVICE, place=steps.Place("hackney", "HK-1", "hall"))
    state = StateFile(Path("/nonexistent/state.json"))
    state.rows[row.key] = RowState(device_id=DEVICE, done=done)
    out = io.StringIO()
    table = batch.summary([row], state, batch.required_steps(opts))
    Console(file=out, width=200).print(table)
    return out.getvalue()


def test_the_batch_summary_calls_an_interrupted_line_incomplete() -> None:
    opts = Options(None, 460800, True, True, None, 120.0)  # --skip-flash --skip-verify
    assert "incomplete (install)" in _summary_text(["enrol"], opts)
    assert " ok " in _summary_text(["enrol", "install"], opts)
    with_verify = Options(None, 460800, True, False, None, 120.0)
    assert "incomplete (verify)" in _summary_text(["enrol", "install"], with_verify)


def test_a_replacement_sensor_is_enrolled_with_a_warning_naming_the_old_one(
    fleet: RunningFleet, world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    place = _place("hackney", "HK-000101", "bathroom")
    assert main(["enroll", "--mac", MAC, *place, *_fleet(fleet, world, tmp_path)]) == 0
    assert "also in service" not in said(capsys)
    new = "3c:71:bf:0a:12:f5"
    assert main(["enroll", "--mac", new, *place, *_fleet(fleet, world, tmp_path)]) == 0
    text = said(capsys)
    assert f"{DEVICE} (unknown) is also in service at HK-000101, bathroom" in text
    assert f"ask borough staff to decommission {DEVICE}" in text
    # The answer itself names it, for any client of the API.
    again = httpx.post(
        f"{fleet.base_url}/api/v1/enrolments",
        json={
            "device_id": "cs-3c71bf0a12f5",
            "borough": "hackney",
            "property_reference": "HK-000101",
            "room": "bathroom",
        },
        headers=world.headers("tech_hackney"),
        timeout=30,
    )
    assert again.status_code == 200
    [other] = again.json()["also_here"]
    assert other["device_id"] == DEVICE and other["status"] == "unknown"


@pytest.fixture
def silent_port() -> Iterator[str]:
    """A serial port on which nothing answers, like a chip waiting in its bootloader."""
    master, slave = os.openpty()
    yield os.ttyname(slave)
    os.close(master)
    os.close(slave)


def test_install_asks_the_port_for_a_repl_before_compiling(
    tmp_path: Path,
    silent_port: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    compiled: list[Path] = []
    monkeypatch.setattr(steps.bundle, "load_enrolment_summary", lambda _dir: {})
    monkeypatch.setattr(steps.bundle, "build_firmware", compiled.append)
    monkeypatch.setattr(device_fs, "CONNECT_TIMEOUT_S", 3.0)
    args = ["install", "--mac", MAC, "--port", silent_port, "--work-dir", str(tmp_path)]
    assert main(args) == ExitCode.DEVICE_NOT_RESPONDING
    assert compiled == []
    text = said(capsys)
    assert f"no MicroPython REPL answered on {silent_port}" in text
    assert "sys.implementation" not in text and "mpremote" not in text.split("fix:")[0]


def test_a_stub_flasher_that_does_not_start_is_a_device_not_responding() -> None:
    message = (
        "Failed to start stub flasher. There was no response.\n"
        "For troubleshooting steps visit: https://docs.espressif.com/…"
    )
    error = flashing._translate(message, "/dev/ttyUSB1")
    assert isinstance(error, DeviceNotResponding)
    assert "\n" not in str(error) and "BOOT" in error.remedy


def test_a_missing_token_is_refused_before_any_progress_bar(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("PROVISION_TOKEN", raising=False)
    args = ["enroll", "--mac", MAC, *_place("hackney", "HK-1", "hall")]
    code = main([*args, "--fleet-url", "http://127.0.0.1:9", "--work-dir", str(tmp_path)])
    assert code == ExitCode.TOKEN_REJECTED
    text = said(capsys)
    assert "enrolling" not in text
    assert "API tokens page" in text and "POST /api/v1/tokens" not in text


def test_no_fleet_address_is_named_instead_of_a_guessed_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("PROVISION_FLEET_URL", raising=False)
    args = ["enroll", "--mac", MAC, *_place("hackney", "HK-1", "hall"), "--token", "fst_x"]
    assert main([*args, "--work-dir", str(tmp_path)]) == ExitCode.USAGE
    assert "PROVISION_FLEET_URL is not set" in said(capsys)


def test_a_rejected_token_points_to_the_dashboard() -> None:
    request = httpx.Request("POST", "http://fleet/api/v1/enrolments")
    body = {"detail": "the token is unknown, expired or revoked"}
    error = refusal(httpx.Response(401, json=body, request=request))
    assert "API tokens page" in error.remedy and "POST /api/v1/tokens" not in error.remedy


def test_refusals_are_told_once_and_as_they_are(
    fleet: RunningFleet, world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fleet_args = _fleet(fleet, world, tmp_path)
    args = ["enroll", "--mac", MAC, *_place("hackney", "HK-1", "hall"), "--wifi-profile", "x"]
    assert main([*args, *fleet_args]) == ExitCode.WIFI_PROFILE_MISSING
    assert said(capsys).count("borough staff") == 1  # not the fleet's advice and ours
    # A dry run words a borough outside the token as the real run does.
    args = ["enroll", "--dry-run", "--mac", MAC, *_place("camden", "CM-1", "hall")]
    assert main([*args, *fleet_args]) == ExitCode.BOROUGH_NOT_PERMITTED
    assert "does not exist or your token does not cover it" in said(capsys)
    # A failed dry-run batch points to no state file: it writes none.
    csv_path = tmp_path / "devices.csv"
    csv_path.write_text(f"device_id,borough,property_reference,room\n{DEVICE},nowhere,N-1,hall\n")
    args = ["batch", str(csv_path), "--skip-flash", "--dry-run"]
    assert main([*args, *fleet_args]) == ExitCode.BATCH_INCOMPLETE
    assert "state.json" not in said(capsys)
    assert not csv_path.with_name("devices.csv.state.json").exists()


def test_the_token_help_recommends_the_environment_variable(
    capsys: pytest.CaptureFixture[str],
) -> None:
    main(["enroll", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "PROVISION_TOKEN" in text and "ps" in text and "history" in text
