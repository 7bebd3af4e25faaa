"""Run the whole service in one process: broker, ingest, HTTP, and optionally virtual devices."""

from __future__ import annotations

import logging
import signal

import uvicorn

from fleet.api.app import create_app
from fleet.core.context import build_context
from fleet.core.settings import Settings
from fleet.runtime import FleetRuntime
from fleet.simulator.paths import DEFAULT_HEAPSIZE

log = logging.getLogger(__name__)


def _terminate_gracefully(signum: int, frame: object) -> None:
    # uvicorn re-raises SIGTERM after its own shutdown; the default action would kill this
    # process before the virtual devices, ingest and broker below are stopped.
    raise KeyboardInterrupt


def run_service(
    settings: Settings,
    *,
    virtual_devices: int = 0,
    sample_interval_s: int = 10,
    heapsize: str = DEFAULT_HEAPSIZE,
) -> None:
    ctx = build_context(settings)
    runtime = FleetRuntime(ctx)
    signal.signal(signal.SIGTERM, _terminate_gracefully)
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
        app = create_app(ctx, commands=runtime.commands, rollouts=runtime.ota)
        config = uvicorn.Config(
            app,
            host=settings.http_host,
            port=settings.http_port,
            log_level="info",
            access_log=False,
            timeout_graceful_shutdown=3,
        )
        log.info(
            "dashboard on http://%s:%s (API docs at /docs); admin token in %s",
            settings.http_host,
            settings.http_port,
            "FLEET_ADMIN_TOKEN" if settings.admin_token else settings.data_dir / "admin-token",
        )
        uvicorn.Server(config).run()
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
