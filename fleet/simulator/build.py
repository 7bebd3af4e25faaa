"""Precompile the firmware and the simulated board to .mpy, as shipped to a device.

Compiling .py on import needs far more heap than running .mpy, and a real
sensor runs precompiled code; so virtual devices do too. Builds are cached by
a hash of the sources and the mpy-cross version, and published atomically so
concurrent launchers share one build.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from fleet.simulator.paths import FIRMWARE_DIR, SIM_DIR, SimulatorError, find_mpy_cross

# Entry points stay source: the VM runs main.py directly, and boot.py only matters on a device.
_KEEP_SOURCE = {"main.py", "boot.py"}


def _sources() -> list[tuple[Path, Path]]:
    """(source file, path relative to the build root) for every module to ship."""
    out: list[tuple[Path, Path]] = []
    for root in (FIRMWARE_DIR, SIM_DIR):
        for src in sorted(root.rglob("*.py")):
            if "__pycache__" not in src.parts:
                out.append((src, src.relative_to(root)))
    return out


def _digest(mpy_cross: Path | None) -> str:
    h = hashlib.sha256(str(mpy_cross).encode())
    for src, rel in _sources():
        h.update(str(rel).encode())
        h.update(src.read_bytes())
    return h.hexdigest()[:16]


def build_firmware(cache_dir: Path) -> Path:
    """Return a folder holding main.py plus compiled modules (firmware and sim).

    Without mpy-cross the folder holds the sources instead, which works with a
    larger heap only.
    """
    mpy_cross = find_mpy_cross()
    target = cache_dir / f"fw-{_digest(mpy_cross)}"
    if (target / "main.py").is_file():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".build-", dir=cache_dir))
    try:
        for src, rel in _sources():
            out = staging / rel
            out.parent.mkdir(parents=True, exist_ok=True)
            if mpy_cross is None or (rel.name in _KEEP_SOURCE and len(rel.parts) == 1):
                shutil.copyfile(src, out)
                continue
            mpy = out.with_suffix(".mpy")
            result = subprocess.run(
                [str(mpy_cross), "-O1", "-s", str(rel), "-o", str(mpy), str(src)],
                capture_output=True,
                text=True,
                check=False,
            )
            if result.returncode != 0:
                raise SimulatorError(f"mpy-cross failed on {src}: {result.stderr.strip()}")
        try:
            os.rename(staging, target)
        except OSError:
            if not (target / "main.py").is_file():  # lost a race only if the winner finished
                raise
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return target
