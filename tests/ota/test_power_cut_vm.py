"""Power cut at any flash write of an app-bundle update: the device always boots a valid,
signed version, reports it, and ends on the new one (the offer stays retained).

The simulated flash counts every littlefs block program/erase (and OTA-slot write) across
the device's boots; sim.json {"faults": {"power_cut_at_write": N}} kills the VM just before
write N. A baseline update tells how many writes there are and which boot makes them; the
default run cuts at every write of the intake, the pointer swap and the trial boot, and at
evenly spaced writes of the download and unpacking. FLEET_OTA_CUT_STRIDE=1 cuts at every
single write (about a thousand VM runs).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from fleet.ota import bundle, signing
from fleet.simulator.build import build_firmware
from fleet.simulator.device import VirtualDevice
from tests.firmware.conftest import Broker, Subscriber
from tests.ota.rig import BlobServer, blob_server, flash_writes, offer_until, trusting_device

pytestmark = pytest.mark.vm

HEAP = "160K"
GOOD = {"0.1.0", "0.2.0"}
PARALLEL = 4


def _device(
    tmp: Path, broker: Broker, key: signing.SigningKey, name: str, build: Path, cut: int | None
) -> VirtualDevice:
    return trusting_device(
        tmp, broker.host, broker.port, key, name, heapsize=HEAP, build=build, cut=cut
    )


def _update(
    dev: VirtualDevice,
    broker: Broker,
    built: bundle.Built,
    key: signing.SigningKey,
    blobs: BlobServer,
    sub: Subscriber,
) -> None:
    offer_until(
        dev,
        broker.host,
        broker.port,
        built,
        key,
        blobs,
        sub,
        lambda p: p["state"] == "succeeded" and p.get("app") == "0.2.0",
        "finish its update",
    )


def _boot_versions(dev: VirtualDevice) -> list[str]:
    return re.findall(r"boot: fw (\S+)", dev.log_path.read_text())


def _health_versions(sub: Subscriber, device_id: str) -> set[str]:
    out = set()
    for m in sub.on(f"cs/v1/d/{device_id}/health"):
        for rec in json.loads(m.payload):
            if rec.get("n") == "fw_version":
                out.add(rec["vs"])
    return out


def _plan(log: str) -> tuple[list[int], set[int]]:
    """Cut points from a baseline sim_flash.log, dense where pointers and state change, and
    which of them fall in the trial boot."""
    boots: list[list[int]] = []
    for line in log.splitlines():
        n, what = line.split(" ", 1)
        if what == "boot":
            boots.append([])
        else:
            boots[-1].append(int(n))
    # boots: [provisioning, node takes the offer, update boot, trial boot]
    _, intake, update, trial = boots[0], boots[1], boots[2], boots[-1]
    stride = int(os.environ.get("FLEET_OTA_CUT_STRIDE", "0")) or max(1, len(update) // 12)
    points = set(intake) | set(trial) | set(update[-10:]) | set(update[::stride])
    return sorted(points), set(trial)


def test_power_cut_at_any_write_keeps_a_valid_version(
    tmp_path: Path, test_broker: Broker, subscriber: Callable[..., Subscriber]
) -> None:
    key = signing.generate(tmp_path / "keys")
    built = bundle.build_app("0.2.0")
    build = build_firmware(tmp_path / ".build")
    sub = subscriber("cs/v1/d/+/ota/progress", "cs/v1/d/+/health")
    with blob_server() as blobs:
        base = _device(tmp_path / "base", test_broker, key, "cs-cut-base", build, None)
        _update(base, test_broker, built, key, blobs, sub)
        plan, trial = _plan((base.device_dir / "sim_flash.log").read_text())
        assert len(plan) >= 20
        beyond: list[int] = []

        def one(n: int) -> tuple[int, str | None]:
            dev = _device(tmp_path / "cuts", test_broker, key, f"cs-cut-{n:04d}", build, n)
            try:
                _update(dev, test_broker, built, key, blobs, sub)
            except AssertionError as e:
                return n, f"never finished: {e}\n{dev.log_path.read_text()[-1500:]}"
            log = dev.log_path.read_text()
            if f"power cut at flash write {n} " not in log:
                # How many writes a run makes depends on timing (readings queued meanwhile,
                # before the update and in the trial boot), so the points planned from the
                # baseline shift; a point past this run's last write lay after its update had
                # succeeded, so it is not part of the update.
                if flash_writes(dev) < n:
                    beyond.append(n)
                    return n, None
                return n, f"the power cut did not happen ({flash_writes(dev)} writes)"
            bad = [v for v in _boot_versions(dev) if v not in GOOD]
            bad += sorted(_health_versions(sub, dev.device_id) - GOOD)
            return n, f"ran or reported {bad}" if bad else None

        with ThreadPoolExecutor(PARALLEL) as pool:
            failures = [(n, why) for n, why in pool.map(one, plan) if why]
    assert not failures, failures
    # The shift is a few writes: only the last points, the trial boot's, can fall past the end.
    assert len(beyond) <= len(trial) // 2, f"many cuts came after success: {beyond} of {plan}"
