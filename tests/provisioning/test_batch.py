"""`provision batch`: reading the CSV, dry runs, and lines corrected between runs."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from fleet.models import Device
from provisioning.batch import read_rows
from provisioning.cli import main
from provisioning.errors import ExitCode
from tests.fleet.conftest import World
from tests.fleet.server import RunningFleet
from tests.provisioning.conftest import said
from tests.provisioning.fake_rom import FakeEsp32

HEADER = "port,device_id,mac,borough,property_reference,room,position,board,wifi_profile"


@pytest.fixture
def tty() -> Iterator[str]:
    """A serial port that exists (nobody answers on it)."""
    master, slave = os.openpty()
    yield os.ttyname(slave)
    os.close(master)
    os.close(slave)


def _batch(csv_path: Path, fleet: RunningFleet, world: World, *extra: str) -> int:
    return main(
        [
            "batch",
            str(csv_path),
            "--fleet-url",
            fleet.base_url,
            "--token",
            world.tokens["tech_hackney"],
            "--work-dir",
            str(csv_path.parent / "work"),
            *extra,
        ]
    )


def _enrolled(fleet: RunningFleet) -> list[str]:
    with fleet.ctx.sessions() as s:
        found = s.scalars(select(Device.device_id).where(Device.device_id.like("cs-3c71%")))
        return list(found.all())


def test_a_spreadsheets_csv_utf8_is_read(tmp_path: Path) -> None:
    csv_path = tmp_path / "excel.csv"
    text = "port,device_id,borough,property_reference,room\r\n/dev/ttyUSB0,,hackney,HK-1,hall\r\n"
    csv_path.write_bytes("\ufeff".encode() + text.encode())  # what "CSV UTF-8" writes
    [row] = read_rows(csv_path)
    assert row.port == "/dev/ttyUSB0" and row.place.room == "hall"


@pytest.mark.parametrize(
    ("content", "said_what"),
    [
        (f"{HEADER}\n".encode(), "lists no sensors"),
        (
            "borough,property_reference,room\nhackney,Flat 2 \u2013 front,hall\n".encode("cp1252"),
            "UTF-8",
        ),
        (b"borough,property_reference,room,mac\nhackney,HK-1,hall,3c:71:bf:0a:12\n", "line 2"),
        (
            b"borough,property_reference,room,device_id\nhackney,HK-1,hall,CS-3C71BF0A12F4\n",
            "line 2",
        ),
        (b"borough,property_reference,room\nhackney,HK-1," + b"r" * 65 + b"\n", "at most 64"),
    ],
)
def test_a_bad_csv_is_a_usage_error_that_says_what_is_wrong(
    tmp_path: Path, content: bytes, said_what: str, capsys: pytest.CaptureFixture[str]
) -> None:
    csv_path = tmp_path / "devices.csv"
    csv_path.write_bytes(content)
    assert main(["batch", str(csv_path), "--skip-flash", "--token", "t"]) == ExitCode.USAGE
    text = said(capsys)
    assert said_what in text and "unexpected error" not in text


def test_a_dry_run_saves_nothing_and_needs_no_device_id(
    fleet: RunningFleet,
    world: World,
    tmp_path: Path,
    esp32_image: Path,
    tty: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    csv_path = tmp_path / "one.csv"
    csv_path.write_text(f"port,borough,property_reference,room\n{tty},hackney,HK-000300,bath\n")
    args = ["--image", str(esp32_image), "--labels", str(tmp_path / "labels")]
    assert _batch(csv_path, fleet, world, *args, "--dry-run") == 0
    assert not (tmp_path / "one.csv.state.json").exists()
    text = said(capsys)
    for step in ("would detect the chip", "would enrol the sensor", "would install", "would reset"):
        assert step in text
    assert "would write its label" in text
    assert _enrolled(fleet) == []


def test_a_line_corrected_to_another_sensor_enrols_that_sensor(
    fleet: RunningFleet, world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv_path = tmp_path / "real.csv"
    place = "hackney,HK-000400,kitchen,,"
    # The port is missing, so each run stops at install: what matters is who was enrolled.
    csv_path.write_text(f"{HEADER}\n/dev/ttyNONE,,3c:71:bf:0a:12:f6,{place},guest\n")
    assert _batch(csv_path, fleet, world, "--skip-flash") == ExitCode.BATCH_INCOMPLETE
    text = said(capsys)
    assert "wifi_profile column" in text  # the batch's own way to choose a profile

    csv_path.write_text(f"{HEADER}\n/dev/ttyNONE,,3c:71:bf:0a:12:b2,{place},default\n")
    assert _batch(csv_path, fleet, world, "--skip-flash") == ExitCode.BATCH_INCOMPLETE
    assert _enrolled(fleet) == ["cs-3c71bf0a12b2"]
    state = json.loads((tmp_path / "real.csv.state.json").read_text())
    [row] = state["rows"].values()
    assert row["device_id"] == "cs-3c71bf0a12b2" and row["done"] == ["enrol"]
    assert "now names cs-3c71bf0a12b2 instead of cs-3c71bf0a12f6" in said(capsys)


def test_a_line_naming_another_sensor_than_the_one_plugged_in_is_not_flashed(
    fleet: RunningFleet,
    world: World,
    tmp_path: Path,
    esp32_image: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    csv_path = tmp_path / "devices.csv"
    with FakeEsp32("3c:71:bf:0a:12:f4") as chip:
        csv_path.write_text(
            f"port,device_id,borough,property_reference,room\n"
            f"{chip.port},cs-3c71bf0a12b2,hackney,HK-1,hall\n"
        )
        code = _batch(csv_path, fleet, world, "--image", str(esp32_image))
        assert code == ExitCode.BATCH_INCOMPLETE
        assert not chip.erased and chip.writes == []
    assert "is cs-3c71bf0a12f4, not cs-3c71bf0a12b2" in said(capsys)


def test_a_batch_to_flash_without_an_image_is_refused_once_before_any_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv_path = tmp_path / "van.csv"
    csv_path.write_text(
        "port,borough,property_reference,room\n"
        + "".join(f"/dev/ttyUSB{i},hackney,HK-{i},hall\n" for i in range(7))
    )
    state = tmp_path / "van.csv.state.json"
    # Lines 2 and 3 were flashed by an earlier run: they need no image.
    earlier = json.dumps(
        {
            "version": 1,
            "rows": {
                row.key: {"device_id": f"cs-3c71bf0a12f{i}", "done": ["flash"]}
                for i, row in enumerate(read_rows(csv_path)[:2])
            },
        }
    )
    state.write_text(earlier)
    args = ["batch", str(csv_path), "--token", "t", "--fleet-url", "http://127.0.0.1:9"]
    assert main(args) == ExitCode.USAGE
    told = said(capsys)
    assert "no --image given, and 5 line(s) still need flashing (line 4, 5, 6, 7, 8)" in told
    assert told.count("--image") == 2 and "line 4:" not in told  # once, not per line
    assert state.read_text() == earlier  # nothing recorded as failed
