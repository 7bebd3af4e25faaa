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
from fleet.api.deps import get_context, page_user
from fleet.api.schemas import DeviceOut
from fleet.core.context import FleetContext
from fleet.dashboard.pages import MAX_PAGE, overview_query
from fleet.registry import devices as registry

router = APIRouter(include_in_schema=False)
LIVE_POLL_S = 2.0


def snapshot(ctx: FleetContext, user: Principal, query: registry.DeviceQuery) -> dict[str, Any]:
    with ctx.sessions() as session:
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
    user: Principal = Depends(page_user),
) -> StreamingResponse:
    query = overview_query(q, state, borough, sort, page)

    async def stream() -> AsyncIterator[str]:
        last = ""
        yield "retry: 3000\n\n"
        while not await request.is_disconnected():
            body = json.dumps(await run_in_threadpool(snapshot, ctx, user, query))
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
