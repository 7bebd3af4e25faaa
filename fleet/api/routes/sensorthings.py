"""OGC SensorThings API v1.1 (read side) at /sta/v1.1.

Unauthenticated callers get the public level (pseudonymised, location-coarsened, only homes
whose tenants have not opted out); a token with the `feed:full` scope adds the full level for
its boroughs. See fleet/feed/standard/sensorthings.md.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from fleet.access.principal import Principal
from fleet.api.deps import get_context, get_session
from fleet.api.routes.feed_access import audience_of, feed_reader
from fleet.core.context import FleetContext
from fleet.feed import shared
from fleet.feed.endpoint import consumer_broker_url
from fleet.feed.odata import ODataError, parse_query_options
from fleet.feed.sta.engine import Engine, NotFound
from fleet.feed.sta.resources import RawValue, answer
from fleet.feed.sta.schema import SETS
from fleet.feed.sta.store import Store

BASE_PATH = "/sta/v1.1"
# Only classes served in full. Query options are served except the geospatial $filter
# functions (request-data), resource paths except associationLinks (`.../$ref`), and MQTT
# carries Observation topics only (receive-updates): all are documented in
# fleet/feed/standard/sensorthings.md but not claimed.
CONFORMANCE = [
    "http://www.opengis.net/spec/iot_sensing/1.1/req/datamodel",
    "http://www.opengis.net/spec/iot_sensing/1.1/req/data-array/data-array",
]
# The specification's place for the MQTT endpoints, given although the class is partial.
MQTT_CONFORMANCE = (
    "http://www.opengis.net/spec/iot_sensing/1.1/req/receive-updates-via-mqtt/receive-updates"
)
READ_METHODS = "GET, HEAD, OPTIONS"

router = APIRouter(prefix=BASE_PATH, tags=["sensorthings"])


def _error(status_code: int, message: str) -> JSONResponse:
    return JSONResponse(
        {"code": status_code, "type": "error", "message": message}, status_code=status_code
    )


def _reader(
    request: Request, ctx: FleetContext, session: Session
) -> Principal | JSONResponse | None:
    """The caller, or the refusal (401, 429) in this API's error shape."""
    try:
        return feed_reader(request, ctx, session)
    except HTTPException as exc:
        response = _error(exc.status_code, str(exc.detail))
        response.headers.update(exc.headers or {})
        return response


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/") + BASE_PATH


@router.get("", summary="SensorThings service root")
@router.head("", include_in_schema=False)
def service_root(
    request: Request,
    ctx: FleetContext = Depends(get_context),
    session: Session = Depends(get_session),
) -> Any:
    reader = _reader(request, ctx, session)
    if isinstance(reader, JSONResponse):
        return reader
    base = _base(request)
    running = getattr(request.app.state, "broker", None)
    broker = consumer_broker_url(ctx.settings, running, request.url.hostname)
    return {
        "value": [{"name": name, "url": f"{base}/{name}"} for name in SETS],
        "serverSettings": {
            "conformance": CONFORMANCE,
            MQTT_CONFORMANCE: {"endpoints": [broker]},
        },
    }


@router.get("/{resource_path:path}", summary="SensorThings resources with OData query options")
@router.head("/{resource_path:path}", include_in_schema=False)
def resource(
    resource_path: str,
    request: Request,
    ctx: FleetContext = Depends(get_context),
    session: Session = Depends(get_session),
) -> Response:
    """Entity sets, entities, navigation and properties, e.g. `Datastreams(1)/Observations`."""
    reader = _reader(request, ctx, session)
    if isinstance(reader, JSONResponse):
        return reader
    query = request.query_params.multi_items()
    try:
        options = parse_query_options(query)
    except ODataError as exc:
        return _error(400, str(exc))
    store = Store(shared.snapshot(ctx.sessions), audience_of(reader))
    engine = Engine(session, store, _base(request))
    url = f"{_base(request)}/{resource_path.strip('/')}"
    try:
        body = answer(engine, resource_path, options, url=url, query=query)
    except ODataError as exc:
        return _error(400, str(exc))
    except NotFound as exc:
        return _error(404, str(exc))
    except DBAPIError as exc:
        # The database refused an expression the type checks let through (e.g. a string
        # function on a number on PostgreSQL): the request is at fault, not the service.
        session.rollback()
        reason = str(exc.orig).splitlines()[0] if exc.orig else "invalid expression"
        return _error(400, f"the query cannot be applied to this data: {reason}")
    if isinstance(body, RawValue):
        if body.media_type == "application/json":
            return Response(body.text, media_type="application/json")
        return PlainTextResponse(body.text)
    return JSONResponse(body)


@router.api_route(
    "{resource_path:path}",
    methods=["OPTIONS", "POST", "PUT", "PATCH", "DELETE"],
    include_in_schema=False,
)
def read_only(request: Request, resource_path: str) -> Response:
    """The feed is read-only: say which methods exist, in this API's error shape."""
    if request.method == "OPTIONS":
        return Response(status_code=204, headers={"Allow": READ_METHODS})
    response = _error(405, f"the SensorThings API here is read-only; use {READ_METHODS}")
    response.headers["Allow"] = READ_METHODS
    return response
