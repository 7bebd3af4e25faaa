"""OGC SensorThings API v1.1 (read side) at /sta/v1.1.

Unauthenticated callers get the public level (pseudonymised, location-coarsened, only homes
whose tenants have not opted out); a token with the `feed:full` scope adds the full level for
its boroughs. See docs/standards/sensorthings.md.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from fleet.access.principal import Principal
from fleet.api.deps import get_context, get_session
from fleet.api.routes.feed_access import audience_of, feed_reader
from fleet.core.context import FleetContext
from fleet.feed import snapshot
from fleet.feed.odata import ODataError, parse_query_options
from fleet.feed.sta.engine import Engine, NotFound
from fleet.feed.sta.resources import RawValue, answer
from fleet.feed.sta.schema import SETS
from fleet.feed.sta.store import Store

BASE_PATH = "/sta/v1.1"
CONFORMANCE = [
    "http://www.opengis.net/spec/iot_sensing/1.1/req/datamodel",
    "http://www.opengis.net/spec/iot_sensing/1.1/req/resource-path/resource-path-to-entities",
    "http://www.opengis.net/spec/iot_sensing/1.1/req/request-data",
    "http://www.opengis.net/spec/iot_sensing/1.1/req/data-array/data-array",
    "http://www.opengis.net/spec/iot_sensing/1.1/req/receive-updates-via-mqtt/receive-updates",
]
MQTT_CONFORMANCE = CONFORMANCE[-1]

router = APIRouter(prefix=BASE_PATH, tags=["sensorthings"])


def _error(status_code: int, message: str) -> JSONResponse:
    return JSONResponse(
        {"code": status_code, "type": "error", "message": message}, status_code=status_code
    )


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/") + BASE_PATH


@router.get("", summary="SensorThings service root")
def service_root(
    request: Request,
    ctx: FleetContext = Depends(get_context),
    reader: Principal | None = Depends(feed_reader),
) -> dict[str, Any]:
    base = _base(request)
    broker = ctx.settings.mqtt_url or "the fleet's MQTT broker"
    return {
        "value": [{"name": name, "url": f"{base}/{name}"} for name in SETS],
        "serverSettings": {
            "conformance": CONFORMANCE,
            MQTT_CONFORMANCE: {"endpoints": [broker]},
        },
    }


@router.get("/{resource_path:path}", summary="SensorThings resources with OData query options")
def resource(
    resource_path: str,
    request: Request,
    ctx: FleetContext = Depends(get_context),
    session: Session = Depends(get_session),
    reader: Principal | None = Depends(feed_reader),
) -> Response:
    """Entity sets, entities, navigation and properties, e.g. `Datastreams(1)/Observations`."""
    query = request.query_params.multi_items()
    try:
        options = parse_query_options(query)
    except ODataError as exc:
        return _error(400, str(exc))
    snapshot.sync_committed(ctx.sessions)
    store = Store(snapshot.load(session), audience_of(reader))
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
        return PlainTextResponse(body.text)
    return JSONResponse(body)
