"""Write PEM files atomically, with private keys readable by their owner only."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

PRIVATE_MODE = 0o600
PUBLIC_MODE = 0o644


def write_atomic(path: Path, data: bytes, *, mode: int) -> None:
    """Write `data` to `path` via a temporary file in the same folder and a rename.

    The temporary file is created with `mode` already applied, so a private key is never
    readable by others, not even for an instant.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_private(path: Path, data: bytes) -> None:
    write_atomic(path, data, mode=PRIVATE_MODE)


def write_public(path: Path, data: bytes) -> None:
    write_atomic(path, data, mode=PUBLIC_MODE)
