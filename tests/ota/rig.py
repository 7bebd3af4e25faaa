"""A test rig for device-side updates: release builder, a range-serving blob server and a
retained offer publisher, so firmware behaviour is tested without the fleet service."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

from fleet.ota.bundle import Built
from fleet.ota.signing import SigningKey
from fleet.ota.sim import write_trust
from fleet.simulator.device import VirtualDevice
from tests.firmware.conftest import Subscriber, wait_until


@dataclass
class BlobServer:
    """Serves blobs by name with HTTP Range, as the fleet's blob endpoint does."""

    blobs: dict[str, bytes] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    port: int = 0

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/blobs/{name}"


@contextmanager
def blob_server() -> Iterator[BlobServer]:
    state = BlobServer()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            name = self.path.rsplit("/", 1)[-1]
            state.requests.append(self.headers.get("Range", ""))
            blob = state.blobs.get(name)
            if blob is None:
                self.send_error(404)
                return
            spec = self.headers.get("Range", "bytes=0-").split("=", 1)[1]
            first, _, last = spec.partition("-")
            start = int(first)
            end = min(int(last) if last else len(blob) - 1, len(blob) - 1)
            if start >= len(blob):
                self.send_error(416)
                return
            body = blob[start : end + 1]
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{end}/{len(blob)}")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def offer(built: Built, key: SigningKey | None, url: str, job_id: str) -> dict[str, Any]:
    info = built.info
    return {
        "sv": 1,
        "id": job_id,
        "kind": info["kind"],
        "version": info["version"],
        "manifest": built.manifest.decode(),
        "sigs": [key.sign(built.manifest)] if key else [],
        "url": url,
    }


def publish_retained(host: str, port: int, topic: str, payload: bytes) -> None:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    client.connect(host, port)
    client.loop_start()
    try:
        client.publish(topic, payload, qos=1, retain=True).wait_for_publish(10)
    finally:
        client.loop_stop()
        client.disconnect()


def progress(messages: list[Any]) -> list[dict[str, Any]]:
    return [json.loads(m.payload) for m in messages]


def trusting_device(
    tmp: Path,
    host: str,
    port: int,
    key: SigningKey,
    name: str,
    *,
    heapsize: str,
    build: Path | None = None,
    cut: int | None = None,
) -> VirtualDevice:
    """A prepared VM device that trusts `key` (floor 0.1.0); `cut` powers it off before that
    flash write."""
    dev = VirtualDevice(
        device_id=name,
        data_dir=tmp,
        broker_host=host,
        broker_port=port,
        sample_interval_s=5,
        health_interval_s=2,
        heapsize=heapsize,
        build_dir=build,
        faults={"power_cut_at_write": cut} if cut else {},
    )
    dev.prepare()
    write_trust(dev.device_dir, {key.kid: key.public_hex}, floor="0.1.0")
    return dev


def offer_until(
    dev: VirtualDevice,
    host: str,
    port: int,
    built: Built,
    key: SigningKey,
    blobs: BlobServer,
    sub: Subscriber,
    finished: Callable[[dict[str, Any]], bool],
    what: str,
) -> list[dict[str, Any]]:
    """Offer `built` (retained, served by `blobs`) and run `dev` until one of its progress
    reports is `finished`; returns every report. The device is stopped and the offer cleared."""
    topic = f"cs/v1/d/{dev.device_id}/ota"
    blobs.blobs[dev.device_id] = built.blob
    body = offer(built, key, blobs.url(dev.device_id), f"job-{dev.device_id}")
    dev.start()
    try:
        publish_retained(host, port, topic, json.dumps(body).encode())

        def reports() -> list[dict[str, Any]] | None:
            out = [json.loads(m.payload) for m in sub.on(topic + "/progress")]
            return out if any(map(finished, out)) else None

        return list(wait_until(reports, 120, f"{dev.device_id} to {what}"))
    finally:
        dev.stop()
        publish_retained(host, port, topic, b"")


def flash_writes(dev: VirtualDevice) -> int:
    """How many flash writes the simulated board has made since its folder was made."""
    path = dev.device_dir / ".sim_flash_count"
    return int(path.read_text()) if path.exists() else 0
