"""Cases on SQLite and PostgreSQL: opened by risk, linked, steps with working-day deadlines."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from fleet.core.context import FleetContext
from fleet.dashboard.templating import fmt_due
from fleet.models import AuditEntry, Case, CaseEvent, PropertyRisk
from fleet.risk.service.settings import RiskSettings
from fleet.risk.service.sweep import sweep
from fleet.risk.workdays import UK, emergency_deadline, investigation_deadline
from tests.cases.rooms import DAMP, FIXED, samples, store
from tests.fleet.conftest import PASSWORD, World

T0 = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday


def _property_id(client: TestClient, world: World, code: str) -> int:
    rows = client.get(f"/api/v1/boroughs/{code}/properties", headers=world.headers("admin"))
    return int(rows.json()[0]["id"])


def test_damp_room_opens_one_case_and_links_later_risk(
    fleet_ctx: FleetContext, world: World, client: TestClient
) -> None:
    settings = RiskSettings()
    store(fleet_ctx, "cs-hackney-0001", list(samples(FIXED, T0, 24 * 3)))
    quiet = sweep(fleet_ctx.sessions, settings, now=T0 + timedelta(days=3))
    assert quiet.placements == 1 and quiet.cases_opened == 0
    with fleet_ctx.sessions() as s:
        assert s.scalars(select(PropertyRisk)).one().level == "low"

    store(fleet_ctx, "cs-hackney-0001", list(samples(DAMP, T0 + timedelta(days=3), 24 * 8)))
    aware = T0 + timedelta(days=11)
    result = sweep(fleet_ctx.sessions, settings, now=aware)
    assert result.cases_opened == 1
    pid = _property_id(client, world, "hackney")
    risk = client.get(f"/api/v1/properties/{pid}/risk", headers=world.headers("staff_hackney"))
    body = risk.json()["risk"]
    assert body["level"] in ("high", "severe")
    codes = {e["code"] for e in body["evidence"]}
    assert {"bs5250.surface_rh80", "adf2006.rh70"} <= codes
    assert body["level_since"] is not None and body["trend"] in ("rising", "steady", "falling")

    cases = client.get("/api/v1/cases", headers=world.headers("staff_hackney")).json()
    assert len(cases) == 1
    case = cases[0]
    assert case["source"] == "risk" and case["status"] == "open"
    assert datetime.fromisoformat(case["steps"]["aware"]) == aware
    # Ten working days from Friday 16 January 2026 (no holidays in between).
    investigation = next(d for d in case["deadlines"] if d["step"] == "investigation")
    assert investigation["due_date"] == "2026-01-30"

    # More damp data: same case, a higher level is noted, nothing new opened.
    store(fleet_ctx, "cs-hackney-0001", list(samples(DAMP, T0 + timedelta(days=11), 24 * 30)))
    again = sweep(fleet_ctx.sessions, settings, now=T0 + timedelta(days=41))
    assert again.cases_opened == 0
    with fleet_ctx.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Case)) == 1
        kinds = [e.kind for e in s.scalars(select(CaseEvent).order_by(CaseEvent.id))]
        assert kinds[0] == "opened"
        opened = s.scalars(select(AuditEntry).where(AuditEntry.action == "case.opened")).one()
        assert opened.actor == "system" and opened.borough_id == world.borough_ids["hackney"]
        if s.scalars(select(PropertyRisk)).one().level == "severe" and body["level"] == "high":
            assert "risk_raised" in kinds


def test_steps_deadlines_over_bank_holidays_and_overdue_flags(
    fleet_ctx: FleetContext, world: World, client: TestClient
) -> None:
    pid = _property_id(client, world, "hackney")
    h = world.headers("staff_hackney")
    aware = datetime(2025, 12, 19, 10, 0, tzinfo=UK)  # Friday before Christmas
    r = client.post(
        f"/api/v1/properties/{pid}/cases",
        json={"aware_at": aware.isoformat(), "note": "tenant reported mould"},
        headers=h,
    )
    assert r.status_code == 201, r.text
    case = r.json()
    cid = case["id"]
    inv = next(d for d in case["deadlines"] if d["step"] == "investigation")
    # 22, 23, 24, 29, 30, 31 Dec, 2, 5, 6, 7 Jan: Christmas, Boxing Day and New Year skipped.
    assert inv["due_date"] == "2026-01-07" and inv["state"] == "overdue"
    waiting = next(d for d in case["deadlines"] if d["step"] == "written_summary")
    assert waiting["state"] == "waiting"

    # Order is enforced: a summary before an investigation is refused.
    early = client.post(f"/api/v1/cases/{cid}/steps", json={"step": "written_summary"}, headers=h)
    assert early.status_code == 422 and "investigation" in early.json()["detail"]
    before_aware = client.post(
        f"/api/v1/cases/{cid}/steps",
        json={"step": "investigation", "at": "2025-12-18T09:00:00+00:00"},
        headers=h,
    )
    assert before_aware.status_code == 422

    done = client.post(
        f"/api/v1/cases/{cid}/steps",
        json={"step": "investigation", "at": "2026-01-07T16:00:00+00:00", "note": "survey"},
        headers=h,
    )
    assert done.status_code == 200, done.text
    late = client.post(
        f"/api/v1/cases/{cid}/steps",
        json={"step": "written_summary", "at": "2026-01-13T09:00:00+00:00"},
        headers=h,
    )
    states = {d["step"]: d for d in late.json()["deadlines"]}
    assert states["investigation"]["state"] == "done"
    assert states["written_summary"]["due_date"] == "2026-01-12"
    assert states["written_summary"]["state"] == "late"
    assert states["safety_work"]["due_date"] == "2026-01-14"
    assert states["safety_work"]["state"] == "overdue"
    assert states["further_works_started"]["due_date"] == "2026-04-01"
    assert set(late.json()["overdue"]) == {
        "safety_work",
        "further_works_begun",
        "further_works_started",
    }

    again = client.post(f"/api/v1/cases/{cid}/steps", json={"step": "investigation"}, headers=h)
    assert again.status_code == 409
    future = client.post(
        f"/api/v1/cases/{cid}/steps",
        json={"step": "safety_work", "at": (datetime.now(UTC) + timedelta(days=2)).isoformat()},
        headers=h,
    )
    assert future.status_code == 422

    # A second report links to the open case instead of opening another.
    linked = client.post(f"/api/v1/properties/{pid}/cases", json={"note": "again"}, headers=h)
    assert linked.status_code == 200 and linked.json()["id"] == cid

    closed = client.post(f"/api/v1/cases/{cid}/close", json={"note": "fixed"}, headers=h)
    assert closed.status_code == 200 and closed.json()["status"] == "closed"
    assert client.post(f"/api/v1/cases/{cid}/close", headers=h).status_code == 409
    final = {d["step"]: d["state"] for d in closed.json()["deadlines"]}
    assert final["safety_work"] == "not_done" and closed.json()["overdue"] == []

    audit = client.get("/api/v1/audit", headers=h).json()
    actions = [e["action"] for e in audit if e["target_type"] == "case"]
    for action in (
        "case.opened",
        "case.investigation",
        "case.written_summary",
        "case.linked",
        "case.closed",
    ):
        assert action in actions
    assert all(
        e["borough_id"] == world.borough_ids["hackney"] for e in audit if e["target_type"] == "case"
    )


def test_readonly_and_technicians_cannot_act_on_cases(
    fleet_ctx: FleetContext, world: World, client: TestClient
) -> None:
    pid = _property_id(client, world, "hackney")
    for who in ("readonly_hackney", "tech_hackney"):
        r = client.post(f"/api/v1/properties/{pid}/cases", json={}, headers=world.headers(who))
        assert r.status_code == 403
    assert client.get("/api/v1/cases", headers=world.headers("readonly_hackney")).status_code == 200


def test_an_emergency_deadline_is_shown_to_the_hour(
    fleet_ctx: FleetContext, world: World, client: TestClient
) -> None:
    """24 hours from awareness is an instant: the day alone would read as "by the end of it"."""
    pid = _property_id(client, world, "hackney")
    client.post("/login", data={"email": "staff_hackney@example.org", "password": PASSWORD})
    csrf = re.search(r'name="csrf" value="([^"]+)"', client.get(f"/risk/properties/{pid}").text)
    assert csrf is not None
    opened = client.post(
        f"/risk/properties/{pid}/cases",
        data={"csrf": csrf.group(1), "hazard": "emergency", "aware_at": "2026-07-01T09:30"},
    )
    assert opened.status_code == 200, opened.text  # followed to the case page
    due = re.findall(r'<td data-field="due">([^<]+)</td>', opened.text)
    assert due == ["2026-07-02 09:30 BST"]  # 24 hours on, in the UK time it was typed in
    listed = client.get("/cases").text
    assert "by 2026-07-02 09:30 BST" in listed

    # A deadline counted in working days is the last UK day in time: shown as that day.
    aware = datetime(2026, 7, 1, 8, 30, tzinfo=UTC)
    assert fmt_due(investigation_deadline(aware)) == "end of 2026-07-15 (UK date)"
    assert fmt_due(emergency_deadline(aware)) == "2026-07-02 09:30 BST"


def test_awareness_is_corrected_only_to_earlier_and_never_before_the_calendar(
    fleet_ctx: FleetContext, world: World, client: TestClient
) -> None:
    """A later awareness date would push every deadline back and hide one already missed; a
    year typo (1900) would leave deadlines uncountable and the case never flagged overdue."""
    pid = _property_id(client, world, "hackney")
    h = world.headers("staff_hackney")
    opened = client.post(
        f"/api/v1/properties/{pid}/cases", json={"aware_at": "2026-01-05T09:00:00+00:00"}, headers=h
    )
    cid = opened.json()["id"]
    assert opened.json()["overdue"] == ["investigation"]
    steps = f"/api/v1/cases/{cid}/steps"
    later = client.post(steps, json={"step": "aware", "at": "2026-02-02T09:00:00+00:00"}, headers=h)
    assert later.status_code == 422
    assert "can only be corrected to an earlier time" in later.json()["detail"]
    case = client.get(f"/api/v1/cases/{cid}", headers=h).json()
    assert case["overdue"] == ["investigation"] and case["steps"]["aware"].startswith("2026-01-05")
    earlier = client.post(
        steps, json={"step": "aware", "at": "2026-01-02T09:00:00+00:00"}, headers=h
    )
    assert earlier.status_code == 200 and earlier.json()["steps"]["aware"].startswith("2026-01-02")

    for body in ({"aware_at": "1900-01-01T10:00:00+00:00"}, {"aware_at": "0001-01-01T00:00:00Z"}):
        typo = client.post(f"/api/v1/properties/{pid}/cases", json=body, headers=h)
        assert typo.status_code == 422 and "before 2024-01-01" in typo.json()["detail"], typo.text
    typo = client.post(steps, json={"step": "aware", "at": "1999-01-02T09:00:00+00:00"}, headers=h)
    assert typo.status_code == 422 and "check the year" in typo.json()["detail"]


def test_the_step_form_records_nothing_until_a_step_is_chosen(
    fleet_ctx: FleetContext, world: World, client: TestClient
) -> None:
    pid = _property_id(client, world, "hackney")
    h = world.headers("staff_hackney")
    opened = client.post(
        f"/api/v1/properties/{pid}/cases", json={"aware_at": "2026-01-05T09:00:00+00:00"}, headers=h
    )
    cid = opened.json()["id"]
    client.post("/login", data={"email": "staff_hackney@example.org", "password": PASSWORD})
    page = client.get(f"/cases/{cid}").text
    assert '<option value="" selected disabled>Choose a step…</option>' in page
    assert 'maxlength="2000"' in page and 'min="2024-01-01T00:00"' in page
    csrf = re.search(r'name="csrf" value="([^"]+)"', page)
    assert csrf is not None
    said = client.post(
        f"/cases/{cid}/steps", data={"csrf": csrf.group(1), "step": "", "note": "investigated"}
    )
    assert "nothing recorded: choose a step" in said.text
    case = client.get(f"/api/v1/cases/{cid}", headers=h).json()
    assert case["steps"]["aware"].startswith("2026-01-05") and case["overdue"] == ["investigation"]
