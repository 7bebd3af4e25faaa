"""Run the whole service in one process: broker, ingest, HTTP, and optionally virtual devices."""

from __future__ import annotations

import ipaddress
import logging
import os
import signal
import socket

import uvicorn
from fastapi import FastAPI

from fleet.api.app import create_app
from fleet.core.context import ConfigurationError, build_context, ensure_data_dir
from fleet.core.folder_lock import FolderInUse, FolderLock
from fleet.core.settings import Settings
from fleet.ota.engine import OtaSettings
from fleet.runtime import FleetRuntime, StartError
from fleet.simulator.paths import DEFAULT_HEAPSIZE

log = logging.getLogger(__name__)

# Held while a service keeps state in its data folder that no other process may share.
SERVICE_LOCK = "fleet.lock"


def _terminate_gracefully(signum: int, frame: object) -> None:
    # uvicorn re-raises SIGTERM after its own shutdown; the default action would kill this
    # process before the virtual devices, ingest and broker below are stopped.
    raise KeyboardInterrupt


def _hangup_as_terminate(signum: int, frame: object) -> None:
    # A closed terminal sends SIGHUP, whose default action would leave the broker's state
    # unsaved; as SIGTERM it takes uvicorn's graceful path, then the one above.
    os.kill(os.getpid(), signal.SIGTERM)


def _lock_data_folder(settings: Settings, virtual_devices: int) -> FolderLock | None:
    """The embedded broker's saved state and the virtual devices' flash folders belong to
    one service; API-only replicas on an external broker may share a folder."""
    if settings.broker_address() is not None and not virtual_devices:
        return None
    try:
        ensure_data_dir(settings)
    except ConfigurationError as exc:
        raise StartError(str(exc)) from None
    lock = FolderLock(
        settings.data_dir / SERVICE_LOCK,
        f"fleet service pid {os.getpid()}, dashboard on port {settings.http_port}",
    )
    try:
        lock.acquire()
    except FolderInUse as exc:
        raise StartError(
            f"the data folder {settings.data_dir} is in use by another fleet service "
            f"({exc.holder}); stop it first, or give this one its own folder with "
            "--data-dir or FLEET_DATA_DIR"
        ) from None
    return lock


def _check_public_urls(settings: Settings) -> None:
    """Live feed links and firmware download URLs default to the HTTP bind address; a wildcard
    one (0.0.0.0, ::) reaches no one, so production must name the address it is reached at."""
    if settings.environment != "production" or not _is_wildcard(settings.http_host):
        return
    missing = [
        name
        for name, needed in (
            ("FLEET_FEED_PUBLIC_URL", settings.feed_enabled and not settings.feed_public_url),
            ("FLEET_OTA_PUBLIC_URL", not OtaSettings().public_url),
        )
        if needed
    ]
    if missing:
        raise ConfigurationError(
            f"FLEET_HTTP_HOST={settings.http_host} is a wildcard bind address: live feed "
            f"links and firmware download URLs would point at http://{settings.http_host}:"
            f"{settings.http_port}; set {' and '.join(missing)} to the address data consumers "
            "and devices reach the API at (e.g. https://fleet.example.org)"
        )


def _is_wildcard(host: str) -> bool:
    if not host:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_unspecified
    except ValueError:  # a host name
        return False


def _bind_http(host: str, port: int) -> socket.socket:
    """Listen before anything else starts, so a taken port fails fast with a clear reason
    instead of after the broker, ingest and devices are up."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family)
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        raise StartError(
            f"cannot listen on {host}:{port} for the dashboard ({reason}); "
            "stop what holds it or choose another port with --port or FLEET_HTTP_PORT"
        ) from None


def run_service(
    settings: Settings,
    *,
    virtual_devices: int = 0,
    sample_interval_s: int = 10,
    heapsize: str = DEFAULT_HEAPSIZE,
) -> None:
    """Raises StartError or ConfigurationError, with what to change, when the service cannot
    start."""
    _check_public_urls(settings)
    lock = _lock_data_folder(settings, virtual_devices)
    try:
        with _bind_http(settings.http_host, settings.http_port) as http:
            # Port 0 asks for any free port: the one given is what update offers point at.
            settings = settings.model_copy(update={"http_port": http.getsockname()[1]})
            _serve(settings, http, virtual_devices, sample_interval_s, heapsize)
    finally:
        if lock is not None:
            lock.release()  # last: the broker's state is saved by now


def _serve(
    settings: Settings,
    http: socket.socket,
    virtual_devices: int,
    sample_interval_s: int,
    heapsize: str,
) -> None:
    ctx = build_context(settings)
    runtime = FleetRuntime(ctx)
    signal.signal(signal.SIGTERM, _terminate_gracefully)
    signal.signal(signal.SIGHUP, _hangup_as_terminate)
    devices = None
    try:
        broker = runtime.start()
        if virtual_devices:
            from fleet.simulator.demo import start_demo_devices

            devices = start_demo_devices(
                ctx,
                broker,
                count=virtual_devices,
                sample_interval_s=sample_interval_s,
                heapsize=heapsize,
            )
        app = create_app(ctx, commands=runtime.commands, rollouts=runtime.ota, broker=broker)
        config = http_server_config(app, settings)
        log.info(
            "dashboard on http://%s:%s (API docs at /docs); admin token in %s",
            settings.http_host,
            settings.http_port,
            "FLEET_ADMIN_TOKEN" if settings.admin_token else settings.data_dir / "admin-token",
        )
        uvicorn.Server(config).run(sockets=[http])
    except KeyboardInterrupt:
        # Ctrl-C or SIGTERM, during start-up or re-raised by uvicorn after its own graceful
        # shutdown: a requested stop, so everything is stopped below and the exit is clean.
        log.info("stopping")
    finally:
        if devices is not None:
            devices.stop()
        runtime.stop()
        ctx.close()
        log.info("stopped")


def http_server_config(app: FastAPI, settings: Settings) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=settings.http_host,
        port=settings.http_port,
        log_level="info",
        access_log=False,
        timeout_graceful_shutdown=3,
        proxy_headers=True,
        forwarded_allow_ips=settings.trusted_proxies,
        # uvicorn's own log set-up would give its loggers plain-text handlers; without it
        # they go through the fleet's (FLEET_LOG_FORMAT), tracebacks included.
        log_config=None,
    )
