"""App-bundle updates on virtual devices (real firmware in the VM, real Mosquitto)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from fleet.ota import bundle, signing
from fleet.ota.sim import read_files, write_trust
from fleet.simulator.device import VirtualDevice
from tests.contracts.schemas import schema_for_topic_leaf
from tests.firmware.conftest import Broker, Subscriber, wait_until
from tests.ota.rig import (
    BlobServer,
    blob_server,
    offer,
    progress,
    publish_retained,
    trusting_device,
)
from tests.sim.fleetsink import RestartableBroker

pytestmark = pytest.mark.vm

MAX_TRIAL_BOOTS = 3  # firmware/cs/ota/__init__.py
HEAP = "160K"  # see docs/ota.md: the stock node peaks within 3 KB of a 128K heap
CRASH = 'raise RuntimeError("this release crashes at import")\n'


@pytest.fixture(scope="module")
def releases() -> dict[str, bundle.Built]:
    files = {v: bundle.compile_app(v) for v in ("0.2.0", "0.0.5")}
    crashing = bundle.compile_app("0.3.0", patch={"cs/app.py": CRASH})
    return {
        "0.2.0": bundle.build_app("0.2.0", files=files["0.2.0"]),
        "0.0.5": bundle.build_app("0.0.5", files=files["0.0.5"]),
        "0.3.0": bundle.build_app("0.3.0", files=crashing),
    }


@pytest.fixture(scope="module")
def key(tmp_path_factory: pytest.TempPathFactory) -> signing.SigningKey:
    return signing.generate(tmp_path_factory.mktemp("keys"))


@pytest.fixture
def blobs() -> Iterator[BlobServer]:
    with blob_server() as server:
        yield server


class Rig:
    def __init__(
        self,
        tmp: Path,
        broker: Broker,
        sub: Callable[..., Subscriber],
        key: signing.SigningKey,
        blobs: BlobServer,
    ) -> None:
        self.broker = broker
        self.key = key
        self.blobs = blobs
        self.dev = trusting_device(
            tmp, broker.host, broker.port, key, "cs-ota-test-01", heapsize=HEAP
        )
        base = f"cs/v1/d/{self.dev.device_id}/"
        self.sub = sub(base + "ota/progress", base + "health")
        self.topic = base + "ota"

    def offer(
        self,
        built: bundle.Built,
        job: str,
        *,
        blob: bytes | None = None,
        key: signing.SigningKey | None = None,
    ) -> None:
        self.blobs.blobs[job] = built.blob if blob is None else blob
        body = offer(built, key or self.key, self.blobs.url(job), job)
        if key is None:
            schema_for_topic_leaf("ota").validate(body)
        publish_retained(self.broker.host, self.broker.port, self.topic, json.dumps(body).encode())

    def reports(self, job: str) -> list[dict[str, Any]]:
        return [p for p in progress(self.sub.on(self.topic + "/progress")) if p.get("id") == job]

    def outcome(self, job: str, timeout: float = 60) -> dict[str, Any]:
        def final() -> dict[str, Any] | None:
            done = [p for p in self.reports(job) if p["state"] in ("succeeded", "failed")]
            return done[-1] if done else None

        return dict(wait_until(final, timeout, f"an outcome for {job}"))

    def running_version(self, timeout: float = 30) -> str:
        """fw_version from a health pack published after this call."""
        seen = len(self.sub.on(self.topic.replace("/ota", "/health")))

        def newer() -> str | None:
            packs = self.sub.on(self.topic.replace("/ota", "/health"))[seen:]
            for m in packs:
                for rec in json.loads(m.payload):
                    if rec.get("n") == "fw_version":
                        return str(rec["vs"])
            return None

        return str(wait_until(newer, timeout, "a health pack"))


@pytest.fixture
def rig(
    tmp_path: Path,
    test_broker: Broker,
    subscriber: Callable[..., Subscriber],
    key: signing.SigningKey,
    blobs: BlobServer,
) -> Iterator[Rig]:
    r = Rig(tmp_path, test_broker, subscriber, key, blobs)
    yield r
    r.dev.stop()
    publish_retained(test_broker.host, test_broker.port, r.topic, b"")


def test_app_update_installs_after_a_self_test(rig: Rig, releases: dict[str, bundle.Built]) -> None:
    rig.dev.start()
    assert rig.running_version() == "0.1.0"
    rig.offer(releases["0.2.0"], "job-ok")
    result = rig.outcome("job-ok")
    assert result["state"] == "succeeded", result
    assert result["app"] == "0.2.0"
    states = [p["state"] + ("/" + p["step"] if "step" in p else "") for p in rig.reports("job-ok")]
    assert states.index("downloading") < states.index("installing") < states.index("rebooting")
    assert (
        states.index("rebooting") < states.index("verifying/self-test") < states.index("succeeded")
    )
    assert rig.running_version() == "0.2.0"
    progress_schema = schema_for_topic_leaf("ota/progress")
    for report in rig.reports("job-ok"):
        progress_schema.validate(report)
    # Chunked ranges, not one request for the lot.
    assert len([r for r in rig.blobs.requests if r]) >= 2 or len(releases["0.2.0"].blob) <= 16384
    rig.dev.stop()
    files = read_files(rig.dev.device_dir)
    assert files["ota/app"]["cur"] == "apps/0.2.0" and "trial" not in files["ota/app"]
    assert files["apps"] == ["0.2.0"]


@pytest.mark.parametrize(
    "case",
    ["bad-signature", "untrusted-key", "tampered", "truncated", "below-floor", "unsigned"],
)
def test_bad_releases_are_refused_with_a_reason(
    rig: Rig, releases: dict[str, bundle.Built], case: str, tmp_path: Path
) -> None:
    built = releases["0.2.0"]
    blob = None
    key = None
    if case == "bad-signature":
        built = bundle.Built(built.manifest.replace(b'"0.2.0"', b'"0.2.1"'), built.blob, 0)
        key = _ForgedKey(rig.key)
    elif case == "untrusted-key":
        key = signing.generate(tmp_path / "other")
    elif case == "tampered":
        blob = bytearray(built.blob)
        blob[len(blob) // 2] ^= 0xFF
        blob = bytes(blob)
    elif case == "truncated":
        blob = built.blob[: len(built.blob) - 100]
    elif case == "below-floor":
        built = releases["0.0.5"]
    rig.dev.start()
    assert rig.running_version() == "0.1.0"
    if case == "unsigned":
        rig.blobs.blobs["job"] = built.blob
        body = offer(built, None, rig.blobs.url("job"), "job")
        publish_retained(rig.broker.host, rig.broker.port, rig.topic, json.dumps(body).encode())
    else:
        rig.offer(built, "job", blob=blob, key=key)
    result = rig.outcome("job")
    assert result["state"] == "failed"
    expected = {
        "bad-signature": "bad signature",
        "untrusted-key": "no trusted key",
        "tampered": "does not match the signed SHA-256",
        "truncated": "truncated",
        "below-floor": "below the minimum allowed",
        "unsigned": "unsigned",
    }[case]
    assert expected in result["reason"], result
    assert rig.running_version() == "0.1.0"  # still running, still the old version


class _ForgedKey(signing.SigningKey):
    """Signs with the trusted key id but over different bytes: a signature that does not match."""

    def __init__(self, real: signing.SigningKey) -> None:
        super().__init__(real.kid, real.private)

    def sign(self, data: bytes) -> list[str]:
        return [self.kid, self.private.sign(data + b" ").hex()]


def test_a_release_that_crashes_at_boot_is_undone(
    rig: Rig, releases: dict[str, bundle.Built]
) -> None:
    rig.dev.start()
    assert rig.running_version() == "0.1.0"
    rig.offer(releases["0.3.0"], "job-crash")
    result = rig.outcome("job-crash", timeout=90)
    assert result["state"] == "failed"
    assert "crashed" in result["reason"]
    assert result["app"] == "0.1.0"
    assert rig.running_version() == "0.1.0"
    # The retained offer is still there; the device must not loop installing it again.
    assert [p["state"] for p in rig.reports("job-crash")].count("installing") == 1


def test_a_battery_trial_without_the_broker_resets_instead_of_sleeping(
    tmp_path: Path,
    micropython_bin: Path,
    key: signing.SigningKey,
    releases: dict[str, bundle.Built],
    blobs: BlobServer,
) -> None:
    """The broker goes away once the offer is taken: the update itself comes over HTTP, but
    the trial cannot pass its self-test. It must never deep-sleep on the unvalidated app:
    each trial wake resets, and after MAX_TRIAL_BOOTS the app is undone."""
    broker = RestartableBroker(tmp_path / "broker")
    broker.start()
    dev = VirtualDevice(
        data_dir=tmp_path,
        seed=501,
        board="firebeetle-sht41-ds18b20-2aa",
        broker_port=broker.port,
        heapsize=HEAP,
        sample_interval_s=900,
        health_interval_s=3600,
        time_scale=300,
        clock_start=time.time() - 86400,
        config={"uplink_every": 4, "rh_uplink_above": 101},
    )
    dev.prepare()
    write_trust(dev.device_dir, {key.kid: key.public_hex}, floor="0.1.0")
    try:
        dev.start()
        wait_until(lambda: "] sleep " in dev.log_path.read_text(), 30, "the first sleep")
        blobs.blobs["job-b1"] = releases["0.2.0"].blob
        body = offer(releases["0.2.0"], key, blobs.url("job-b1"), "job-b1")
        publish_retained(
            broker.host, broker.port, f"cs/v1/d/{dev.device_id}/ota", json.dumps(body).encode()
        )
        wait_until(lambda: "accepted; restarting" in dev.log_path.read_text(), 60, "the offer")
        broker.stop()

        def asleep_after_undo() -> bool:
            log = dev.log_path.read_text()
            return "undoing app 0.2.0" in log and "] sleep " in log.split("undoing app 0.2.0")[1]

        wait_until(asleep_after_undo, 90, "the trial undone and the node asleep again")
    finally:
        dev.stop()
        broker.stop()
    log = dev.log_path.read_text()
    trial = log[log.index("uplink: fw 0.2.0 reset ota") : log.index("undoing app 0.2.0")]
    assert "] sleep " not in trial
    assert trial.count("trial not settled: reset instead of sleep") == MAX_TRIAL_BOOTS
    assert read_files(dev.device_dir, ("ota/refused",))["ota/refused"] == ["job-b1"]
