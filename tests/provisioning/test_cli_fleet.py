"""The CLI against a running fleet: every fleet-side refusal, batches, labels."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509
from sqlalchemy import func, select

from fleet.access.principal import SYSTEM
from fleet.models import Device, DeviceCertificate
from fleet.ota import bundle, signing
from fleet.ota import service as ota_service
from fleet.ota.package import ReleaseFile
from provisioning.cli import main
from provisioning.errors import ExitCode
from provisioning.label import payload
from provisioning.virtual_board import VirtualBoard
from tests.conftest import free_port
from tests.firmware.conftest import wait_until
from tests.fleet.conftest import World
from tests.fleet.server import RunningFleet
from tests.provisioning.conftest import said as _said

PROVISION = str(Path(sys.executable).parent / "provision")


def _enroll(fleet: RunningFleet, token: str, work: Path, *extra: str) -> int:
    return main(
        [
            "enroll",
            "--device-id",
            "cs-0102030a0b0c",
            "--borough",
            "hackney",
            "--property",
            "HACKNEY-0007",
            "--room",
            "bedroom",
            "--fleet-url",
            fleet.base_url,
            "--token",
            token,
            "--work-dir",
            str(work),
            *extra,
        ]
    )


def test_enroll_writes_the_bundle_and_is_repeatable(
    fleet: RunningFleet, world: World, tmp_path: Path
) -> None:
    token = world.tokens["tech_hackney"]
    assert _enroll(fleet, token, tmp_path) == 0
    files = tmp_path / "cs-0102030a0b0c" / "files"
    config = json.loads((files / "config.json").read_text())
    assert config["device_id"] == "cs-0102030a0b0c" and config["version"] == 1
    assert config["wifi"] == {"ssid": "Tenants", "password": "password-1"}
    assert (files / "certs" / "device-key.der").stat().st_mode & 0o777 == 0o600
    assert _enroll(fleet, token, tmp_path) == 0  # same place again: fine, same config version
    assert json.loads((files / "config.json").read_text())["version"] == 1
    assert _enroll(fleet, token, tmp_path, "--sample-interval", "60") == 0
    assert json.loads((files / "config.json").read_text())["version"] == 2
    with fleet.ctx.sessions() as s:
        assert (
            s.scalar(
                select(func.count())
                .select_from(Device)
                .where(Device.device_id == "cs-0102030a0b0c")
            )
            == 1
        )


def test_the_fleet_learns_how_often_to_expect_the_sensor(
    fleet: RunningFleet, world: World, tmp_path: Path
) -> None:
    """A battery board reports once per uplink wake (every 4th sample by default): judged
    against the 15-minute sampling it would look offline for most of every hour."""
    token = world.tokens["tech_hackney"]
    battery = ("--board", "firebeetle-sht41-ds18b20-2aa", "--sample-interval", "600")
    assert _enroll(fleet, token, tmp_path, *battery) == 0
    with fleet.ctx.sessions() as s:
        device = s.scalars(select(Device).where(Device.device_id == "cs-0102030a0b0c")).one()
        assert (device.power_mode, device.report_interval_s) == ("battery", 2400)
    mains = ("--sample-interval", "300", "--health-interval", "3600")
    assert _enroll(fleet, token, tmp_path, *mains) == 0  # re-enrolled on another board
    with fleet.ctx.sessions() as s:
        device = s.scalars(select(Device).where(Device.device_id == "cs-0102030a0b0c")).one()
        assert (device.power_mode, device.report_interval_s) == ("mains", 300)


def test_enroll_warns_when_the_fleet_trusts_no_release_key(
    fleet: RunningFleet, world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    token = world.tokens["tech_hackney"]
    assert _enroll(fleet, token, tmp_path) == 0
    trust = tmp_path / "cs-0102030a0b0c" / "files" / "ota" / "trust.json"
    assert json.loads(trust.read_text()) == {"keys": {}, "floor": "0.0.0"}
    assert "will refuse every update" in _said(capsys)

    key = signing.generate(tmp_path / "keys")
    with fleet.ctx.sessions.begin() as s:
        ota_service.trust_key(s, SYSTEM, key.public_hex)
    assert _enroll(fleet, token, tmp_path) == 0
    assert json.loads(trust.read_text())["keys"] == {key.kid: key.public_hex}
    assert "refuse every update" not in _said(capsys)

    with fleet.ctx.sessions.begin() as s:  # a release that put 0.1.x below the floor
        rel = ReleaseFile.from_built(bundle.build_app("0.2.0", floor="0.2.0", files={"a": b""}))
        rel.sign(key)
        ota_service.publish_release(s, SYSTEM, rel)
    assert _enroll(fleet, token, tmp_path) == 0
    assert json.loads(trust.read_text())["floor"] == "0.2.0"


def test_token_invalid(
    fleet: RunningFleet, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _enroll(fleet, "fst_wrong", tmp_path) == ExitCode.TOKEN_REJECTED
    assert "PROVISION_TOKEN" in _said(capsys)


def test_token_without_enrol_permission(fleet: RunningFleet, world: World, tmp_path: Path) -> None:
    assert _enroll(fleet, world.tokens["readonly_hackney"], tmp_path) == ExitCode.TOKEN_REJECTED


def test_token_lacking_the_borough(
    fleet: RunningFleet, world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "enroll",
            "--device-id",
            "cs-0102030a0b0c",
            "--borough",
            "camden",
            "--property",
            "C-1",
            "--room",
            "hall",
            "--fleet-url",
            fleet.base_url,
            "--token",
            world.tokens["tech_hackney"],
            "--work-dir",
            str(tmp_path),
        ]
    )
    assert code == ExitCode.BOROUGH_NOT_PERMITTED
    assert "ask an admin to add that borough" in _said(capsys)


def test_already_enrolled_elsewhere(
    fleet: RunningFleet, world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    token = world.tokens["tech_hackney"]
    assert _enroll(fleet, token, tmp_path) == 0
    code = main(
        [
            "enroll",
            "--device-id",
            "cs-0102030a0b0c",
            "--borough",
            "hackney",
            "--property",
            "HACKNEY-0099",
            "--room",
            "bedroom",
            "--fleet-url",
            fleet.base_url,
            "--token",
            token,
            "--work-dir",
            str(tmp_path),
        ]
    )
    assert code == ExitCode.ENROLLED_ELSEWHERE
    assert "HACKNEY-0007" in _said(capsys)


def test_wifi_profile_missing(fleet: RunningFleet, world: World, tmp_path: Path) -> None:
    code = _enroll(fleet, world.tokens["tech_hackney"], tmp_path, "--wifi-profile", "office")
    assert code == ExitCode.WIFI_PROFILE_MISSING
    assert not (tmp_path / "cs-0102030a0b0c").exists()


def test_fleet_unreachable(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "enroll",
            "--device-id",
            "cs-0102030a0b0c",
            "--borough",
            "hackney",
            "--property",
            "P",
            "--room",
            "hall",
            "--fleet-url",
            f"http://127.0.0.1:{free_port()}",
            "--token",
            "fst_x",
            "--work-dir",
            str(tmp_path),
        ]
    )
    assert code == ExitCode.FLEET_UNREACHABLE
    assert "run again" in _said(capsys)


def test_labels(tmp_path: Path) -> None:
    png, pdf = tmp_path / "l.png", tmp_path / "l.pdf"
    assert main(["label", str(png), "--device-id", "cs-0102030a0b0c", "--property", "HK-7"]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (
        main(
            [
                "label",
                str(pdf),
                "--device-id",
                "cs-0102030a0b0c",
                "--property",
                "HK-7",
                "--room",
                "bath (upstairs)",
            ]
        )
        == 0
    )
    text = pdf.read_bytes()
    assert text.startswith(b"%PDF-1.4") and text.rstrip().endswith(b"%%EOF")
    assert b"(cs-0102030a0b0c) Tj" in text and b"(bath \\(upstairs\\)) Tj" in text
    assert json.loads(payload("cs-0102030a0b0c", "HK-7")) == {"d": "cs-0102030a0b0c", "p": "HK-7"}
    assert main(["label", str(tmp_path / "l.gif"), "--device-id", "cs-1", "--property", "x"]) == (
        ExitCode.USAGE
    )


def test_batch_csv_errors_are_usage_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("port,borough,property_reference,room,colour\n,hackney,P,hall,red\n")
    assert main(["batch", str(bad), "--skip-flash", "--token", "t"]) == ExitCode.USAGE
    bad.write_text("port,borough,property_reference,room\n,hackney,,hall\n")
    assert main(["batch", str(bad), "--skip-flash", "--token", "t"]) == ExitCode.USAGE


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["enroll", "--bogus"], "No such option: --bogus"),
        (["enroll", "--room", "hall"], "missing options: --borough, --property"),
        (["nosuch"], "No such command 'nosuch'"),
        (["flash", "--baud", "fast"], "Invalid value for '--baud'"),
        (["device", "--borough", "b", "--property", "p", "--room", "r"], "--image is required"),
    ],
)
def test_command_line_mistakes_are_usage_errors_that_say_what_is_wrong(
    args: list[str], said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(args) == ExitCode.USAGE
    text = _said(capsys)
    assert said in text and "unexpected error" not in text


def test_no_arguments_and_help_show_the_help(capsys: pytest.CaptureFixture[str]) -> None:
    for args in ([], ["--help"], ["enroll", "--help"]):
        assert main(args) == ExitCode.OK
        shown = capsys.readouterr()
        assert "Usage: provision" in shown.out + shown.err


def _wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    wait_until(condition, timeout, what)


@pytest.mark.vm
def test_batch_interrupted_and_resumed_never_enrols_twice(
    fleet: RunningFleet,
    world: World,
    tmp_path: Path,
    virtual_board: Callable[[str], VirtualBoard],
) -> None:
    ids = [f"cs-0000000000{i:02x}" for i in range(1, 5)]
    boards = {d: virtual_board(d) for d in ids}
    csv_path = tmp_path / "devices.csv"
    lines = ["port,device_id,borough,property_reference,room"]
    lines += [f"{boards[d].port},{d},hackney,HACKNEY-01{i},living room" for i, d in enumerate(ids)]
    csv_path.write_text("\n".join(lines) + "\n")
    state = tmp_path / "devices.csv.state.json"
    args = [
        PROVISION,
        "batch",
        str(csv_path),
        "--skip-flash",
        "--skip-verify",
        "--labels",
        str(tmp_path / "labels"),
        "--fleet-url",
        fleet.base_url,
        "--token",
        world.tokens["tech_hackney"],
        "--work-dir",
        str(tmp_path / "work"),
    ]

    def rows_done() -> int:
        try:
            rows = json.loads(state.read_text())["rows"].values()
        except (OSError, ValueError):
            return 0
        return sum("label" in r["done"] for r in rows)

    first = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    _wait_for(lambda: rows_done() >= 2, 120, "two devices provisioned")
    first.send_signal(signal.SIGINT)
    out = first.communicate(timeout=60)[0].decode()
    assert first.returncode in (ExitCode.INTERRUPTED, ExitCode.OK), out
    interrupted_at = rows_done()

    second = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stdout + second.stderr
    assert rows_done() == 4 and "batch summary" in second.stderr
    for d in ids:
        assert (boards[d].root / "config.json").is_file()
        assert (tmp_path / "labels" / f"{d}.pdf").is_file()
    with fleet.ctx.sessions() as s:
        enrolled = s.scalars(select(Device.device_id).where(Device.device_id.in_(ids))).all()
        assert sorted(enrolled) == ids  # one device each, no duplicates
        certs = dict(
            s.execute(
                select(Device.device_id, func.count(DeviceCertificate.id))
                .join(DeviceCertificate, DeviceCertificate.device_pk == Device.id)
                .where(Device.device_id.in_(ids))
                .group_by(Device.device_id)
            ).all()
        )
    # Devices finished before the interruption were not enrolled again on the re-run.
    finished_first = [d for d in ids[:interrupted_at]]
    assert all(certs[d] == 1 for d in finished_first), certs

    third = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert third.returncode == 0
    with fleet.ctx.sessions() as s:
        total = s.scalar(select(func.count()).select_from(DeviceCertificate))
    assert total == sum(certs.values())  # a finished batch re-run changes nothing


def test_rotate_replaces_the_staged_certificate(
    fleet: RunningFleet, world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    token = world.tokens["tech_hackney"]
    assert _enroll(fleet, token, tmp_path) == 0
    device_dir = tmp_path / "cs-0102030a0b0c"
    before = (device_dir / "files" / "certs" / "device.der").read_bytes()
    common = [
        "--device-id",
        "cs-0102030a0b0c",
        "--fleet-url",
        fleet.base_url,
        "--token",
        token,
        "--work-dir",
        str(tmp_path),
    ]
    assert main(["rotate", *common]) == ExitCode.FLEET_REFUSED  # not due for a year
    assert "--force" in _said(capsys)
    assert main(["rotate", "--force", *common]) == 0
    after = (device_dir / "files" / "certs" / "device.der").read_bytes()
    assert after != before
    serial = json.loads((device_dir / "enrolment.json").read_text())["certificate"]["serial"]
    assert serial == f"{x509.load_der_x509_certificate(after).serial_number:x}"


def test_dry_runs_change_nothing(
    fleet: RunningFleet, world: World, tmp_path: Path, esp32_image: Path
) -> None:
    token = world.tokens["tech_hackney"]
    assert _enroll(fleet, token, tmp_path, "--dry-run") == 0
    assert not (tmp_path / "cs-0102030a0b0c").exists()
    with fleet.ctx.sessions() as s:
        assert (
            s.scalar(
                select(func.count())
                .select_from(Device)
                .where(Device.device_id == "cs-0102030a0b0c")
            )
            == 0
        )
    csv_path = tmp_path / "d.csv"
    master, port = os.openpty()  # the dry run checks the line's port exists
    csv_path.write_text(
        "port,device_id,borough,property_reference,room\n"
        f"{os.ttyname(port)},cs-0102030a0b0c,hackney,P,hall\n"
    )
    assert (
        main(
            [
                "batch",
                str(csv_path),
                "--dry-run",
                "--skip-flash",
                "--token",
                token,
                "--fleet-url",
                fleet.base_url,
                "--work-dir",
                str(tmp_path),
            ]
        )
        == 0
    )
    os.close(master)
    os.close(port)
    assert not (tmp_path / "d.csv.state.json").exists()
