"""Finding the sensor's USB serial port and checking we may open it."""

from __future__ import annotations

import grp
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from serial.tools import list_ports

from provisioning.errors import DIALOUT_REMEDY, NoSerialPort, PortPermissionDenied, UsageError

# USB-serial bridges found on ESP32 boards: Silicon Labs CP210x, WCH CH34x, FTDI, and
# Espressif's own USB-Serial/JTAG; anything else is probably not a sensor.
KNOWN_BRIDGES: dict[int, str] = {
    0x10C4: "CP210x",
    0x1A86: "CH34x",
    0x0403: "FTDI",
    0x303A: "Espressif",
}


@dataclass(frozen=True)
class Port:
    device: str
    description: str
    vid: int | None


def usb_ports(lister: Callable[[], Sequence[object]] | None = None) -> list[Port]:
    found = []
    for info in (lister or list_ports.comports)():
        vid = getattr(info, "vid", None)
        if vid in KNOWN_BRIDGES:
            found.append(
                Port(str(getattr(info, "device", "")), str(getattr(info, "description", "")), vid)
            )
    return found


def find_port(
    explicit: str | None,
    *,
    lister: Callable[[], Sequence[object]] | None = None,
    opener: Callable[[str], None] | None = None,
) -> str:
    """The port to use: `explicit` if given, else the single ESP32 USB bridge plugged in."""
    if explicit:
        port = explicit
    else:
        candidates = usb_ports(lister)
        if not candidates:
            raise NoSerialPort(
                "no ESP32 serial port found (looked for CP210x, CH34x, FTDI and Espressif USB)",
                remedy="plug the sensor in with a data-capable USB cable (charge-only cables are "
                "common), check `ls /dev/ttyUSB* /dev/ttyACM*`, or pass --port",
            )
        if len(candidates) > 1:
            names = ", ".join(p.device for p in candidates)
            raise UsageError(
                f"several serial ports look like sensors: {names}",
                remedy="unplug the others or choose one with --port",
            )
        port = candidates[0].device
    if "://" in port:  # pyserial URL handlers (socket://, rfc2217://) have no file to check
        return port
    check_access(port, opener=opener)
    return port


def _try_open(path: str) -> None:
    fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    os.close(fd)


def check_access(path: str, *, opener: Callable[[str], None] | None = None) -> None:
    """Raise a clear error if the port is missing or we lack the right to open it."""
    if not os.path.exists(path):
        raise NoSerialPort(
            f"serial port {path} does not exist",
            remedy="check the cable and the name (`ls /dev/ttyUSB* /dev/ttyACM*`), or leave out "
            "--port to search",
        )
    try:
        (opener or _try_open)(path)
    except PermissionError as exc:
        raise permission_error(path) from exc
    except OSError:
        return  # busy or odd: the tool that opens it next reports what is wrong


def permission_error(path: str) -> PortPermissionDenied:
    try:
        group = grp.getgrgid(os.stat(path).st_gid).gr_name
    except (OSError, KeyError):
        group = "dialout"
    return PortPermissionDenied(
        f"permission denied opening {path}", remedy=DIALOUT_REMEDY.format(group=group)
    )
