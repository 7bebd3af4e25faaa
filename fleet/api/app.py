"""The FastAPI application factory."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from fleet import __version__
from fleet.access.principal import Forbidden
from fleet.access.throttle import SignInThrottle
from fleet.api import validation
from fleet.api.body_limit import BodyLimit
from fleet.api.deps import LoginRequired
from fleet.api.routes import (
    accounts,
    alerts,
    audit,
    cases,
    device_control,
    devices,
    enrolment,
    feed,
    ota,
    registry,
    rejects,
    risk,
    sensorthings,
    standards,
)
from fleet.api.routes.feed_access import PublicFeedCors
from fleet.broker.url import BrokerAddress
from fleet.commands.send import Publisher
from fleet.core.context import FleetContext
from fleet.dashboard import router as dashboard_router
from fleet.dashboard.web import PageHeaders
from fleet.ingest.worker import IngestWorker
from fleet.observability.metrics import build_registry
from fleet.observability.readiness import BrokerLink, Readiness
from fleet.ota.engine import RolloutEngine
from fleet.registry import places
from fleet.registry.devices import DeviceExists, DeviceNotFound

STATIC_DIR = Path(__file__).resolve().parent.parent / "dashboard" / "static"


def create_app(
    ctx: FleetContext,
    *,
    commands: Publisher | None = None,
    rollouts: RolloutEngine | None = None,
    broker: BrokerAddress | None = None,
) -> FastAPI:
    app = FastAPI(
        title="City sensor fleet",
        version=__version__,
        description="Devices, readings, alerts and ingest diagnostics for the damp and mould "
        "sensor fleet. Authenticate with `Authorization: Bearer <token>`.",
    )
    app.state.fleet = ctx
    app.state.commands = commands
    # Rollout changes made through the API or dashboard are acted on at once, not next tick.
    app.state.ota_engine = rollouts
    # Failure counts live in the database, shared with every other API process.
    app.state.sign_in_throttle = SignInThrottle(ctx.sessions)
    # The broker actually running (the embedded one may have moved to a free port): the feed
    # tells consumers where it is.
    app.state.broker = broker
    for module in (
        devices,
        device_control,
        registry,
        alerts,
        audit,
        accounts,
        rejects,
        enrolment,
        sensorthings,
        feed,
        standards,
        risk,
        cases,
        ota,
    ):
        app.include_router(module.router)
    app.include_router(enrolment.public)
    app.include_router(dashboard_router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.add_middleware(BodyLimit)

    app.add_middleware(PageHeaders)
    validation.install(app)
    app.add_middleware(PublicFeedCors)

    @app.exception_handler(LoginRequired)
    async def _login(request: Request, exc: LoginRequired) -> RedirectResponse:
        return RedirectResponse(f"/login?next={quote(exc.next_url)}", status_code=303)

    @app.exception_handler(places.NotFound)
    @app.exception_handler(DeviceNotFound)
    async def _not_found(request: Request, exc: Exception) -> Response:
        return await validation.answer(request, 404, str(exc))

    @app.exception_handler(places.Conflict)
    @app.exception_handler(DeviceExists)
    async def _conflict(request: Request, exc: Exception) -> Response:
        return await validation.answer(request, 409, str(exc))

    @app.exception_handler(Forbidden)
    async def _forbidden(request: Request, exc: Forbidden) -> Response:
        return await validation.answer(request, 403, str(exc))

    link = commands if isinstance(commands, BrokerLink) else None
    metrics_registry = build_registry(
        ctx, commands if isinstance(commands, IngestWorker) else None, broker=link
    )
    readiness = Readiness(ctx.engine, link)

    @app.get("/metrics", tags=["service"], response_class=PlainTextResponse)
    def metrics() -> PlainTextResponse:
        """Prometheus metrics: ingest outcomes and lag, rejects, DB latency, devices by state."""
        return PlainTextResponse(generate_latest(metrics_registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/healthz", tags=["service"])
    def healthz() -> dict[str, str]:
        """Liveness: the process answers HTTP. Restart it only when this fails."""
        return {"status": "ok"}

    @app.get(
        "/readyz",
        tags=["service"],
        responses={503: {"description": "The database does not answer"}},
    )
    def readyz() -> JSONResponse:
        """Readiness: 503 while the database does not answer; reports the broker connection,
        which does not affect readiness."""
        ready, report = readiness.check()
        return JSONResponse(report, status_code=200 if ready else 503)

    return app
