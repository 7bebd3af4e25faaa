"""Power cut at any step of a firmware-image update: every boot runs a verified image that is
either the factory one or exactly the signed new one, the device reports the image it runs,
and it ends on the new image, marked valid.

Steps covered (sim.json {"faults": {"power_cut_at_write": N}}, counted across boots by the
simulated flash): each littlefs write of the intake and the update boot (ota/job.json,
ota/dl.json, ota/image.json), each slot block written, set_boot(), the reset into the new
image, the trial boot's writes before and after mark_app_valid_cancel_rollback(), and that
call itself. The default run cuts at every write outside the download and at evenly spaced
download writes; FLEET_OTA_CUT_STRIDE=1 cuts at every single write.

A cut during the new image's trial makes the bootloader roll it back, as ESP-IDF does; the
loader then takes the retained offer again instead of refusing the job, a few times at most.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from fleet.ota import bundle, signing
from fleet.ota.image import build_image
from fleet.simulator.build import build_firmware
from fleet.simulator.device import VirtualDevice
from tests.firmware.conftest import Broker, Subscriber
from tests.ota.rig import BlobServer, blob_server, flash_writes, offer_until, trusting_device

pytestmark = pytest.mark.vm

HEAP = "160K"
NEW = "1.30.0"
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
    release: bundle.Built,
    key: signing.SigningKey,
    blobs: BlobServer,
    sub: Subscriber,
) -> list[dict[str, Any]]:
    """Offer the image, wait for the device to report it succeeded; all its reports."""
    return offer_until(
        dev,
        broker.host,
        broker.port,
        release,
        key,
        blobs,
        sub,
        lambda p: p["state"] == "succeeded" and p.get("image") == NEW,
        f"run image {NEW}",
    )


def _boots(dev: VirtualDevice) -> list[list[str]]:
    """[slot, version, project, sha256] of every boot that chose a slot."""
    path = dev.device_dir / "sim_boot.log"
    return [line.split() for line in path.read_text().splitlines()] if path.exists() else []


def _plan(log: str) -> tuple[list[int], set[int]]:
    """Cut points from a baseline sim_flash.log: each slot block, set_boot(), marking valid,
    the first write after every reset, every write of the new image's trial boot up to being
    marked valid, and the first and last write of every other run of filesystem writes."""
    boots: list[list[tuple[int, str]]] = []
    for line in log.splitlines():
        n, what = line.split(" ", 1)
        if what == "boot":
            boots.append([])
        else:
            boots[-1].append((int(n), what))
    # boots: [provisioning, node takes the offer, update boot, the new image's first boot]
    assert len(boots) == 4, f"expected four boots in the baseline, got {len(boots)}"
    writes = [w for boot in boots[1:] for w in boot]
    stride = int(os.environ.get("FLEET_OTA_CUT_STRIDE", "0"))
    trial = boots[3]
    valid = next(n for n, what in trial if what.startswith("otadata valid"))
    trial_cuts = {n for n, _ in trial if n <= valid}
    if stride:
        return [n for n, _ in writes][::stride], trial_cuts
    points = {n for n, what in writes if not what.startswith(("prog", "erase"))}
    points |= trial_cuts
    for boot in boots[1:]:
        run: list[int] = []
        for n, what in [*boot, (0, "end")]:
            if what.startswith(("prog", "erase")):
                run.append(n)
            elif run:
                points |= {run[0], run[-1]}
                run = []
    return sorted(points), trial_cuts


def test_power_cut_at_any_step_of_an_image_update(
    tmp_path: Path, test_broker: Broker, subscriber: Callable[..., Subscriber]
) -> None:
    key = signing.generate(tmp_path / "keys")
    image = build_image(NEW, payload=bytes(range(256)) * 64)
    release = bundle.build_image_release(image)
    signed = image[-32:].hex()  # the image's appended SHA-256, inside the signed blob
    build = build_firmware(tmp_path / ".build")
    sub = subscriber("cs/v1/d/+/ota/progress")
    with blob_server() as blobs:
        base = _device(tmp_path / "base", test_broker, key, "cs-icut-base", build, None)
        _update(base, test_broker, release, key, blobs, sub)
        plan, trial = _plan((base.device_dir / "sim_flash.log").read_text())
        assert len(plan) >= 15
        beyond: list[int] = []

        def one(n: int) -> tuple[int, str | None]:
            dev = _device(tmp_path / "cuts", test_broker, key, f"cs-icut-{n:04d}", build, n)
            try:
                reports = _update(dev, test_broker, release, key, blobs, sub)
            except AssertionError as e:
                return n, f"never finished: {e}\n{dev.log_path.read_text()[-2500:]}"
            if f"power cut at flash write {n} " not in dev.log_path.read_text():
                # How many writes a run makes depends on timing (readings queued meanwhile,
                # before the update and in the trial boot), so the points planned from the
                # baseline shift; a point past this run's last write lay after its update had
                # succeeded, so it is not part of the update.
                if flash_writes(dev) < n:
                    beyond.append(n)
                    return n, None
                return n, f"the power cut did not happen ({flash_writes(dev)} writes)"
            boots = _boots(dev)
            bad = [b for b in boots if b[2] != "factory" and (b[1], b[3]) != (NEW, signed)]
            if bad or not boots or boots[-1][1] != NEW:
                return n, f"booted {boots}"
            told = {p.get("image") for p in reports}
            if not told <= {"", NEW}:
                return n, f"reported images {told}"
            return n, None

        with ThreadPoolExecutor(PARALLEL) as pool:
            failures = [(n, why) for n, why in pool.map(one, plan) if why]
    assert not failures, failures
    # The shift is a few writes: only the last points, the trial boot's, can fall past the end.
    assert len(beyond) <= len(trial) // 2, f"many cuts came after success: {beyond} of {plan}"


ROLLBACK_SCRIPT = """
import json, os
from cs.ota import files, loader

class Board:  # the old slot runs again: the bootloader rolled the image back
    def running_slot(self):
        return "ota_0"

def rolled_back(cause, job):
    files.makedirs("fs/ota")
    files.remove("fs/ota/report.json")
    trial = {"id": job, "ver": "1.30.0", "slot": "ota_1", "state": "booted"}
    files.write_json("fs/ota/image.json", trial)
    loader._image_boot(Board(), "fs/", cause)
    print("RESULT", json.dumps({
        "trial": files.exists("fs/ota/image.json"),
        "refused": files.refused("fs/", job),
        "cuts": files.read_json("fs/ota/cuts.json"),
        "report": files.read_json("fs/ota/report.json"),
    }))

for cause, job in CAUSES:
    rolled_back(cause, job)
"""


def test_rollbacks_after_power_cuts_retry_a_few_times_then_refuse(vm: Any) -> None:
    # Four power cuts in job-1's trial, then a reset that is not a power cut in job-2's.
    causes = [("power_on", "job-1")] * 4 + [("hard", "job-2")]
    out = vm.run(ROLLBACK_SCRIPT.replace("CAUSES", repr(causes)))
    results = vm.results(out)
    for n, r in enumerate(results[:3], start=1):
        assert r == {
            "trial": False,
            "refused": False,
            "cuts": {"id": "job-1", "n": n},
            "report": None,
        }
    for r in results[3:]:
        assert r["refused"] and not r["trial"] and r["cuts"] is None
        assert r["report"]["state"] == "failed"
        assert "rolled back by the bootloader" in r["report"]["reason"]
    assert "rolled back after a power cut; taking the offer again" in out
