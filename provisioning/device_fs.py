"""Writing files to a device over its serial REPL with mpremote.

mpremote runs as a subprocess (its documented interface), always with `resume`, so the
device is not soft-reset into its app halfway through. `fs cp` skips files whose SHA-256
already matches, which makes a repeated install cheap.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from provisioning.errors import DeviceNotResponding, NoSerialPort, ProvisionError
from provisioning.serial_ports import permission_error

DEFAULT_TIMEOUT_S = 120.0
# A board with a REPL answers within a second; one stuck in its app or bootloader never does.
CONNECT_TIMEOUT_S = 10.0
# While this file exists the firmware's main.py does not start the app, so a reset during
# the install never boots a half-written mix of old and new files.
MAINTENANCE_FILE = "maintenance"


@dataclass
class InstallResult:
    copied: int = 0
    unchanged: int = 0


def mpremote(
    port: str, *args: str, timeout: float = DEFAULT_TIMEOUT_S, cwd: Path | None = None
) -> str:
    """Run `mpremote connect PORT resume ARGS...`; returns stdout or raises ProvisionError."""
    cmd = [sys.executable, "-m", "mpremote", "connect", port, "resume", *args]
    try:
        done = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, cwd=cwd, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise DeviceNotResponding(
            f"the device on {port} stopped answering (mpremote {' '.join(args[:2])} took over "
            f"{timeout:.0f} s)",
            remedy="press EN/RESET on the sensor and run again; if the app keeps the REPL busy, "
            "reflash with `provision flash`",
        ) from exc
    if done.returncode == 0:
        return done.stdout
    raise _translate(port, (done.stderr or "") + (done.stdout or ""))


def _translate(port: str, output: str) -> ProvisionError:
    if "Permission denied" in output:
        return permission_error(port)
    if "failed to access" in output or "No such file or directory: '/dev" in output:
        return NoSerialPort(
            f"cannot open {port}",
            remedy="check the cable and --port; close serial monitors or other mpremote sessions",
        )
    if "could not enter raw repl" in output or "TransportError" in output:
        return DeviceNotResponding(
            f"the device on {port} does not offer a MicroPython REPL",
            remedy="flash MicroPython first (`provision flash`), then press EN/RESET and retry",
        )
    last = [line for line in output.strip().splitlines() if line.strip()][-1:] or ["no output"]
    return ProvisionError(
        f"mpremote failed on {port}: {last[0]}",
        remedy="run again with --verbose; press EN/RESET on the sensor if it persists",
    )


def device_mpy_version(port: str) -> tuple[int, int] | None:
    """The .mpy version the device's MicroPython loads, or None if it does not say."""
    probe = "import sys; print('mpy', getattr(sys.implementation, '_mpy', 0))"
    out = mpremote(port, "exec", probe, timeout=CONNECT_TIMEOUT_S)
    match = re.search(r"mpy (\d+)", out)
    if match is None or int(match.group(1)) == 0:
        return None
    value = int(match.group(1))
    return value & 0xFF, (value >> 8) & 3


def install(
    port: str,
    trees: Sequence[Path],
    *,
    progress: Callable[[int, int], None] | None = None,
) -> InstallResult:
    """Copy each tree's contents to the device root, guarded by the maintenance flag."""
    steps = len(trees) + 2
    result = InstallResult()
    mpremote(port, "fs", "touch", f":{MAINTENANCE_FILE}", timeout=CONNECT_TIMEOUT_S)
    if progress:
        progress(1, steps)
    for index, tree in enumerate(trees, start=2):
        out = mpremote(port, "fs", "cp", "-r", f"{tree}/.", ":")
        unchanged = out.count("Up to date:")
        total = sum(1 for p in tree.rglob("*") if p.is_file())
        result.unchanged += unchanged
        result.copied += total - unchanged
        if progress:
            progress(index, steps)
    mpremote(port, "fs", "rm", f":{MAINTENANCE_FILE}")
    if progress:
        progress(steps, steps)
    return result


def reset(port: str) -> None:
    """Hard-reset the device so it boots the new files (it drops the connection doing so)."""
    mpremote(
        port, "exec", "--no-follow", "import time, machine; time.sleep_ms(100); machine.reset()"
    )
