"""The public transparency register: every deployed sensor by area, open to anyone.

What it measures, why, who decides, how long data is kept and whom to contact. It shows only
coarse areas and never a device id, address or property reference, so it needs no sign-in.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from fleet.api.deps import get_context
from fleet.core.context import FleetContext
from fleet.dashboard.templating import TEMPLATES
from fleet.feed import shared, snapshot
from fleet.feed.catalogue import METRICS_BY_NAME
from fleet.feed.snapshot import Audience, ThingRecord
from fleet.feed.sta.store import Store

router = APIRouter(include_in_schema=False)


@dataclass(frozen=True)
class RegisterEntry:
    area: str
    room: str
    since: str
    measures: list[str]
    purposes: list[str]
    retention_days: dict[str, int]
    published: bool
    thing_id: int | None


@dataclass(frozen=True)
class BoroughSection:
    name: str
    decided_by: str
    contact: str
    public_feed: bool
    precision: str
    entries: list[RegisterEntry]


def register_sections(snap: snapshot.Snapshot) -> list[BoroughSection]:
    public = Store(snap, Audience())
    metrics: dict[int, list[str]] = defaultdict(list)
    for ds in snap.datastreams.values():
        metrics[ds.thing.id].append(ds.metric.name)
    by_borough: dict[str, list[ThingRecord]] = defaultdict(list)
    for thing in snap.things.values():
        if thing.ended_at is None:
            by_borough[thing.borough_name].append(thing)
    sections: list[BoroughSection] = []
    for name in sorted(by_borough):
        things = by_borough[name]
        policy = things[0].policy
        entries = []
        for t in things:
            names = sorted(metrics[t.id], key=lambda m: METRICS_BY_NAME[m].id)
            entries.append(
                RegisterEntry(
                    area=public.area(t),
                    room=t.room,
                    since=(t.created_at if t.started_at.year < 2000 else t.started_at).strftime(
                        "%B %Y"
                    ),
                    measures=[METRICS_BY_NAME[m].label for m in names],
                    purposes=sorted({METRICS_BY_NAME[m].purpose for m in names}),
                    retention_days={
                        METRICS_BY_NAME[m].label: policy.retention_for(m) for m in names
                    },
                    published=t.id in public.things,
                    thing_id=t.id if t.id in public.things else None,
                )
            )
        entries.sort(key=lambda e: (e.area, e.room, e.since))
        sections.append(
            BoroughSection(
                name=name,
                decided_by=policy.decided_by or f"{name} (data controller)",
                contact=policy.contact or "the borough's data protection officer",
                public_feed=policy.public_feed,
                precision=policy.location_precision.replace("_", " "),
                entries=entries,
            )
        )
    return sections


@router.get("/register", response_class=HTMLResponse)
def transparency_register(
    request: Request,
    ctx: FleetContext = Depends(get_context),
) -> HTMLResponse:
    return TEMPLATES.TemplateResponse(
        request,
        "register.html",
        {"user": None, "sections": register_sections(shared.snapshot(ctx.sessions))},
    )
