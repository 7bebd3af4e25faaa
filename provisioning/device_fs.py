"""Writing files to a device over its serial REPL with mpremote.

mpremote runs as a subprocess (its documented interface), always with `resume`, so the
device is not soft-reset into its app halfway through. `fs cp` skips files whose SHA-256
already matches, which makes a repeated install cheap.
"""

from __future__ import annotations

import itertools
import os
import re
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

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
    port: str,
    *args: str,
    timeout: float = DEFAULT_TIMEOUT_S,
    on_line: Callable[[str], None] | None = None,
) -> str:
    """Run `mpremote connect PORT resume ARGS...`; returns its output or raises ProvisionError.

    `timeout` is how long the device may stay silent: a long copy that keeps printing a line
    per file is not cut off.
    """
    cmd = [sys.executable, "-m", "mpremote", "connect", port, "resume", *args]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}  # each line as it happens, for progress
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    silent = threading.Event()

    def give_up() -> None:
        silent.set()
        proc.kill()

    def watchdog() -> threading.Timer:
        timer = threading.Timer(timeout, give_up)
        timer.start()
        return timer

    timer = watchdog()
    lines: list[str] = []
    try:
        for line in proc.stdout or ():
            timer.cancel()
            timer = watchdog()
            lines.append(line)
            if on_line is not None:
                on_line(line)
        proc.wait()
    finally:
        timer.cancel()
        if proc.poll() is None:  # interrupted (Ctrl-C): leave no mpremote holding the port
            proc.kill()
            proc.wait()
    output = "".join(lines)
    if silent.is_set():
        raise DeviceNotResponding(
            f"the device on {port} stopped answering (nothing for {timeout:.0f} s)",
            remedy="press EN/RESET on the sensor and run again; if the app keeps the REPL busy, "
            "reflash with `provision flash`",
        )
    if proc.returncode == 0:
        return output
    raise _translate(port, output)


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
    try:
        out = mpremote(port, "exec", probe, timeout=CONNECT_TIMEOUT_S)
    except DeviceNotResponding as exc:
        why = "it stayed silent" if "stopped answering" in str(exc) else "it has no raw REPL"
        raise DeviceNotResponding(
            f"no MicroPython REPL answered on {port}: {why} (a chip in its bootloader, "
            "no MicroPython yet, or another program holding the port)",
            remedy="press EN/RESET on the sensor and run again; close serial monitors; if it "
            "still does not answer, flash MicroPython first (`provision flash`)",
        ) from exc
    match = re.search(r"mpy (\d+)", out)
    if match is None or int(match.group(1)) == 0:
        return None
    value = int(match.group(1))
    return value & 0xFF, (value >> 8) & 3


def _files(trees: Sequence[Path]) -> list[tuple[str, Path]]:
    """(folder on the device, local file) for every file, grouped by folder; where trees
    hold the same path, the later one's file goes on the device."""
    found: dict[str, Path] = {}
    for tree in trees:
        for path in tree.rglob("*"):
            if path.is_file():
                found[path.relative_to(tree).as_posix()] = path.resolve()
    return sorted((str(PurePosixPath(rel).parent), local) for rel, local in found.items())


def install(
    port: str,
    trees: Sequence[Path],
    *,
    progress: Callable[[int, int], None] | None = None,
) -> InstallResult:
    """Copy each tree's contents to the device root, guarded by the maintenance flag.

    One mpremote session does it all, a `cp` per folder; mpremote prints a line as it starts
    each file, which drives the progress bar.
    """
    files = _files(trees)
    folders = sorted({folder for folder, _ in files} - {"."})
    mkdirs = f"import os\nfor d in {folders!r}:\n try:\n  os.mkdir(d)\n except OSError:\n  pass"
    args = ["fs", "touch", f":{MAINTENANCE_FILE}", "+", "exec", mkdirs]
    for folder, group in itertools.groupby(files, key=lambda f: f[0]):
        args += ["+", "fs", "cp", *(str(local) for _, local in group), f":{folder}/"]
    args += ["+", "fs", "rm", f":{MAINTENANCE_FILE}"]
    started = 0

    def on_line(line: str) -> None:
        nonlocal started
        if line.startswith("cp ") and progress is not None:
            progress(started, len(files))  # the one before this has finished
        started += line.startswith("cp ")

    out = mpremote(port, *args, on_line=on_line)
    if progress is not None:
        progress(len(files), len(files))
    unchanged = out.count("Up to date:")
    return InstallResult(copied=len(files) - unchanged, unchanged=unchanged)


def maintenance_pending(port: str) -> bool:
    """Whether an install was cut off: the flag it sets first is still there."""
    probe = f"import os; print('pending', {MAINTENANCE_FILE!r} in os.listdir())"
    return "pending True" in mpremote(port, "exec", probe, timeout=CONNECT_TIMEOUT_S)


def reset(port: str) -> None:
    """Hard-reset the device so it boots the new files (it drops the connection doing so)."""
    mpremote(
        port, "exec", "--no-follow", "import time, machine; time.sleep_ms(100); machine.reset()"
    )
