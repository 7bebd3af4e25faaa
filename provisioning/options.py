"""The command-line options the `provision` commands share."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

DryRun = Annotated[bool, typer.Option("--dry-run", help="Show what would happen; change nothing.")]
Verbose = Annotated[
    bool, typer.Option("--verbose", "-v", help="More detail; tracebacks on errors.")
]
FleetUrl = Annotated[
    str | None,
    typer.Option(
        "--fleet-url",
        envvar="PROVISION_FLEET_URL",
        help="The fleet service's address, e.g. https://fleet.example.org (no default).",
        show_default=False,
    ),
]
Token = Annotated[
    str | None,
    typer.Option(
        "--token",
        envvar="PROVISION_TOKEN",
        help="Technician API token, made on the dashboard's API tokens page. Prefer "
        "PROVISION_TOKEN: a --token value shows in `ps` and in the shell history.",
        show_default=False,
    ),
]
WorkDir = Annotated[
    Path,
    typer.Option(
        "--work-dir",
        envvar="PROVISION_WORK_DIR",
        help="Where enrolment bundles and the firmware build are kept.",
    ),
]
PortOpt = Annotated[
    str | None,
    typer.Option(
        "--port",
        "-p",
        help="Serial port, e.g. /dev/ttyUSB0; found automatically if one sensor is plugged in.",
    ),
]
DeviceId = Annotated[
    str | None,
    typer.Option("--device-id", help="Device id, e.g. cs-3c71bf0a12f4 (default: from --mac)."),
]
Mac = Annotated[
    str | None, typer.Option("--mac", help="The chip's MAC (printed by `provision flash`).")
]
Borough = Annotated[str, typer.Option("--borough", help="Borough code, e.g. hackney.")]
PropertyRef = Annotated[str, typer.Option("--property", help="The landlord's property reference.")]
Room = Annotated[str, typer.Option("--room", help="Room, e.g. bathroom, bedroom 1.")]
Position = Annotated[
    str | None, typer.Option("--position", help="Where in the room, e.g. 'external wall, 1.5 m'.")
]
Board = Annotated[str, typer.Option("--board", help="Board profile from hardware/boards/.")]
WifiProfile = Annotated[
    str, typer.Option("--wifi-profile", help="The borough's Wi-Fi profile name.")
]
Image = Annotated[
    Path,
    typer.Option("--image", help="MicroPython ESP32_GENERIC OTA image (.bin), checked before use."),
]
Baud = Annotated[
    int,
    typer.Option(
        "--baud", min=9600, help="Flashing speed in baud; lower it for long or poor cables."
    ),
]
SampleS = Annotated[
    int, typer.Option("--sample-interval", min=1, max=86400, help="Seconds between measurements.")
]
HealthS = Annotated[
    int, typer.Option("--health-interval", min=1, max=86400, help="Seconds between health reports.")
]
VerifyTimeout = Annotated[
    float, typer.Option("--timeout", min=1, help="Seconds to wait for the first reading.")
]
