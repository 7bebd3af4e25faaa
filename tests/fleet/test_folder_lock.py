"""The folder lock: one holder at a time, named to the next comer, gone with its holders."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from fleet.core.folder_lock import FolderInUse, FolderLock
from tests.firmware.conftest import wait_until

# Takes the lock, gives it to a child that outlives the lock's release here, says ready.
HOLD = """
import subprocess, sys
from pathlib import Path
from fleet.core.folder_lock import FolderLock
lock = FolderLock(Path(sys.argv[1]), "holder " + sys.argv[2])
lock.acquire()
child = None
if sys.argv[2] == "and child":
    child = subprocess.Popen(["sleep", "600"], pass_fds=(lock.fd,))
print(child.pid if child else 0, flush=True)
sys.stdin.read()
"""


def _holder(path: Path, who: str) -> tuple[subprocess.Popen[str], int]:
    """A process holding the lock, and the pid of the child it gave it to (0 if none)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(path), who],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    return proc, int(proc.stdout.readline())  # the line comes once it is locked


def _free(path: Path) -> bool:
    try:
        with FolderLock(path, "probe"):
            return True
    except FolderInUse:
        return False


def test_a_held_lock_is_refused_naming_its_holder_and_freed_on_release(tmp_path: Path) -> None:
    path = tmp_path / "data" / "fleet.lock"
    first = FolderLock(path, "pid 1, dashboard on port 8000")
    first.acquire()
    with pytest.raises(FolderInUse) as refused:
        FolderLock(path, "second").acquire()
    assert refused.value.holder == "pid 1, dashboard on port 8000"
    first.release()
    assert path.read_text() == ""  # names no holder once released
    with FolderLock(path, "second"):
        assert path.read_text() == "second"


def test_a_killed_holder_leaves_no_lock_behind(tmp_path: Path) -> None:
    path = tmp_path / "fleet.lock"
    proc, _ = _holder(path, "alone")
    with pytest.raises(FolderInUse, match="holder alone"):
        FolderLock(path, "next").acquire()
    proc.kill()
    proc.wait()
    assert _free(path)


def test_a_child_given_the_lock_holds_it_until_it_ends_too(tmp_path: Path) -> None:
    path = tmp_path / "fleet.lock"
    proc, child = _holder(path, "and child")
    proc.kill()
    proc.wait()
    assert not _free(path)
    os.kill(child, signal.SIGKILL)
    wait_until(lambda: _free(path), 10, "the lock freed once its last holder ended")
