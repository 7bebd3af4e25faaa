"""Long lists page instead of stopping short: the case list, the risk list and the registry
show "showing N of TOTAL", every row is reached by following Next, filters stay on across
pages, and another borough's rows are never shown or counted."""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from fleet.dashboard import case_pages
from fleet.dashboard import registry as registry_pages
from fleet.dashboard import risk as risk_pages
from fleet.models import Borough, Case, PropertyRisk
from fleet.models.base import utcnow
from fleet.registry import places
from tests.dashboard.test_ota_pages import client, recorder, sign_in  # noqa: F401
from tests.fleet.conftest import World, fleet_ctx, world  # noqa: F401

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
TO = "\u2013"  # the en dash between the first and last row in captions


def _next(page: str) -> str | None:
    found = re.search(r'<a rel="next" href="([^"]+)"', page)
    return html.unescape(found.group(1)) if found else None


def _prev(page: str) -> str | None:
    found = re.search(r'<a rel="prev" href="([^"]+)"', page)
    return html.unescape(found.group(1)) if found else None


def _caption(page: str, table: str) -> str:
    found = re.search(rf'<table[^>]*id="{table}"[^>]*>\s*<caption>(.*?)</caption>', page, re.S)
    assert found, f"no caption on table {table}"
    return html.unescape(found.group(1))


def _walk(client: TestClient, url: str, attr: str) -> list[list[str]]:  # noqa: F811
    """The rows (by ``attr``) of every page from ``url`` on, following Next."""
    pages: list[list[str]] = []
    target: str | None = url
    while target is not None:
        r = client.get(target)
        assert r.status_code == 200, r.text[-500:]
        pages.append(re.findall(rf'<tr {attr}="([^"]+)"', r.text))
        target = _next(r.text)
        assert len(pages) < 50, "Next never ends"
    return pages


def _cases(world: World, code: str, n: int, *, status: str = "open", tied: int = 0) -> list[int]:  # noqa: F811
    """``n`` cases in a borough, each on its own property, opened a minute apart; the last
    ``tied`` share one opening time (the id orders them)."""
    ids = []
    with world.ctx.sessions.begin() as s:
        borough = s.get(Borough, world.borough_ids[code])
        assert borough is not None
        for i in range(n):
            prop = places.create_property(s, borough=borough, reference=f"{code}-{status}-{i:03}")
            opened = T0 + timedelta(minutes=min(i, n - tied))
            case = Case(
                property_id=prop.id,
                borough_id=borough.id,
                status=status,
                source="manual",
                opened_at=opened,
                opened_by="test",
                aware_at=opened,
                investigation_at=opened if status == "closed" else None,
                closed_at=opened if status == "closed" else None,
            )
            s.add(case)
            s.flush()
            ids.append(case.id)
    return ids


def test_every_case_is_reached_by_following_next_newest_first(
    client: TestClient,  # noqa: F811
    world: World,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(case_pages, "CASES_PAGE_SIZE", 5)
    hackney = _cases(world, "hackney", 13, tied=4)
    camden = _cases(world, "camden", 3)
    sign_in(client, "staff_hackney")
    pages = _walk(client, "/cases?show=all", "data-case")
    assert [len(p) for p in pages] == [5, 5, 3]
    seen = [int(c) for p in pages for c in p]
    # Newest first; cases opened at the same instant come newest id first, none skipped.
    assert seen == sorted(hackney, reverse=True)
    assert not set(seen) & set(camden)
    first = client.get("/cases?show=all").text
    assert _caption(first, "cases") == f"Showing 1{TO}5 of 13 cases, newest first"
    assert _prev(first) is None
    second_url = _next(first)
    assert second_url is not None
    second = client.get(second_url).text
    assert _caption(second, "cases") == f"Showing 6{TO}10 of 13 cases, newest first"
    third = client.get(_next(second) or "").text
    assert _caption(third, "cases") == f"Showing 11{TO}13 of 13 cases, newest first"
    # Newer goes back a page at a time to the newest.
    back = client.get(_prev(third) or "").text
    assert re.findall(r'<tr data-case="(\d+)"', back) == pages[1]
    newest = client.get(_prev(back) or "").text
    assert re.findall(r'<tr data-case="(\d+)"', newest) == pages[0]
    assert _prev(newest) is None


def test_the_status_filter_stays_on_across_pages_and_counts_its_own_cases(
    client: TestClient,  # noqa: F811
    world: World,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(case_pages, "CASES_PAGE_SIZE", 4)
    closed = _cases(world, "hackney", 9, status="closed")
    _cases(world, "hackney", 3)
    _cases(world, "camden", 6, status="closed")
    sign_in(client, "staff_hackney")
    first = client.get("/cases?show=closed").text
    assert _caption(first, "cases") == f"Showing 1{TO}4 of 9 closed cases, newest first"
    assert "show=closed" in (_next(first) or "")
    pages = _walk(client, "/cases?show=closed", "data-case")
    assert sorted(int(c) for p in pages for c in p) == sorted(closed)
    assert "of 3 open cases" in _caption(client.get("/cases").text, "cases")


def test_open_cases_past_a_deadline_have_their_own_tab(
    client: TestClient,  # noqa: F811
    world: World,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(case_pages, "CASES_PAGE_SIZE", 3)
    late = _cases(world, "hackney", 7)  # January 2026: the investigation is long overdue
    _cases(world, "camden", 2)
    with world.ctx.sessions.begin() as s:
        borough = s.get(Borough, world.borough_ids["hackney"])
        assert borough is not None
        prop = places.create_property(s, borough=borough, reference="fresh")
        s.add(
            Case(
                property_id=prop.id,
                borough_id=borough.id,
                source="manual",
                opened_by="test",
                opened_at=utcnow(),
                aware_at=utcnow(),
            )
        )
    sign_in(client, "staff_hackney")
    first = client.get("/cases?show=overdue").text
    assert _caption(first, "cases") == (
        f"Showing 1{TO}3 of 7 open cases with a deadline passed, newest first"
    )
    assert "show=overdue" in (_next(first) or "")
    pages = _walk(client, "/cases?show=overdue", "data-case")
    assert [int(c) for p in pages for c in p] == sorted(late, reverse=True)
    assert "of 8 open cases" in _caption(client.get("/cases").text, "cases")


def test_a_case_cursor_that_is_not_one_is_refused(
    client: TestClient,  # noqa: F811
    world: World,  # noqa: F811
) -> None:
    sign_in(client, "staff_hackney")
    r = client.get("/cases?after=yesterday")
    assert r.status_code == 422 and "follow the next link unchanged" in r.text


def _properties(world: World, code: str, n: int, *, ranks: bool = False) -> list[str]:  # noqa: F811
    refs = []
    with world.ctx.sessions.begin() as s:
        borough = s.get(Borough, world.borough_ids[code])
        assert borough is not None
        for i in range(n):
            prop = places.create_property(
                s, borough=borough, reference=f"{code[:2].upper()}-{i:03}", address=f"{i} Road"
            )
            if ranks and i % 3:  # every third has no risk row yet
                s.add(
                    PropertyRisk(
                        property_id=prop.id, borough_id=borough.id, rank=i % 4, score=i, level="low"
                    )
                )
            refs.append(prop.reference)
    return refs


def test_the_risk_list_pages_highest_risk_first_within_the_borough(
    client: TestClient,  # noqa: F811
    world: World,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(risk_pages, "RISK_PAGE_SIZE", 4)
    _properties(world, "hackney", 10, ranks=True)
    _properties(world, "camden", 5, ranks=True)
    sign_in(client, "staff_hackney")
    first = client.get("/risk").text
    assert _caption(first, "risk-list") == (
        f"Showing 1{TO}4 of 11 properties in Hackney, highest risk first"
    )
    pages = _walk(client, "/risk", "data-property")
    assert [len(p) for p in pages] == [4, 4, 3]
    shown = [int(p) for page in pages for p in page]
    with world.ctx.sessions() as s:
        risk = {r.property_id: (r.rank, r.score) for r in s.query(PropertyRisk)}
        hackney = world.borough_ids["hackney"]
        mine = {p.id for p in places.list_properties(s, borough=s.get(Borough, hackney))}  # type: ignore[arg-type]
    assert sorted(shown) == sorted(mine)  # each once, and no Camden property
    # Highest rank first, then score; properties with no risk row last.
    keys = [risk.get(p, (-1, -1)) for p in shown]
    assert keys == sorted(keys, reverse=True)
    # The chosen borough stays on across pages.
    sign_in(client, "admin")
    camden = client.get("/risk?borough=camden").text
    assert "of 6 properties in Camden" in _caption(camden, "risk-list")
    assert "borough=camden" in (_next(camden) or "")
    assert (
        len([p for page in _walk(client, "/risk?borough=camden", "data-property") for p in page])
        == 6
    )


def test_registry_pages_one_borough_searches_and_counts_devices_of_the_rows_shown(
    client: TestClient,  # noqa: F811
    world: World,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(registry_pages, "REGISTRY_PAGE_SIZE", 4)
    refs = _properties(world, "hackney", 10)
    _properties(world, "camden", 3)
    counted: list[list[int]] = []
    real = places.devices_per_property

    def spy(session: Session, property_ids: Sequence[int]) -> dict[int, int]:
        counted.append(list(property_ids))
        return real(session, property_ids)

    monkeypatch.setattr(places, "devices_per_property", spy)
    sign_in(client, "staff_hackney")
    first = client.get("/registry").text
    assert re.findall(r"data-borough=\"(\w+)\"", first) == ["hackney"]
    assert _caption(first, "properties").startswith("Showing 4 of 11 properties (page 1 of 3)")
    pages = _walk(client, "/registry", "data-property")
    assert sorted(p for page in pages for p in page) == sorted([*refs, "HACKNEY-0001"])
    # Devices are counted for the page's own properties only, and shown right.
    with world.ctx.sessions() as s:
        hackney = s.get(Borough, world.borough_ids["hackney"])
        assert hackney is not None
        by_ref = {p.id: p.reference for p in places.list_properties(s, borough=hackney)}
    assert all(set(ids) <= by_ref.keys() and len(ids) <= 4 for ids in counted)
    home = client.get("/registry?q=HACKNEY-0001").text
    row = re.search(r'<tr data-property="HACKNEY-0001">(.*?)</tr>', home, re.S)
    assert row is not None and row.group(1).rstrip().endswith("<td>1</td>")
    # A search by reference or address keeps to the borough and stays on across pages.
    found = client.get("/registry?q=road").text
    assert _caption(found, "properties").startswith("Showing 4 of 10 properties matching “road”")
    assert "q=road" in (_next(found) or "")
    assert (
        len([p for page in _walk(client, "/registry?q=road", "data-property") for p in page]) == 10
    )
    one = client.get("/registry?q=7+Road").text
    assert re.findall(r'<tr data-property="([^"]+)"', one) == ["HA-007"]
    assert client.get("/registry?borough=camden").status_code == 404
    sign_in(client, "admin")
    camden = client.get("/registry?borough=camden&q=road").text
    assert re.findall(r'<tr data-property="([^"]+)"', camden) == ["CA-000", "CA-001", "CA-002"]


def test_more_cases_than_the_old_500_limit_are_all_reached(
    client: TestClient,  # noqa: F811
    world: World,  # noqa: F811
) -> None:
    hackney = _cases(world, "hackney", 503)
    sign_in(client, "staff_hackney")
    first = client.get("/cases").text
    size = case_pages.CASES_PAGE_SIZE
    assert _caption(first, "cases") == f"Showing 1{TO}{size} of 503 open cases, newest first"
    pages = _walk(client, "/cases", "data-case")
    seen = [int(c) for p in pages for c in p]
    assert seen == sorted(hackney, reverse=True)  # the oldest, first opened, included
