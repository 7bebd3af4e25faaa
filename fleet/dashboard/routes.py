"""Server-rendered dashboard pages and their live-update stream (Server-Sent Events)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, StreamingResponse
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from fleet.api.deps import get_context
from fleet.api.schemas import DeviceOut
from fleet.core.context import FleetContext
from fleet.registry import devices as registry

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
LIVE_POLL_S = 2.0
OVERVIEW_METRICS = {
    "temperature": "Temperature",
    "humidity": "Humidity",
    "co2": "CO₂",
    "battery": "Battery",
}
# SenML units are for machines; people read these.
DISPLAY_UNITS = {"Cel": "°C", "%RH": "%", "%EL": "%", "ppm": " ppm", "Pa": " Pa", "V": " V"}

router = APIRouter(include_in_schema=False)


def _device_rows(ctx: FleetContext) -> list[dict[str, Any]]:
    with ctx.sessions() as session:
        return [
            DeviceOut.model_validate(d).model_dump(mode="json")
            for d in registry.list_devices(session, limit=5000)
        ]


@router.get("/", response_class=HTMLResponse)
async def overview(request: Request, ctx: FleetContext = Depends(get_context)) -> HTMLResponse:
    devices = await run_in_threadpool(_device_rows, ctx)
    counts: dict[str, int] = {}
    for d in devices:
        counts[d["state"]] = counts.get(d["state"], 0) + 1
    return TEMPLATES.TemplateResponse(
        request,
        "overview.html",
        {"devices": devices, "counts": counts, "metrics": OVERVIEW_METRICS, "units": DISPLAY_UNITS},
    )


@router.get("/events")
async def events(request: Request, ctx: FleetContext = Depends(get_context)) -> StreamingResponse:
    async def stream() -> AsyncIterator[str]:
        last = ""
        yield "retry: 3000\n\n"
        while not await request.is_disconnected():
            devices = await run_in_threadpool(_device_rows, ctx)
            body = json.dumps(devices, separators=(",", ":"))
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
