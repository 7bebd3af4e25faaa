"""/readyz follows the database (and reports the broker), /healthz stays a liveness check, and
FLEET_LOG_FORMAT=json gives one JSON object per line, the HTTP server's lines included."""

from __future__ import annotations

import io
import json
import logging
import socket
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, make_url, text

from fleet.api.app import create_app
from fleet.broker.url import BrokerAddress
from fleet.core.context import FleetContext, build_context
from fleet.core.db import make_engine
from fleet.core.settings import Settings
from fleet.ingest.publisher import CommandPublisher
from fleet.observability import logging as fleet_logging
from fleet.observability.readiness import Readiness
from fleet.serve import http_server_config


def _gauge(client: TestClient, name: str) -> float | None:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(f"{name} "):
            return float(line.split()[1])
    return None


@pytest.mark.mosquitto
def test_ready_reports_the_publish_only_broker_connection(
    fleet_ctx: FleetContext, mosquitto: BrokerAddress
) -> None:
    publisher = CommandPublisher(mosquitto, client_id="fleet-api-0")
    publisher.start()
    try:
        assert publisher.connected.wait(10)
        client = TestClient(create_app(fleet_ctx, commands=publisher))
        ready = client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json() == {"status": "ready", "database": "ok", "broker": "connected"}
        assert _gauge(client, "fleet_broker_connected") == 1.0
    finally:
        publisher.stop()
    # A broker that is away is reported, and does not take the replica out of service.
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "database": "ok", "broker": "disconnected"}
    assert _gauge(client, "fleet_broker_connected") == 0.0
    assert client.get("/healthz").json() == {"status": "ok"}


def test_without_a_broker_connection_none_is_reported(fleet_ctx: FleetContext) -> None:
    client = TestClient(create_app(fleet_ctx))
    assert client.get("/readyz").json() == {"status": "ready", "database": "ok"}
    assert _gauge(client, "fleet_broker_connected") is None


@pytest.mark.postgres
def test_not_ready_while_the_database_refuses_and_ready_again_after(
    postgres_server: str, postgres_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ctx = build_context(
        Settings(environment="test", data_dir=tmp_path / "data", database_url=postgres_url)
    )
    admin = create_engine(postgres_server, isolation_level="AUTOCOMMIT")
    name = make_url(postgres_url).database
    client = TestClient(create_app(ctx), raise_server_exceptions=False)

    def allow(yes: bool) -> None:
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {str(yes).lower()}'))
            if not yes:
                conn.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = :name"
                    ),
                    {"name": name},
                )

    try:
        assert client.get("/readyz").status_code == 200
        allow(False)
        with caplog.at_level(logging.INFO, logger="fleet.observability.readiness"):
            for _ in range(2):
                down = client.get("/readyz")
                assert down.status_code == 503
                assert down.json() == {"status": "not ready", "database": "unavailable"}
            assert client.get("/healthz").status_code == 200  # alive: no restart for this
            allow(True)
            assert client.get("/readyz").status_code == 200
        changes = [r.getMessage() for r in caplog.records if r.name.endswith("readiness")]
        assert len(changes) == 2  # once per change, not per probe
        assert changes[0].startswith("not ready: the database does not answer (")
        assert "is not currently accepting connections" in changes[0]
        assert changes[1] == "ready: the database answers again"
    finally:
        allow(True)
        admin.dispose()
        ctx.close()


def test_a_database_that_hangs_is_not_ready_within_the_timeout() -> None:
    # Accepts TCP connections (the kernel's backlog) but never answers: a stuck server.
    silent = socket.create_server(("127.0.0.1", 0))
    port = silent.getsockname()[1]
    engine = make_engine(f"postgresql+psycopg://fleet@127.0.0.1:{port}/fleet")
    readiness = Readiness(engine, None, timeout_s=0.3)
    try:
        for _ in range(3):
            assert readiness.check() == (
                False,
                {"status": "not ready", "database": "unavailable"},
            )
        # Probes wait on the query already running instead of piling up threads.
        assert sum(t.name == "readiness" for t in threading.enumerate()) == 1
    finally:
        silent.close()
        engine.dispose()


@pytest.fixture
def restored_logging() -> Iterator[None]:
    """setup_logging changes the process's logging; put it back for the other tests."""
    root = logging.getLogger()
    names = fleet_logging.UVICORN + fleet_logging.NOISY
    saved = (
        root.handlers[:],
        root.level,
        {n: (logging.getLogger(n).handlers[:], logging.getLogger(n).propagate) for n in names},
        {n: logging.getLogger(n).level for n in names},
        threading.excepthook,
    )
    try:
        yield
    finally:
        handlers, level, loggers, levels, hook = saved
        root.handlers[:] = handlers
        root.setLevel(level)
        for n, (h, propagate) in loggers.items():
            logging.getLogger(n).handlers[:] = h
            logging.getLogger(n).propagate = propagate
            logging.getLogger(n).setLevel(levels[n])
        logging.captureWarnings(False)
        threading.excepthook = hook


def _json_lines(out: io.StringIO) -> list[dict[str, str]]:
    lines = out.getvalue().splitlines()
    assert lines
    return [json.loads(line) for line in lines]  # every line, or this raises


def test_json_log_carries_the_http_servers_lines_and_tracebacks(
    restored_logging: None, tmp_path: Path
) -> None:
    out = io.StringIO()
    fleet_logging.setup_logging(fmt="json", stream=out)
    app = FastAPI()

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("the database went away")

    http = socket.create_server(("127.0.0.1", 0))
    port = http.getsockname()[1]
    settings = Settings(
        environment="test", data_dir=tmp_path, http_host="127.0.0.1", http_port=port
    )
    server = uvicorn.Server(http_server_config(app, settings))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [http]})
    thread.start()
    try:
        # Listening already: the request waits in the backlog until the server takes it.
        with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
            conn.sendall(b"GET /boom HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            answer = conn.makefile("rb").read()
        assert answer.startswith(b"HTTP/1.1 500")
    finally:
        server.should_exit = True
        thread.join(10)
        http.close()
    docs = _json_lines(out)
    by_msg = {d["msg"].strip(): d for d in docs}
    assert by_msg["Application startup complete."]["logger"] == "uvicorn.error"
    assert any(m.startswith("Started server process") for m in by_msg)
    failure = by_msg["Exception in ASGI application"]
    assert failure["level"] == "error"
    assert "Traceback" in failure["exc"]
    assert "RuntimeError: the database went away" in failure["exc"]


def test_json_log_carries_warnings_and_thread_crashes(restored_logging: None) -> None:
    out = io.StringIO()
    fleet_logging.setup_logging(fmt="json", stream=out)
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn("a deprecated setting", DeprecationWarning, stacklevel=1)

    def crash() -> None:
        raise ValueError("unexpected")

    worker = threading.Thread(target=crash, name="sweeper")
    worker.start()
    worker.join()
    docs = _json_lines(out)
    assert any("a deprecated setting" in d["msg"] and d["logger"] == "py.warnings" for d in docs)
    (crashed,) = [d for d in docs if d["logger"] == "fleet"]
    assert crashed["msg"] == "thread sweeper stopped on an uncaught exception"
    assert "ValueError: unexpected" in crashed["exc"]
