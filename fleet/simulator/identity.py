"""Identities of virtual devices, derived from a seed.

A virtual device gets a locally administered MAC (first byte 0x02) computed
from its seed, and the device id `cs-<mac as 12 hex digits>` that provisioning
gives a real sensor from its MAC. The same seed always gives the same device.
"""

from __future__ import annotations

import hashlib


def mac_for_seed(seed: int) -> str:
    digest = hashlib.sha256(f"cs-sim-{seed}".encode()).digest()
    return "02" + digest[:5].hex()


def device_id_for_seed(seed: int) -> str:
    return "cs-" + mac_for_seed(seed)
