"""Mistakes caught on the laptop (exit 2, saying what is wrong), and what the CLI writes."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from provisioning.cli import main
from provisioning.errors import ExitCode, UsageError
from provisioning.fleet_client import refusal
from tests.provisioning.conftest import said

PLACE = ["--borough", "hackney", "--property", "HK-000123", "--room", "bathroom"]


@pytest.mark.parametrize(
    ("args", "said_what"),
    [
        (["--mac", "3c:71:bf:0a:12", *PLACE], "'3c:71:bf:0a:12' is not a MAC address"),
        (["--device-id", "CS-3C71BF0A12F6", *PLACE], "'CS-3C71BF0A12F6' is not a device id"),
        (["--device-id", "cs-3c71bf0a12f6", *PLACE[:4], "--room", ""], "the room is empty"),
        (
            ["--device-id", "cs-3c71bf0a12f6", *PLACE[:4], "--room", "bedroom [front] " * 5],
            "the room 'bedroom [front] bedroom [front]",  # brackets are shown, not markup
        ),
        (
            ["--device-id", "cs-3c71bf0a12f6", *PLACE, "--fleet-url", "127.0.0.1:18480"],
            "is not a web address",
        ),
    ],
)
def test_enroll_refuses_bad_arguments_before_asking_the_fleet(
    args: list[str], said_what: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["enroll", *args, "--token", "fst_x", "--work-dir", str(tmp_path)])
    assert code == ExitCode.USAGE
    text = said(capsys)
    assert said_what in text and "fix:" in text and "unexpected error" not in text


@pytest.mark.parametrize(
    ("args", "said_what"),
    [
        (["verify", "--device-id", "cs-3c71bf0a12f4", "--timeout", "-5"], "'--timeout'"),
        (["flash", "--image", "x.bin", "--baud", "0"], "'--baud'"),
    ],
)
def test_impossible_numbers_are_refused(
    args: list[str], said_what: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(args) == ExitCode.USAGE
    assert said_what in said(capsys)


def test_validation_refusals_of_the_fleet_are_usage_errors_naming_the_field() -> None:
    pattern = "^[a-z0-9][a-z0-9-]{2,63}$"
    body = {
        "detail": [
            {
                "type": "string_pattern_mismatch",
                "loc": ["body", "device_id"],
                "msg": f"String should match pattern '{pattern}'",
                "input": "CS-SECRET-INPUT",
            }
        ]
    }
    request = httpx.Request("POST", "http://fleet.example/api/v1/enrolments")
    error = refusal(httpx.Response(422, json=body, request=request))
    assert isinstance(error, UsageError) and error.exit_code == ExitCode.USAGE
    assert f"device_id: String should match pattern '{pattern}'" in str(error)
    assert "CS-SECRET-INPUT" not in str(error)  # the rejected value may be a secret


def test_pdf_label_text_is_in_the_fonts_encoding(tmp_path: Path) -> None:
    pdf = tmp_path / "label.pdf"
    room = "Flat 2 \u2013 bedroom \u0141\u00f3d\u017a \u65e5"  # en dash, Polish, CJK
    args = ["--device-id", "cs-0102030a0b0c", "--property", "HK-7", "--room", room]
    assert main(["label", str(pdf), *args]) == 0
    data = pdf.read_bytes()
    assert b"/BaseFont /Helvetica /Encoding /WinAnsiEncoding" in data
    # En dash and o-acute are in WinAnsiEncoding (octal escapes); z-acute loses its accent;
    # L-stroke and CJK have no glyph in the font and show as "?".
    assert b"(Flat 2 \\226 bedroom ?\\363dz ?) Tj" in data
    content = data.split(b"stream\n")[1].split(b"\nendstream")[0]
    assert re.fullmatch(rb"[\n\x20-\x7e]*", content)  # no raw UTF-8 bytes left


def test_device_without_flashing_needs_the_sensor_named_even_in_a_dry_run(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["device", "--dry-run", "--skip-flash", *PLACE, "--token", "fst_x"])
    assert code == ExitCode.USAGE
    assert "which device?" in said(capsys)
