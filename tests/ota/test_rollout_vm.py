"""Rollouts end to end: the fleet's engine, blob endpoint and ingest, real firmware in VMs.

(a) a release that crashes on boot is rolled back on the canary and the rollout pauses there;
(b) a rollout where a share of devices fails pauses before its next wave; with the fault
cleared and the rollout resumed, every unpinned device ends on the target version;
(c) a battery device takes the update at its next uplink wake and settles the new version
before it deep-sleeps again.
FLEET_OTA_VM_DEVICES sets (b)'s size (default 50, the smallest the acceptance asks for).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from fleet.access.principal import SYSTEM
from fleet.core.context import FleetContext, build_context
from fleet.core.settings import Settings
from fleet.models import Device
from fleet.models.ota import Rollout, RolloutDevice
from fleet.ota import bundle, rollout, service, signing
from fleet.ota.package import ReleaseFile
from fleet.ota.sim import write_trust
from fleet.registry.devices import register_device
from fleet.simulator import VirtualDevice, VirtualFleet
from tests.firmware.conftest import wait_until
from tests.fleet.server import RunningFleet, running_fleet

pytestmark = pytest.mark.vm

HEAP = "160K"  # docs/ota.md: the update boot needs it
CRASH = 'raise RuntimeError("this release crashes at import")\n'
MANY = int(os.environ.get("FLEET_OTA_VM_DEVICES", "50"))


@pytest.fixture(scope="module")
def key(tmp_path_factory: pytest.TempPathFactory) -> signing.SigningKey:
    return signing.generate(tmp_path_factory.mktemp("keys"))


@pytest.fixture(scope="module")
def releases(key: signing.SigningKey) -> dict[str, ReleaseFile]:
    out = {}
    for version, patch in (("0.2.0", None), ("0.3.0", {"cs/app.py": CRASH})):
        rel = ReleaseFile.from_built(
            bundle.build_app(version, files=bundle.compile_app(version, patch=patch))
        )
        rel.sign(key)
        out[version] = rel
    return out


@pytest.fixture
def fleet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[RunningFleet]:
    monkeypatch.setenv("FLEET_OTA_TICK_S", "0.5")
    settings = Settings(
        environment="test",
        data_dir=tmp_path / "fleet",
        database_url=f"sqlite:///{tmp_path / 'fleet.sqlite3'}",
        embedded_broker_port=0,
        health_sweep_s=2,
    )
    ctx: FleetContext = build_context(settings)
    try:
        with running_fleet(ctx) as running:
            if running.runtime.ota is None:
                raise RuntimeError("the fleet runtime did not start the rollout engine")
            running.runtime.ota.base_url = running.base_url
            yield running
    finally:
        ctx.close()


def _devices(
    fleet: RunningFleet, tmp: Path, n: int, key: signing.SigningKey, seed: int
) -> VirtualFleet:
    devices = VirtualFleet(
        n,
        tmp / "devices",
        broker_host=fleet.broker.host,
        broker_port=fleet.broker.port,
        heapsize=HEAP,
        # Mostly idle between updates: 50 VMs share 2 cores with the fleet. Health every
        # 10 s is what judges updated devices; a boot sends one at once.
        sample_interval_s=30,
        health_interval_s=10,
        base_seed=seed,
    )
    with fleet.ctx.sessions.begin() as s:
        for dev in devices:
            register_device(s, device_id=dev.device_id, report_interval_s=30)
            dev.prepare()
            write_trust(dev.device_dir, {key.kid: key.public_hex}, floor="0.1.0")
    return devices


def _publish(fleet: RunningFleet, key: signing.SigningKey, release: ReleaseFile, **kw: Any) -> int:
    with fleet.ctx.sessions.begin() as s:
        service.trust_key(s, SYSTEM, key.public_hex)
        row = service.publish_release(s, SYSTEM, release)
        r = rollout.create_rollout(s, SYSTEM, release_id=row.id, target={"all": True}, **kw)
        return r.id


def _all_on(fleet: RunningFleet, ids: list[str], version: str) -> Callable[[], bool]:
    def check() -> bool:
        with fleet.ctx.sessions() as s:
            rows = s.execute(select(Device.fw_version).where(Device.device_id.in_(ids))).scalars()
            return all(v == version for v in rows)

    return check


def _rollout(fleet: RunningFleet, rid: int) -> tuple[Rollout, dict[str, RolloutDevice]]:
    with fleet.ctx.sessions() as s:
        r = s.get(Rollout, rid)
        if r is None:
            raise LookupError(rid)
        members = {
            d: m
            for m, d in s.execute(
                select(RolloutDevice, Device.device_id)
                .join(Device)
                .where(RolloutDevice.rollout_id == rid)
            )
        }
        s.expunge_all()
        return r, members


def test_a_release_crashing_at_boot_pauses_the_rollout_at_its_canary(
    fleet: RunningFleet, tmp_path: Path, key: signing.SigningKey, releases: dict[str, ReleaseFile]
) -> None:
    devices = _devices(fleet, tmp_path, 4, key, seed=300)
    with devices:
        wait_until(_all_on(fleet, devices.device_ids, "0.1.0"), 60, "health from every device")
        rid = _publish(
            fleet, key, releases["0.3.0"], waves=[2, "100%"], soak_s=0, failure_threshold=0.0
        )

        def paused() -> Rollout | None:
            r, _ = _rollout(fleet, rid)
            return r if r.state == "paused" else None

        r = wait_until(paused, 150, "the rollout to pause itself")
        assert r.wave == 0 and r.pause_reason is not None and "crashed" in r.pause_reason
        _, members = _rollout(fleet, rid)
        assert len(members) == 2  # only the canary was offered the release
        failed = [m for m in members.values() if m.state == "failed"]
        assert failed and all("crashed" in (m.reason or "") for m in failed)
        # Undone on the canary: every device still reports the old version.
        wait_until(_all_on(fleet, devices.device_ids, "0.1.0"), 30, "0.1.0 everywhere")

        def canary_states() -> list[str] | None:
            # Each canary reports its outcome a couple of seconds after coming back online.
            with fleet.ctx.sessions() as s:
                dev = next(iter(members))
                canary = s.scalars(select(Device).where(Device.device_id == dev)).one()
                states = [e.state for e in service.history(s, canary)]
            return states if "failed" in states else None

        states = wait_until(canary_states, 30, "the canary's failure in its update history")
        assert "rebooting" in states  # its update history is kept


def test_a_rollout_pauses_on_failures_and_finishes_after_resume(
    fleet: RunningFleet, tmp_path: Path, key: signing.SigningKey, releases: dict[str, ReleaseFile]
) -> None:
    devices = _devices(fleet, tmp_path, MANY, key, seed=400)
    ids = devices.device_ids
    pinned = ids[-1]
    # A fifth of the devices lose their sensor: the self-test fails and the app is undone.
    # Every fifth from the first, so the first wave (the lowest ids) holds its share of them.
    faulty = [d for i, d in enumerate(devices) if i % 5 == 0 and d.device_id != pinned]
    for dev in faulty:
        dev.set_faults({"sht4x": "nack"})
    with fleet.ctx.sessions.begin() as s:
        service.pin(s, SYSTEM, pinned, "0.1.0", "held for a site survey")
    with devices:
        wait_until(_all_on(fleet, ids, "0.1.0"), 120, "health from every device")
        rid = _publish(
            fleet,
            key,
            releases["0.2.0"],
            waves=["20%", "100%"],
            soak_s=1,
            failure_threshold=0.1,
        )

        def paused() -> Rollout | None:
            r, _ = _rollout(fleet, rid)
            return r if r.state == "paused" else None

        try:
            r = wait_until(paused, 240, "the rollout to pause on failures")
        except AssertionError:
            print({d: (m.state, m.reason) for d, m in _rollout(fleet, rid)[1].items()})
            for dev in faulty:
                print(dev.device_id, dev.log_path.read_text()[-1500:])
            raise
        assert r.wave == 0, "paused before the next wave"
        assert r.pause_reason is not None and "updates failed" in r.pause_reason
        _, members = _rollout(fleet, rid)
        assert len(members) <= len(ids) // 5 + 1
        for dev in faulty:
            dev.set_faults({})
        with fleet.ctx.sessions.begin() as s:
            rollout.resume(s, SYSTEM, s.get(Rollout, rid) or Rollout())
        unpinned = [d for d in ids if d != pinned]
        wait_until(_all_on(fleet, unpinned, "0.2.0"), 600, "0.2.0 on every unpinned device")
        wait_until(lambda: _rollout(fleet, rid)[0].state == "completed", 60, "completion")
        with fleet.ctx.sessions() as s:
            assert (
                s.scalars(select(Device.fw_version).where(Device.device_id == pinned)).one()
                == "0.1.0"
            )
        _, members = _rollout(fleet, rid)
        assert pinned not in members


BATTERY_BOARD = "firebeetle-sht41-ds18b20-2aa"


def test_a_battery_device_updates_at_its_next_uplink_wake(
    fleet: RunningFleet, tmp_path: Path, key: signing.SigningKey, releases: dict[str, ReleaseFile]
) -> None:
    # Samples every 15 min, an uplink every 4th wake, time 300x: a wake every 3 s, an uplink
    # every 12 s. The room clock starts a day back so readings never run into the future.
    dev = VirtualDevice(
        data_dir=tmp_path / "devices",
        seed=500,
        board=BATTERY_BOARD,
        broker_host=fleet.broker.host,
        broker_port=fleet.broker.port,
        heapsize=HEAP,
        sample_interval_s=900,
        health_interval_s=3600,
        time_scale=300,
        clock_start=time.time() - 86400,
        config={"uplink_every": 4, "rh_uplink_above": 101},
    )
    with fleet.ctx.sessions.begin() as s:
        register_device(s, device_id=dev.device_id, report_interval_s=3600)
    dev.prepare()
    write_trust(dev.device_dir, {key.kid: key.public_hex}, floor="0.1.0")
    with dev:
        wait_until(_all_on(fleet, [dev.device_id], "0.1.0"), 60, "the first uplink")
        # Asleep (a wake has ended) when the rollout starts: the offer waits for an uplink.
        wait_until(lambda: dev.log_path.read_text().count("] sleep ") >= 2, 30, "a deep sleep")
        before = len(dev.log_path.read_text())
        rid = _publish(fleet, key, releases["0.2.0"], waves=["100%"], soak_s=0, failure_threshold=0)

        def settled_and_asleep() -> bool:
            after = dev.log_path.read_text()[before:]
            return "uplink: fw 0.2.0 reset deep_sleep" in after

        try:
            wait_until(settled_and_asleep, 120, "0.2.0 confirmed and back to its sleep cycle")
            wait_until(_all_on(fleet, [dev.device_id], "0.2.0"), 30, "0.2.0 in the fleet")
            wait_until(lambda: _rollout(fleet, rid)[0].state == "completed", 30, "completion")
        except AssertionError:
            print(dev.log_path.read_text()[before:][-4000:])
            raise
    log = dev.log_path.read_text()[before:]
    taken = log.index("ota: offer ")
    # Taken during an uplink wake, and at the first uplink since the rollout began (an
    # uplink already under way when the offer went out may take it too).
    assert log[:taken].count("uplink: fw 0.1.0") <= 1, log[:taken]
    last_uplink = log.rfind("uplink: fw 0.1.0", 0, taken)
    assert "] sleep " not in log[last_uplink if last_uplink >= 0 else 0 : taken]
    # From the first boot of 0.2.0 (an uplink: the trial must reach the broker) until its
    # self-test passed: no deep sleep.
    trial = log.index("uplink: fw 0.2.0 reset ota")
    settled = log.index("ota: succeeded", trial)
    assert "] sleep " not in log[trial:settled]
    assert "ota: verifying" in log[trial:settled]
    assert "undoing" not in log
    _, members = _rollout(fleet, rid)
    assert [m.state for m in members.values()] == ["succeeded"]
