"""One process at a time on a folder's state, with a lock that dies with its holders.

`flock` belongs to the open file, so the kernel drops it when the last process holding that
file exits, however it exits: a lock left by `kill -9` never needs clearing by hand. A child
given the file (`pass_fds`) holds it too, for as long as it runs.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path


class FolderInUse(RuntimeError):
    """Another process holds the lock; `holder` is what it wrote about itself."""

    def __init__(self, path: Path, holder: str) -> None:
        super().__init__(f"{path} is locked by {holder or 'another process'}")
        self.path = path
        self.holder = holder or "another process"


class FolderLock:
    def __init__(self, path: Path, holder: str) -> None:
        self.path = path
        self.holder = holder
        self._fd: int | None = None

    @property
    def fd(self) -> int:
        if self._fd is None:
            raise RuntimeError(f"{self.path} is not locked")
        return self._fd

    def acquire(self) -> None:
        """Take the lock or raise FolderInUse at once; never waits."""
        if self._fd is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 512).decode(errors="replace").strip()
            os.close(fd)
            raise FolderInUse(self.path, holder) from None
        os.ftruncate(fd, 0)
        os.write(fd, self.holder.encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        # Emptied first, so the file never names a holder that has gone.
        os.ftruncate(self._fd, 0)
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> FolderLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
