"""esptool as a library: check the image offline, detect the chip, read its MAC, flash.

esptool reports through its own logger; a small adapter captures that text (so we can read
the chip name and MAC from it) and feeds its progress bars into ours.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import esptool
import serial
from esptool.logger import EspLog, TemplateLogger, log

from provisioning.errors import (
    DeviceNotResponding,
    ImageInvalid,
    NoSerialPort,
    ProvisionError,
    UsageError,
    WrongChip,
)
from provisioning.serial_ports import permission_error

EXPECTED_CHIP = "ESP32"
FIRMWARE = "MicroPython ESP32_GENERIC (OTA variant)"
# Where the MicroPython image for the original ESP32 starts (bootloader included).
FLASH_OFFSET = 0x1000
DEFAULT_BAUD = 460800

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class ChipInfo:
    chip: str
    mac: str  # "3c:71:bf:0a:12:f4"

    @property
    def device_id(self) -> str:
        return device_id_for_mac(self.mac)


@dataclass(frozen=True)
class ImageInfo:
    path: Path
    chip: str
    size: int
    sha256: str


def device_id_for_mac(mac: str) -> str:
    """The fleet's device id for a chip: `cs-` and the base MAC as 12 hex digits."""
    digits = re.sub(r"[^0-9a-f]", "", mac.lower())
    if len(digits) != 12 or re.fullmatch(r"[0-9a-f:.-]+", mac.lower()) is None:
        raise UsageError(
            f"{mac!r} is not a MAC address",
            remedy="give all 6 bytes in hex, e.g. 3c:71:bf:0a:12:f4 (on the sticker, or printed "
            "by `provision flash`)",
        )
    return f"cs-{digits}"


class _Capture(TemplateLogger):
    """Collects esptool's output and forwards progress bars."""

    def __init__(self, progress: Progress | None) -> None:
        self.lines: list[str] = []
        self._progress = progress

    def print(self, *args: Any, **kwargs: Any) -> None:
        self.lines.append(kwargs.get("sep", " ").join(str(a) for a in args))

    def note(self, message: str) -> None:
        self.lines.append(f"Note: {message}")

    def warning(self, message: str) -> None:
        self.lines.append(f"Warning: {message}")

    def error(self, message: str) -> None:
        self.lines.append(f"Error: {message}")

    def stage(self, finish: bool = False) -> None:
        pass

    def progress_bar(
        self,
        cur_iter: int,
        total_iters: int,
        prefix: str = "",
        suffix: str = "",
        bar_length: int = 30,
    ) -> None:
        if self._progress is not None:
            self._progress(cur_iter, total_iters)

    def set_verbosity(self, verbosity: str) -> None:
        pass

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


@contextmanager
def _captured(progress: Progress | None) -> Iterator[_Capture]:
    capture = _Capture(progress)
    previous = EspLog.instance
    log.set_logger(capture)
    try:
        yield capture
    finally:
        EspLog.instance = previous


def run_esptool(
    args: list[str], *, port: str | None = None, progress: Progress | None = None
) -> str:
    """Run one esptool command in-process; returns its output, raises ProvisionError."""
    with _captured(progress) as capture:
        try:
            esptool.main(args)
        except esptool.FatalError as exc:
            raise _translate(str(exc), port) from exc
        except serial.SerialException as exc:
            raise _translate(str(exc), port) from exc
        except SystemExit as exc:  # esptool's argument parser
            raise ProvisionError(
                f"esptool refused the arguments {' '.join(args)} ({exc})",
                remedy="this is a bug in provision; run again with --verbose and report it",
            ) from exc
    return capture.text


# esptool's words for a chip that is not (or no longer) talking to its bootloader: a board
# not in download mode, or one whose stub flasher is still running from an earlier session.
NOT_ANSWERING = (
    "Failed to connect",
    "No serial data",
    "Timed out",
    "Failed to start stub flasher",
    "no response",
)


def _translate(message: str, port: str | None) -> ProvisionError:
    where = port or "the serial port"
    if "Permission denied" in message:
        return permission_error(where)
    if "Could not open" in message or "No such file" in message:
        return NoSerialPort(
            f"cannot open {where}: {message.splitlines()[0]}",
            remedy="check the cable, close other programs using the port (serial monitors, "
            "mpremote), or pass the right --port",
        )
    match = re.search(r"This chip is (\S+), not (\S+)", message)
    if match:
        return _wrong_chip(match.group(1))
    if any(sign in message for sign in NOT_ANSWERING):
        return DeviceNotResponding(
            f"the chip on {where} did not answer the bootloader ({_first_line(message)})",
            remedy="hold the BOOT button while pressing EN/RESET, then run again; try a shorter "
            "or better cable, or a lower --baud",
        )
    return ProvisionError(
        f"esptool failed: {_first_line(message)}",
        remedy="run again with --verbose; if it persists, power-cycle the sensor",
    )


def _first_line(message: str) -> str:
    # esptool follows the reason with paragraphs of advice and a troubleshooting URL.
    return message.strip().splitlines()[0].rstrip(".") if message.strip() else "no answer"


def _wrong_chip(found: str) -> WrongChip:
    return WrongChip(
        f"the board has an {found}, but this firmware ({FIRMWARE}) is for the {EXPECTED_CHIP}",
        remedy="use a board from the supported list in hardware/boards/ (ESP32-WROOM-32E "
        "DevKitC), or a firmware image built for this chip",
    )


def check_image(path: Path) -> ImageInfo:
    """Verify offline (esptool image-info) that `path` is an intact ESP32 image."""
    if not path.is_file():
        raise ImageInvalid(
            f"firmware image {path} not found",
            remedy="download the pinned MicroPython ESP32_GENERIC OTA image and pass --image",
        )
    try:
        text = run_esptool(["image-info", str(path)])
    except ProvisionError as exc:
        raise ImageInvalid(
            f"{path} is not a readable ESP firmware image ({exc})",
            remedy="download the image again; pass the .bin, not the .elf or .uf2",
        ) from exc
    detected = re.search(r"Detected image type: (\S+)", text)
    chip = detected.group(1) if detected else "unknown"
    if chip != EXPECTED_CHIP:
        raise ImageInvalid(
            f"{path} is built for {chip}, not {EXPECTED_CHIP}",
            remedy="use the ESP32_GENERIC (OTA variant) image for the original ESP32",
        )
    if re.search(r"Checksum: \S+ \(invalid", text) or (
        "Validation hash: " in text and (re.search(r"Validation hash: \S+ \(invalid", text))
    ):
        raise ImageInvalid(
            f"{path} is corrupt: its checksum or hash does not match",
            remedy="download the image again and compare its SHA-256 with the release page",
        )
    data = path.read_bytes()
    return ImageInfo(path=path, chip=chip, size=len(data), sha256=hashlib.sha256(data).hexdigest())


def _base_args(port: str, baud: int) -> list[str]:
    # The chip is detected rather than forced, so a wrong board gets a clear message.
    return ["--port", port, "--baud", str(baud), "--chip", "auto"]


def probe(port: str, *, baud: int = DEFAULT_BAUD) -> ChipInfo:
    """Connect to the ROM bootloader, check the chip type and read the MAC."""
    text = run_esptool([*_base_args(port, baud), "read-mac"], port=port)
    chip_match = re.search(
        r"(?:Chip type|Chip is|Detecting chip type\.\.\.)\s*:?\s*(ESP32[-\w]*)", text
    )
    mac_match = re.search(r"MAC:\s*((?:[0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2})", text)
    if chip_match is None or mac_match is None:
        raise DeviceNotResponding(
            f"could not read the chip type and MAC from {port}",
            remedy="press EN/RESET while holding BOOT and run again",
        )
    chip = chip_match.group(1)
    if chip != EXPECTED_CHIP:
        raise _wrong_chip(chip)
    return ChipInfo(chip=chip, mac=mac_match.group(1).lower())


def erase(port: str, *, baud: int = DEFAULT_BAUD) -> None:
    run_esptool([*_base_args(port, baud), "erase-flash"], port=port)


def write(
    port: str, image: ImageInfo, *, baud: int = DEFAULT_BAUD, progress: Progress | None = None
) -> None:
    run_esptool(
        [*_base_args(port, baud), "write-flash", hex(FLASH_OFFSET), str(image.path)],
        port=port,
        progress=progress,
    )
