"""The FastAPI application factory."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from fleet import __version__
from fleet.api.routes import devices, rejects
from fleet.core.context import FleetContext
from fleet.dashboard import routes as dashboard

STATIC_DIR = Path(__file__).resolve().parent.parent / "dashboard" / "static"


def create_app(ctx: FleetContext) -> FastAPI:
    app = FastAPI(
        title="City sensor fleet",
        version=__version__,
        description="Devices, readings and ingest diagnostics for the damp and mould sensor fleet.",
    )
    app.state.fleet = ctx
    app.include_router(devices.router)
    app.include_router(rejects.router)
    app.include_router(dashboard.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/healthz", tags=["service"])
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
