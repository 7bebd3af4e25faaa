"""`fleet bench ota`: a rollout to virtual devices end to end, what each device downloads,
and what checking a release signature costs on the device.

- Rollout: a fleet (SQLite, embedded broker, rollout engine, blob endpoint over HTTP) and
  `--devices` virtual devices (real firmware in the MicroPython VM, default 50) on 0.1.0; a
  signed app release 0.2.0 goes out in two waves (20 %, then the rest, no soak). Timed from
  the rollout's creation until it is completed (every device updated, self-tested, reported).
- Bytes: what the blob endpoint served (HTTP bodies, every Range request) per updated device,
  plus the offer (retained MQTT message), against the bundle's files uncompressed.
- Signature: Ed25519 verification of the release manifest by the firmware's own
  pure-MicroPython code in the VM (at the update boot's heap), and an ESP32 estimate: the VM
  time times CPU_FACTOR (the same factor `fleet bench firmware` uses for awake time).
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import select

from fleet.bench.firmware import CPU_FACTOR
from fleet.broker.embedded import free_port
from fleet.ota import bundle, signing
from fleet.ota.package import ReleaseFile

HEAP = "160K"  # docs/ota.md: the update boot needs it
VERIFY_ROUNDS = 3
TARGET = "0.2.0"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


def run(devices: int | None = None) -> dict[str, Any]:
    count = devices if devices is not None else int(os.environ.get("FLEET_BENCH_OTA_DEVICES", "50"))
    if count < 1:
        raise ValueError("the OTA benchmark needs at least one device (--devices N)")
    with tempfile.TemporaryDirectory(prefix="fleet-bench-ota-") as tmp:
        work = Path(tmp)
        key = signing.generate(work / "keys")
        release = ReleaseFile.from_built(bundle.build_app(TARGET, files=bundle.compile_app(TARGET)))
        release.sign(key)
        figures: dict[str, Any] = {
            "devices": count,
            "bundle_files_bytes": release.raw_size,
            "blob_bytes": len(release.blob),
            "compression_ratio": round(release.raw_size / len(release.blob), 2),
        }
        figures.update(_rollout(work, count, key, release))
        figures.update(_verify_in_vm(work, key, release))
        return figures


class _BlobCounter:
    """ASGI wrapper counting the bytes and requests the blob endpoint answers."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.bytes = 0
        self.requests = 0
        self._lock = threading.Lock()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not str(scope.get("path", "")).startswith("/ota/blobs/"):
            await self.app(scope, receive, send)
            return
        with self._lock:
            self.requests += 1

        async def counting(message: Message) -> None:
            if message["type"] == "http.response.body":
                with self._lock:
                    self.bytes += len(message.get("body", b""))
            await send(message)

        await self.app(scope, receive, counting)


@contextmanager
def _env(**values: str) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _wait(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"OTA benchmark: timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.25)


def _rollout(
    work: Path, count: int, key: signing.SigningKey, release: ReleaseFile
) -> dict[str, Any]:
    import uvicorn

    from fleet.access.principal import SYSTEM
    from fleet.api.app import create_app
    from fleet.core.context import build_context
    from fleet.core.settings import Settings
    from fleet.models import Device
    from fleet.models.ota import Release, Rollout, RolloutDevice
    from fleet.ota import rollout, service
    from fleet.ota.sim import write_trust
    from fleet.registry.devices import register_device
    from fleet.runtime import FleetRuntime
    from fleet.simulator import VirtualFleet

    settings = Settings(
        environment="test",
        data_dir=work / "fleet",
        database_url=f"sqlite:///{work / 'fleet.sqlite3'}",
        embedded_broker_port=0,
        health_sweep_s=2,
    )
    ctx = build_context(settings)
    runtime = FleetRuntime(ctx)
    server: uvicorn.Server | None = None
    thread: threading.Thread | None = None
    try:
        with _env(FLEET_OTA_TICK_S="0.5"):
            broker = runtime.start()
        counter = _BlobCounter(create_app(ctx, commands=runtime.ingest))
        port = free_port()
        server = uvicorn.Server(
            uvicorn.Config(counter, host="127.0.0.1", port=port, log_level="warning")
        )
        thread = threading.Thread(target=server.run, name="bench-ota-http", daemon=True)
        thread.start()
        _wait(lambda: server is not None and server.started, 30, "the HTTP server")
        if runtime.ota is None:
            raise RuntimeError("the fleet runtime did not start the rollout engine")
        runtime.ota.base_url = f"http://127.0.0.1:{port}"
        fleet = VirtualFleet(
            count,
            work / "devices",
            broker_host=broker.host,
            broker_port=broker.port,
            heapsize=HEAP,
            sample_interval_s=30,
            health_interval_s=10,
            base_seed=7000,
        )
        ids = fleet.device_ids
        with ctx.sessions.begin() as s:
            for dev in fleet:
                register_device(s, device_id=dev.device_id, report_interval_s=30)
                dev.prepare()
                write_trust(dev.device_dir, {key.kid: key.public_hex}, floor="0.1.0")

        def on(version: str) -> Callable[[], bool]:
            def check() -> bool:
                with ctx.sessions() as s:
                    rows = list(
                        s.scalars(select(Device.fw_version).where(Device.current_among(ids)))
                    )
                return len(rows) == count and all(v == version for v in rows)

            return check

        with fleet:
            _wait(on("0.1.0"), 60 + count * 2, "health from every device")
            with ctx.sessions.begin() as s:
                service.trust_key(s, SYSTEM, key.public_hex)
                row = service.publish_release(s, SYSTEM, release)
                release_id = row.id
            started = time.monotonic()
            with ctx.sessions.begin() as s:
                rid = rollout.create_rollout(
                    s,
                    SYSTEM,
                    release_id=release_id,
                    target={"all": True},
                    waves=["20%", "100%"],
                    soak_s=0,
                    failure_threshold=0.1,
                ).id
            runtime.ota.wake()

            def completed() -> bool:
                with ctx.sessions() as s:
                    r = s.get(Rollout, rid)
                    if r is not None and r.state == "paused":
                        raise RuntimeError(f"OTA benchmark: the rollout paused: {r.pause_reason}")
                    return r is not None and r.state == "completed"

            _wait(completed, 120 + count * 6, "the rollout to complete")
            rollout_s = time.monotonic() - started
            _wait(on(TARGET), 30, f"{TARGET} on every device")
        with ctx.sessions() as s:
            members = list(s.scalars(select(RolloutDevice).where(RolloutDevice.rollout_id == rid)))
            rel = s.get(Release, release_id)
            if rel is None or not members:
                raise RuntimeError("OTA benchmark: the release or its rollout is gone")
            offer = len(rollout.offer_payload(rel, members[0].job_id, "x" * 60))
        per_device = [
            (m.updated_at - m.offered_at).total_seconds()
            for m in members
            if m.state == "succeeded" and m.offered_at is not None and m.updated_at is not None
        ]
        updated = len(per_device)
        blob_per_device = counter.bytes / updated if updated else 0.0
        return {
            "rollout_s": round(rollout_s, 1),
            "devices_updated": updated,
            "device_update_p50_s": round(statistics.median(per_device), 1) if per_device else None,
            "device_update_max_s": round(max(per_device), 1) if per_device else None,
            "downloaded_bytes_per_device": round(blob_per_device),
            "range_requests_per_device": round(counter.requests / updated, 2) if updated else None,
            "offer_bytes": offer,
            "bytes_per_device_vs_files": round((blob_per_device + offer) / release.raw_size, 3),
        }
    finally:
        if server is not None:
            server.should_exit = True
        if thread is not None:
            thread.join(10)
        runtime.stop()
        ctx.close()


_VERIFY = """
import json, time
from cs.crypto import ed25519
args = json.loads(open("verify.json").read())
pk, msg, sig = (bytes.fromhex(args[k]) for k in ("pk", "msg", "sig"))
times = []
for _ in range(args["rounds"]):
    t0 = time.ticks_us()
    ed25519.verify(pk, msg, sig)
    times.append(time.ticks_diff(time.ticks_us(), t0))
print("RESULT", json.dumps(times))
"""


def _verify_in_vm(work: Path, key: signing.SigningKey, release: ReleaseFile) -> dict[str, Any]:
    import subprocess

    from fleet.simulator.build import build_firmware
    from fleet.simulator.paths import FROZEN_PATH, find_micropython

    folder = work / "verify"
    folder.mkdir()
    kid, sig = release.sigs[0]
    if kid != key.kid:
        raise RuntimeError("the release is not signed by the benchmark's key")
    args = {
        "pk": key.public_hex,
        "msg": release.manifest.hex(),
        "sig": sig,
        "rounds": VERIFY_ROUNDS,
    }
    (folder / "verify.json").write_text(json.dumps(args))
    (folder / "verify.py").write_text(_VERIFY)
    build = build_firmware(work / "build")
    env = dict(os.environ, MICROPYPATH=os.pathsep.join([str(build), FROZEN_PATH]))
    result = subprocess.run(
        [str(find_micropython()), "-X", f"heapsize={HEAP}", "verify.py"],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    line = next((x for x in result.stdout.splitlines() if x.startswith("RESULT ")), None)
    if result.returncode != 0 or line is None:
        raise RuntimeError(f"Ed25519 in the VM failed: {result.stdout}{result.stderr}")
    times_ms = [t / 1000 for t in json.loads(line[7:])]
    vm_ms = statistics.median(times_ms)
    return {
        "ed25519_verify_vm_ms": round(vm_ms, 1),
        "ed25519_verify_esp32_est_ms": round(vm_ms * CPU_FACTOR),
        "esp32_cpu_factor": CPU_FACTOR,
        "manifest_bytes": len(release.manifest),
    }
