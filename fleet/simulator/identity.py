"""Identities of virtual devices, derived from a seed.

A virtual device gets a locally administered MAC (first byte 0x02) computed
from its seed, and the device id `cs-<mac as 12 hex digits>` that provisioning
gives a real sensor from its MAC. The same seed always gives the same device.
"""

from __future__ import annotations

import hashlib
import secrets
from pathlib import Path


def mac_for_seed(seed: int) -> str:
    digest = hashlib.sha256(f"cs-sim-{seed}".encode()).digest()
    return "02" + digest[:5].hex()


def device_id_for_seed(seed: int) -> str:
    return "cs-" + mac_for_seed(seed)


SEED_FILE = ".first-seed"


def folder_seed(data_dir: Path) -> int:
    """The first seed of the devices kept in `data_dir`, chosen once and stored there.

    Devices are named by their seed, so two folders on the same seeds would run the same
    device ids twice (each VM taking the other's broker session in turn). A new folder
    draws its own range; a folder made before this file existed keeps seed 1, the ids its
    devices already have.
    """
    path = data_dir / SEED_FILE
    try:
        return int(path.read_text().strip())
    except FileNotFoundError:
        pass
    except ValueError as exc:
        raise ValueError(f"{path} must hold a whole number; delete it to draw a new one") from exc
    earlier = data_dir.is_dir() and any(data_dir.glob("cs-*"))
    seed = 1 if earlier else secrets.randbelow(10**9) + 10**6  # above any demo's 1..200
    data_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{seed}\n")
    return seed
