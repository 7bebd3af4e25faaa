"""The CLI against a running fleet: dry runs that ask it, odd answers, and what is staged."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from sqlalchemy import func, select

from fleet.models import Device, DeviceCertificate
from provisioning.cli import main
from provisioning.errors import ExitCode
from tests.fleet.conftest import World
from tests.fleet.server import RunningFleet
from tests.provisioning.conftest import said

DEVICE = "cs-0102030a0b0c"


def _fleet_args(url: str, token: str, work: Path) -> list[str]:
    return ["--fleet-url", url, "--token", token, "--work-dir", str(work)]


def _enroll(url: str, token: str, work: Path, *extra: str) -> int:
    place = ["--borough", "hackney", "--property", "HK-000123", "--room", "bathroom"]
    return main(["enroll", "--device-id", DEVICE, *place, *_fleet_args(url, token, work), *extra])


def _devices(fleet: RunningFleet) -> int:
    with fleet.ctx.sessions() as s:
        count = s.scalar(select(func.count()).select_from(Device).where(Device.device_id == DEVICE))
        return int(count or 0)


@pytest.fixture
def tty() -> Iterator[str]:
    master, slave = os.openpty()
    yield os.ttyname(slave)
    os.close(master)
    os.close(slave)


def test_device_dry_run_goes_through_every_step_without_a_mac(
    fleet: RunningFleet,
    world: World,
    tmp_path: Path,
    esp32_image: Path,
    tty: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = ["device", "--dry-run", "--image", str(esp32_image), "--port", tty]
    args += ["--borough", "hackney", "--property", "HK-000200", "--room", "bedroom"]
    args += ["--label", str(tmp_path / "l.pdf")]
    assert main([*args, *_fleet_args(fleet.base_url, world.tokens["tech_hackney"], tmp_path)]) == 0
    text = said(capsys)
    for step in ("would detect the chip", "would enrol the sensor", "would install", "would reset"):
        assert step in text
    assert "would write its label" in text
    assert not (tmp_path / "l.pdf").exists() and _devices(fleet) == 0


@pytest.mark.parametrize(
    ("extra", "token", "exit_code"),
    [
        (["--borough", "nowhere"], "tech_hackney", ExitCode.BOROUGH_NOT_PERMITTED),
        (["--wifi-profile", "office"], "tech_hackney", ExitCode.WIFI_PROFILE_MISSING),
        ([], None, ExitCode.TOKEN_REJECTED),
    ],
)
def test_enroll_dry_run_asks_the_fleet_what_it_would_refuse(
    fleet: RunningFleet,
    world: World,
    tmp_path: Path,
    extra: list[str],
    token: str | None,
    exit_code: ExitCode,
) -> None:
    key = world.tokens[token] if token else "fst_bogus"
    assert _enroll(fleet.base_url, key, tmp_path, "--dry-run", *extra) == exit_code
    assert _devices(fleet) == 0


def test_rotate_checks_the_port_before_renewing(
    fleet: RunningFleet, world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    token = world.tokens["tech_hackney"]
    assert _enroll(fleet.base_url, token, tmp_path) == 0
    rotate = ["rotate", "--device-id", DEVICE, *_fleet_args(fleet.base_url, token, tmp_path)]
    missing = ["--port", "/dev/ttyNONE"]
    assert main([*rotate, "--dry-run", *missing]) == ExitCode.NO_SERIAL_PORT
    assert main([*rotate, "--force", *missing]) == ExitCode.NO_SERIAL_PORT
    with fleet.ctx.sessions() as s:
        assert s.scalar(select(func.count()).select_from(DeviceCertificate)) == 1  # none new
    assert main([*rotate, "--dry-run"]) == ExitCode.FLEET_REFUSED  # not due for a year
    assert "--force" in said(capsys)
    assert main([*rotate, "--dry-run", "--force"]) == 0


def test_staged_secrets_are_readable_by_the_owner_only(
    fleet: RunningFleet, world: World, tmp_path: Path
) -> None:
    work = tmp_path / "work"
    assert _enroll(fleet.base_url, world.tokens["tech_hackney"], work) == 0
    files = work / DEVICE / "files"
    assert "password-1" in (files / "config.json").read_text()
    for secret in (files / "config.json", files / "certs" / "device-key.der"):
        assert secret.stat().st_mode & 0o777 == 0o600, secret
    for folder in (work, work / DEVICE, files, files / "certs"):
        assert folder.stat().st_mode & 0o777 == 0o700, folder


def test_user_text_in_square_brackets_is_printed_as_typed(
    fleet: RunningFleet, world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    token = world.tokens["tech_hackney"]
    place = ["--borough", "hackney", "--property", "HK-000600", "--room", "bedroom [front]"]
    args = ["enroll", "--device-id", DEVICE, *place, *_fleet_args(fleet.base_url, token, tmp_path)]
    assert main(args) == 0
    assert "at HK-000600, bedroom [front];" in said(capsys)


def test_a_fleet_address_with_a_path_is_named_as_the_problem(
    fleet: RunningFleet, world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"{fleet.base_url}/dashboard"
    assert _enroll(url, world.tokens["tech_hackney"], tmp_path) == ExitCode.FLEET_UNREACHABLE
    text = said(capsys)
    assert "has no fleet API" in text and "no path such as /dashboard" in text


class _SignInPage(BaseHTTPRequestHandler):
    """A hotspot that answers every request with its sign-in page."""

    def _page(self) -> None:
        body = b"<html><body>Welcome! Sign in to use the Wi-Fi</body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _page

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def captive_portal() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _SignInPage)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_sign_in_page_instead_of_the_fleet_is_reported(
    captive_portal: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _enroll(captive_portal, "fst_x", tmp_path) == ExitCode.FLEET_UNREACHABLE
    assert "sign in with a browser" in said(capsys)
    verify = ["verify", "--device-id", DEVICE, "--no-reset", "--timeout", "5"]
    assert main([*verify, "--fleet-url", captive_portal, "--token", "fst_x"]) == (
        ExitCode.FLEET_UNREACHABLE
    )
    text = said(capsys)
    assert "answered with text/html (HTTP 200) instead of the fleet's API" in text
    assert "unexpected" not in text
