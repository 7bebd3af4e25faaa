"""The cases API gives every case of a busy borough, a page at a time, in a stable order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient

from fleet.access.principal import SYSTEM
from fleet.cases import service
from fleet.core.context import FleetContext
from fleet.registry import places
from tests.fleet.conftest import World

T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)


def _open_cases(ctx: FleetContext, world: World, code: str, opened: list[datetime]) -> list[int]:
    ids = []
    with ctx.sessions.begin() as s:
        borough = places.borough_by_code(s, code=code, principal=SYSTEM)
        for n, at in enumerate(opened):
            prop = places.create_property(s, borough=borough, reference=f"{code.upper()}-P{n}")
            ids.append(service.open_case(s, prop=prop, principal=SYSTEM, now=at)[0].id)
    return ids


def test_pages_follow_to_the_end_newest_first_with_the_total(
    fleet_ctx: FleetContext, world: World, client: TestClient
) -> None:
    # Two cases opened in the same microsecond: the id orders them, so neither is lost.
    times = [T0, T0 + timedelta(hours=1), T0 + timedelta(hours=1), T0 + timedelta(days=1), T0]
    hackney = _open_cases(fleet_ctx, world, "hackney", times)
    _open_cases(fleet_ctx, world, "camden", [T0])
    staff = world.headers("staff_hackney")

    seen: list[int] = []
    url: str | None = "/api/v1/cases?limit=2"
    pages = 0
    while url:
        answer = client.get(url, headers=staff)
        assert answer.status_code == 200, answer.text
        assert answer.headers["X-Total-Count"] == "5"
        body = answer.json()
        assert len(body) <= 2
        seen += [c["id"] for c in body]
        link = answer.headers.get("Link")
        url = link[1 : link.index(">")] if link else None
        pages += 1
    assert pages == 3
    assert sorted(seen) == sorted(hackney) and len(seen) == len(set(seen))
    opened = [
        datetime.fromisoformat(c["opened_at"])
        for c in client.get("/api/v1/cases?limit=10", headers=staff).json()
    ]
    assert opened == sorted(opened, reverse=True)


def test_a_made_up_cursor_is_refused_with_what_to_do(
    fleet_ctx: FleetContext, world: World, client: TestClient
) -> None:
    answer = client.get("/api/v1/cases?after=yesterday", headers=world.headers("staff_hackney"))
    assert answer.status_code == 422
    assert "follow the next link unchanged" in answer.text
