"""Copying onto a board: mpremote against the MicroPython VM on a pty."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fleet.simulator import find_micropython
from provisioning import device_fs
from provisioning.virtual_board import VirtualBoard

pytestmark = pytest.mark.vm


@pytest.fixture
def board(tmp_path: Path) -> Iterator[VirtualBoard]:
    with VirtualBoard(tmp_path / "device", micropython=find_micropython()) as started:
        yield started


def _tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def test_install_reports_progress_per_file_and_skips_what_is_there(
    tmp_path: Path, board: VirtualBoard
) -> None:
    firmware = _tree(
        tmp_path / "fw",
        {"main.py": "m", "cs/a.py": "a", "cs/b.py": "b", "cs/drivers/c.py": "c"},
    )
    files = _tree(tmp_path / "files", {"config.json": "{}", "certs/key.der": "k", "cs/a.py": "A"})
    seen: list[tuple[int, int]] = []
    result = device_fs.install(board.port, [firmware, files], progress=lambda *p: seen.append(p))
    assert (result.copied, result.unchanged) == (6, 0)
    assert seen == [(i, 6) for i in range(7)]  # one step per file, then done
    assert (board.root / "cs" / "a.py").read_text() == "A"  # the device's own file wins
    assert (board.root / "cs" / "drivers" / "c.py").read_text() == "c"
    assert not (board.root / "maintenance").exists()
    assert not device_fs.maintenance_pending(board.port)

    again = device_fs.install(board.port, [firmware, files])
    assert (again.copied, again.unchanged) == (0, 6)
