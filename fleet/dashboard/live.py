"""Live updates for the overview over Server-Sent Events, scoped like the page itself."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from fleet.access.principal import Principal
from fleet.api.deps import LoginRequired, current_principal, get_context
from fleet.api.schemas import DeviceOut
from fleet.core.context import FleetContext
from fleet.dashboard.pages import overview_query
from fleet.dashboard.templating import MAX_PAGE
from fleet.registry import devices as registry

router = APIRouter(include_in_schema=False)
LIVE_POLL_S = 2.0


def signed_in(ctx: FleetContext, request: Request) -> Principal | None:
    """The stream's user, looked up in a session of its own that closes at once: a stream
    lives as long as its tab, and must not hold a database connection all that time."""
    with ctx.sessions() as session:
        return current_principal(request, ctx, session, bearer=False)


def snapshot(
    ctx: FleetContext, request: Request, query: registry.DeviceQuery
) -> dict[str, Any] | None:
    """What the overview shows now, or None when the stream's user is no longer signed in
    (signed out, disabled): each poll asks again, in the same short session."""
    with ctx.sessions() as session:
        user = current_principal(request, ctx, session, bearer=False)
        if user is None:
            return None
        rows, total = registry.find_devices(session, principal=user, query=query)
        return {
            "total": total,
            "counts": registry.state_counts(session, principal=user),
            "devices": [
                DeviceOut.model_validate(d).model_dump(
                    mode="json",
                    include={"device_id", "name", "state", "last_seen_at", "latest", "fw_version"},
                )
                for d in rows
            ],
        }


@router.get("/events")
async def events(
    request: Request,
    q: str | None = Query(None, max_length=100),
    state: str | None = Query(None, max_length=16),
    borough: str | None = Query(None, max_length=32),
    sort: str = Query("device_id", max_length=20),
    page: int = Query(1, ge=1, le=MAX_PAGE),
    ctx: FleetContext = Depends(get_context),
) -> StreamingResponse:
    query = overview_query(q, state, borough, sort, page)
    if await run_in_threadpool(signed_in, ctx, request) is None:
        raise LoginRequired(str(request.url.path))

    async def stream() -> AsyncIterator[str]:
        last = ""
        yield "retry: 3000\n\n"
        while not await request.is_disconnected():
            now = await run_in_threadpool(snapshot, ctx, request, query)
            if now is None:
                return
            body = json.dumps(now)
            if body != last:
                last = body
                yield f"event: devices\ndata: {body}\n\n"
            else:
                yield ": keep-alive\n\n"
            await asyncio.sleep(LIVE_POLL_S)

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
