"""The audit log filtered by action, who, target and dates, on the dashboard, the API and as
CSV; within the reader's boroughs; free text in a CSV is safe to open in a spreadsheet."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from fleet.access import accounts, audit
from fleet.access.principal import SYSTEM, Principal
from fleet.core.context import FleetContext
from fleet.models import Borough, User
from fleet.registry import places
from tests.dashboard.test_ota_pages import client, recorder, sign_in  # noqa: F401
from tests.fleet.conftest import World, fleet_ctx, world  # noqa: F401

HOSTILE = '=HYPERLINK("http://evil.example","x")'


def _at(day: int, hour: int = 10) -> datetime:
    return datetime(2026, 3, day, hour, tzinfo=UTC)


@pytest.fixture
def entries(fleet_ctx: FleetContext, world: World) -> World:  # noqa: F811
    """Hackney: a case step, a property change with a hostile target, a rollout completing and
    51 commands; Camden: a case step. All in March 2026."""
    hackney, camden = world.borough_ids["hackney"], world.borough_ids["camden"]

    def add(borough: int, action: str, kind: str, target: str, at: datetime, **extra: Any) -> None:
        entry = audit.record(
            s,
            extra.pop("principal", SYSTEM),
            action,
            target_type=kind,
            target_id=target,
            borough_id=borough,
            detail=extra or None,
        )
        entry.at = at

    with fleet_ctx.sessions.begin() as s:
        staff = _principal(s, "staff_hackney")
        add(hackney, "case.step", "case", "7", _at(1), principal=staff, step="inspected")
        add(hackney, "property.update", "property", HOSTILE, _at(2), fields=["floor"])
        add(hackney, "ota.rollout.complete", "ota_rollout", "3", _at(3))
        for i in range(51):
            add(hackney, "device.command", "device", "cs-hackney-0001", _at(4, i % 24), n=i)
        add(camden, "case.step", "case", "8", _at(1), principal=_principal(s, "staff_camden"))
    return world


def _principal(s: Session, who: str) -> Principal:
    user = s.scalars(select(User).where(User.email == f"{who}@example.org")).one()
    return accounts.principal_for(user)


def _api(client: TestClient, world: World, query: str, who: str = "staff_hackney") -> Any:  # noqa: F811
    return TestClient(client.app).get(f"/api/v1/audit?{query}", headers=world.headers(who))


def _targets(rows: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(r["action"], r["target_id"]) for r in rows]


def test_the_api_filters_within_the_readers_boroughs(
    client: TestClient,  # noqa: F811
    entries: World,
) -> None:
    assert _targets(_api(client, entries, "action=case.step").json()) == [("case.step", "7")]
    assert _targets(_api(client, entries, "actor=STAFF_hackney@").json()) == [("case.step", "7")]
    assert _api(client, entries, "actor=%25").json() == []  # a literal %, not a wildcard
    found = _api(client, entries, "target_type=case&target_id=7").json()
    assert _targets(found) == [("case.step", "7")]
    assert found[0]["detail"] == {"step": "inspected"}
    one_day = "since=2026-03-02T00:00:00Z&until=2026-03-03T00:00:00Z"
    assert _targets(_api(client, entries, one_day).json()) == [("property.update", HOSTILE)]
    camden = _api(client, entries, "action=case.step", who="staff_camden").json()
    assert _targets(camden) == [("case.step", "8")]
    admin = _api(client, entries, "action=case.step", who="admin").json()
    assert sorted(_targets(admin)) == [("case.step", "7"), ("case.step", "8")]

    naive = _api(client, entries, "since=2026-03-02T00:00:00")
    assert naive.status_code == 422 and "since needs a UTC offset" in naive.text
    backwards = _api(client, entries, "since=2026-03-03T00:00:00Z&until=2026-03-02T00:00:00Z")
    assert backwards.status_code == 422 and "start must be before the end" in backwards.text


def test_the_csv_export_is_oldest_first_scoped_and_safe_in_a_spreadsheet(
    client: TestClient,  # noqa: F811
    entries: World,
) -> None:
    reply = TestClient(client.app).get(
        "/api/v1/audit/export.csv?since=2026-03-01T00:00:00Z&until=2026-03-04T00:00:00Z",
        headers=entries.headers("staff_hackney"),
    )
    assert reply.status_code == 200 and reply.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(reply.text)))
    assert [(r["action"], r["borough"]) for r in rows] == [
        ("case.step", "hackney"),
        ("property.update", "hackney"),
        ("ota.rollout.complete", "hackney"),
    ]
    assert re.fullmatch(r"user:\d+ staff_hackney@example\.org", rows[0]["actor"])
    assert rows[1]["target_id"] == "'" + HOSTILE  # shown as text, never run as a formula
    assert rows[1]["detail"] == '{"fields": ["floor"]}'
    every = TestClient(client.app).get(
        "/api/v1/audit/export.csv?action=device.command", headers=entries.headers("staff_hackney")
    )
    assert len(list(csv.DictReader(io.StringIO(every.text)))) == 51  # past one page and chunk


def test_the_risk_export_keeps_typed_names_from_running_as_formulas(
    client: TestClient,  # noqa: F811
    fleet_ctx: FleetContext,  # noqa: F811
    world: World,  # noqa: F811
) -> None:
    with fleet_ctx.sessions.begin() as s:
        hackney = s.get(Borough, world.borough_ids["hackney"])
        assert hackney is not None
        estate = places.create_estate(s, borough=hackney, name="@SUM(1,2)")
        places.create_property(s, borough=hackney, reference="-2+3", estate_id=estate.id)
    reply = TestClient(client.app).get(
        "/api/v1/boroughs/hackney/risk/export.csv", headers=world.headers("staff_hackney")
    )
    rows = list(csv.reader(io.StringIO(reply.text)))
    assert ["'-2+3", "'@SUM(1,2)"] in [row[:2] for row in rows]
    assert ["HACKNEY-0001", ""] in [row[:2] for row in rows]  # plain text as it was


def _rows(page: str) -> list[tuple[str, str]]:
    return re.findall(
        r'<tr data-entry="\d+">.*?data-field="action">([^<]+)<.*?data-field="target">(.*?)</td>',
        page,
        re.S,
    )


def test_the_page_filters_links_targets_and_exports_what_it_shows(
    client: TestClient,  # noqa: F811
    entries: World,
) -> None:
    sign_in(client, "staff_hackney")
    page = client.get("/audit?action=case.step").text
    rows = _rows(page)
    assert len(rows) == 1 and rows[0][0] == "case.step"
    assert 'href="/cases/7">open</a>' in rows[0][1]
    assert 'href="/audit?target_type=case&amp;target_id=7"' in rows[0][1]
    assert "1 entry, newest first · page 1 of 1" in page
    assert 'href="/api/v1/audit/export.csv?action=case.step"' in page
    download = client.get("/api/v1/audit/export.csv?action=case.step")  # signed-in session
    assert [r["target_id"] for r in csv.DictReader(io.StringIO(download.text))] == ["7"]
    assert "<option selected>case.step</option>" in page
    assert "ota_rollout" in page  # target types offered are those in the reader's entries

    day = client.get("/audit?from=2026-03-02&to=2026-03-02").text  # "to" is a whole day
    assert [a for a, _ in _rows(day)] == ["property.update"]
    assert "since=2026-03-02T00%3A00%3A00%2B00%3A00&amp;until=2026-03-03T00" in day

    commands = client.get("/audit?action=device.command").text
    assert "51 entries, newest first · page 1 of 2" in commands
    assert 'href="?action=device.command&amp;page=2">Older' in commands
    assert len(_rows(client.get("/audit?action=device.command&page=2").text)) == 1

    for query, said in (
        ("from=2026-03-03&to=2026-03-01", "Not searched: “from” must be on or before “to”"),
        ("from=yesterday", "Not searched: from is not a date (YYYY-MM-DD): &#39;yesterday&#39;"),
    ):
        bad = client.get(f"/audit?{query}")
        assert bad.status_code == 200 and said in bad.text
        assert _rows(bad.text) == [] and "export.csv" not in bad.text
    assert "No entry matches these filters." in client.get("/audit?actor=nobody").text
