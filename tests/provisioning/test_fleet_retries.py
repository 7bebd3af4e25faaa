"""Requests the fleet did not answer are repeated, and every repeat is announced."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from rich.console import Console

from provisioning import steps
from provisioning.errors import FleetUnreachable
from provisioning.fleet_client import FleetClient, Retry
from provisioning.ui import Ui
from tests.conftest import free_port

TOKEN = "fst_do-not-print-me"


class Flaky(ThreadingHTTPServer):
    """Hangs up without an answer on the first `failures` requests, then answers."""

    failures = 0
    requests = 0


class JsonHandler(BaseHTTPRequestHandler):
    server: Flaky

    def answer(self, payload: object) -> None:
        body = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class Handler(JsonHandler):
    def do_GET(self) -> None:
        self.server.requests += 1
        if self.server.requests <= self.server.failures:
            self.close_connection = True  # no status line at all: a transport failure
            return
        self.answer([{"name": "default"}])


@pytest.fixture
def flaky() -> Iterator[Flaky]:
    server = Flaky(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def url(server: Flaky) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}"


def test_each_retry_is_reported_before_its_wait(flaky: Flaky) -> None:
    flaky.failures = 2
    heard: list[Retry] = []
    with FleetClient(url(flaky), TOKEN, backoff_s=0.001, on_retry=heard.append) as client:
        assert client.wifi_profiles("hackney") == ["default"]
    assert flaky.requests == 3
    assert [(r.attempt, r.attempts, r.delay_s) for r in heard] == [(2, 3, 0.001), (3, 3, 0.002)]
    assert str(heard[0]) == (
        f"the fleet did not answer ({heard[0].reason}); retrying (2/3) in 0.001 s"
    )
    assert "disconnected" in heard[0].reason.lower()


def test_the_client_retries_without_anyone_listening(flaky: Flaky) -> None:
    flaky.failures = 1
    with FleetClient(url(flaky), TOKEN, backoff_s=0.001) as client:
        assert client.wifi_profiles("hackney") == ["default"]
    assert flaky.requests == 2


def test_no_retry_is_announced_after_the_last_attempt(flaky: Flaky) -> None:
    flaky.failures = 10
    heard: list[Retry] = []
    client = FleetClient(url(flaky), TOKEN, attempts=3, backoff_s=0.001, on_retry=heard.append)
    with client, pytest.raises(FleetUnreachable):
        client.wifi_profiles("hackney")
    assert flaky.requests == 3
    assert [r.attempt for r in heard] == [2, 3]


def test_the_technician_sees_the_retries_without_secrets(flaky: Flaky, tmp_path: Path) -> None:
    flaky.failures = 2
    out = io.StringIO()
    ui = Ui(Console(file=out, width=200, color_system=None))
    ctx = steps.Context(ui=ui, work_dir=tmp_path, fleet_url=url(flaky), token=TOKEN)
    with ctx.client() as client:
        client.backoff_s = 0.001
        assert client.wifi_profiles("hackney") == ["default"]
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("! the fleet did not answer (")
    assert lines[0].endswith("); retrying (2/3) in 0.001 s")
    assert lines[1].endswith("); retrying (3/3) in 0.002 s")
    assert TOKEN not in out.getvalue() and "Traceback" not in out.getvalue()


def test_the_final_refusal_says_why_in_words() -> None:
    client = FleetClient(f"http://127.0.0.1:{free_port()}", TOKEN, attempts=2, backoff_s=0.001)
    with client, pytest.raises(FleetUnreachable) as refused:
        client.wifi_profiles("hackney")
    message = str(refused.value)
    assert "(Connection refused)" in message and "Errno" not in message, message


class DeviceHandler(JsonHandler):
    """The device endpoint: an old reading first (verify's baseline), then `failures`
    hang-ups, then the device online with a fresh reading."""

    def do_GET(self) -> None:
        self.server.requests += 1
        if 1 < self.server.requests <= 1 + self.server.failures:
            self.close_connection = True
            return
        t = 1 if self.server.requests == 1 else 1_000
        self.answer(
            {
                "status": "online",
                "status_at": "2026-11-25T10:00:00+00:00",
                "latest": {"temperature": {"t": t, "v": 20.5}, "humidity": {"t": t, "v": 55.0}},
            }
        )


def test_verify_does_not_print_a_retry_line_per_poll(tmp_path: Path) -> None:
    """Its wait says once that the fleet is unreachable; the client's own retries stay quiet
    (two of them here, a second and two apart)."""
    server = Flaky(("127.0.0.1", 0), DeviceHandler)
    server.failures = 2
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    out = io.StringIO()
    ui = Ui(Console(file=out, width=200, color_system=None))
    ctx = steps.Context(ui=ui, work_dir=tmp_path, fleet_url=url(server), token=TOKEN)
    try:
        verified = steps.verify(
            ctx, device_id="cs-3c71bf0a12f4", port=None, reset=False, timeout_s=60, poll_s=0.01
        )
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    assert verified is not None and server.requests == 4
    assert "retrying (" not in out.getvalue(), out.getvalue()
    assert "PASS" in out.getvalue()
