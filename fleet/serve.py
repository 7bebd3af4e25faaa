"""Run the whole service in one process: broker, ingest, HTTP, and optionally virtual devices."""

from __future__ import annotations

import logging

import uvicorn

from fleet.api.app import create_app
from fleet.core.context import build_context
from fleet.core.settings import Settings
from fleet.runtime import FleetRuntime

log = logging.getLogger(__name__)


def run_service(
    settings: Settings,
    *,
    virtual_devices: int = 0,
    sample_interval_s: int = 10,
    heapsize: str = "128K",
) -> None:
    ctx = build_context(settings)
    runtime = FleetRuntime(ctx)
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
        app = create_app(ctx, commands=runtime.commands)
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
        try:
            uvicorn.Server(config).run()
        except KeyboardInterrupt:
            # uvicorn re-raises Ctrl-C after its graceful shutdown; ours follows below.
            log.info("stopping")
    finally:
        if devices is not None:
            devices.stop()
        runtime.stop()
        ctx.close()
        log.info("stopped")
