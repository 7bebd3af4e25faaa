"""What changes an open case: a linked emergency report, an investigation that finds no further
works needed, and sensor risk that goes on after a case was closed."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select

from fleet.access.principal import SYSTEM
from fleet.cases import service
from fleet.cases.deadlines import CaseStep
from fleet.core.context import FleetContext
from fleet.models import Case, CaseEvent, Property, PropertyRisk, RiskLevelChange
from fleet.risk.level import RiskLevel
from fleet.risk.service.settings import RiskSettings
from fleet.risk.service.sweep import sweep
from tests.cases.rooms import DAMP, samples, store
from tests.fleet.conftest import PASSWORD, World


def _property_id(client: TestClient, world: World) -> int:
    rows = client.get("/api/v1/boroughs/hackney/properties", headers=world.headers("admin"))
    return int(rows.json()[0]["id"])


def _deadlines(case: dict) -> dict[str, dict]:
    return {d["step"]: d for d in case["deadlines"]}


def test_an_emergency_report_raises_the_open_case_and_keeps_its_earlier_awareness(
    fleet_ctx: FleetContext, world: World, client: TestClient
) -> None:
    pid = _property_id(client, world)
    h = world.headers("staff_hackney")
    opened = client.post(
        f"/api/v1/properties/{pid}/cases", json={"aware_at": "2026-03-09T09:00:00Z"}, headers=h
    )
    assert opened.status_code == 201 and opened.json()["hazard"] == "significant"
    cid = opened.json()["id"]

    # The tenant reported the emergency four days before the case's awareness.
    linked = client.post(
        f"/api/v1/properties/{pid}/cases",
        json={
            "hazard": "emergency",
            "aware_at": "2026-03-05T09:00:00Z",
            "note": "ceiling black with mould over the baby's cot",
        },
        headers=h,
    )
    assert linked.status_code == 200, linked.text
    case = linked.json()
    assert case["id"] == cid and case["hazard"] == "emergency"
    assert datetime.fromisoformat(case["steps"]["aware"]) == datetime(2026, 3, 5, 9, tzinfo=UTC)
    assert [d["step"] for d in case["deadlines"]] == ["safety_work"]  # the 24 hours alone
    assert case["deadlines"][0]["due_before"] == "2026-03-06T09:00:00+00:00"
    assert case["overdue"] == ["safety_work"]
    assert len(case["changes"]) == 2
    assert "emergency" in case["changes"][0] and "2026-03-05 09:00 UTC" in case["changes"][1]
    kinds = [e["kind"] for e in case["timeline"]]
    assert {"linked", "hazard_raised", "aware"} <= set(kinds)
    aware = next(e for e in case["timeline"] if e["kind"] == "aware")
    assert aware["note"] == "earlier awareness from a linked report"

    audit = client.get("/api/v1/audit", headers=h).json()
    actions = {e["action"] for e in audit if e["target_type"] == "case"}
    assert {"case.linked", "case.hazard_raised", "case.aware"} <= actions

    # A later or less urgent report never moves a time later nor lowers the hazard.
    again = client.post(
        f"/api/v1/properties/{pid}/cases",
        json={"hazard": "significant", "aware_at": "2026-03-07T09:00:00Z"},
        headers=h,
    ).json()
    assert again["hazard"] == "emergency" and again["changes"] == []
    assert again["deadlines"][0]["due_before"] == "2026-03-06T09:00:00+00:00"


def test_an_emergency_reported_later_counts_its_24_hours_from_the_report(
    fleet_ctx: FleetContext, world: World, client: TestClient
) -> None:
    """The landlord knew of a significant hazard first: the emergency's 24 hours count from the
    emergency report, and the significant investigation deadline already running stays."""
    pid = _property_id(client, world)
    h = world.headers("staff_hackney")
    opened = client.post(
        f"/api/v1/properties/{pid}/cases", json={"aware_at": "2026-03-02T09:00:00Z"}, headers=h
    ).json()
    case = client.post(
        f"/api/v1/properties/{pid}/cases",
        json={"hazard": "emergency", "aware_at": "2026-03-20T09:00:00Z"},
        headers=h,
    ).json()
    assert case["id"] == opened["id"] and case["hazard"] == "emergency"
    assert datetime.fromisoformat(case["steps"]["aware"]) == datetime(2026, 3, 2, 9, tzinfo=UTC)
    assert datetime.fromisoformat(case["emergency_at"]) == datetime(2026, 3, 20, 9, tzinfo=UTC)
    dl = _deadlines(case)
    assert list(dl) == ["investigation", "safety_work"]
    assert dl["investigation"]["due_date"] == "2026-03-16"  # 10 working days, already missed
    assert dl["safety_work"]["due_before"] == "2026-03-21T09:00:00+00:00"
    assert set(case["overdue"]) == {"investigation", "safety_work"}

    # An earlier emergency report moves the 24 hours back; the significant awareness stays.
    earlier = client.post(
        f"/api/v1/properties/{pid}/cases",
        json={"hazard": "emergency", "aware_at": "2026-03-18T09:00:00Z"},
        headers=h,
    ).json()
    assert earlier["changes"] == [
        "emergency awareness moved from 2026-03-20 09:00 UTC to 2026-03-18 09:00 UTC"
    ]
    assert _deadlines(earlier)["safety_work"]["due_before"] == "2026-03-19T09:00:00+00:00"
    assert earlier["steps"]["aware"] == case["steps"]["aware"]
    assert "emergency_aware" in [e["kind"] for e in earlier["timeline"]]

    # The emergency makes safety work possible before the investigation, as for any emergency.
    steps = f"/api/v1/cases/{case['id']}/steps"
    made_safe = client.post(
        steps, json={"step": "safety_work", "at": "2026-03-20T18:00:00Z"}, headers=h
    )
    assert made_safe.status_code == 200, made_safe.text


def test_the_dashboard_says_what_a_linked_report_changed(
    fleet_ctx: FleetContext, world: World, client: TestClient
) -> None:
    pid = _property_id(client, world)
    h = world.headers("staff_hackney")
    client.post(
        f"/api/v1/properties/{pid}/cases", json={"aware_at": "2026-03-09T09:00:00Z"}, headers=h
    )
    client.post("/login", data={"email": "staff_hackney@example.org", "password": PASSWORD})
    csrf = re.search(r'name="csrf" value="([^"]+)"', client.get(f"/risk/properties/{pid}").text)
    assert csrf is not None
    page = client.post(
        f"/risk/properties/{pid}/cases",
        data={"csrf": csrf.group(1), "hazard": "emergency", "aware_at": "2026-03-05T09:00"},
    )
    assert page.status_code == 200, page.text  # followed to the case page
    assert "report linked to this open case; hazard raised to emergency" in page.text
    hazard = re.search(r'<dd data-field="hazard">([^<]+)', page.text)
    assert hazard is not None and hazard.group(1).startswith("emergency")
    assert "Statutory deadlines (emergency hazard)" in page.text


def test_no_further_works_needed_reads_not_required_instead_of_overdue_or_not_done(
    fleet_ctx: FleetContext, world: World, client: TestClient
) -> None:
    pid = _property_id(client, world)
    h = world.headers("staff_hackney")
    cid = client.post(
        f"/api/v1/properties/{pid}/cases", json={"aware_at": "2026-01-05T09:00:00Z"}, headers=h
    ).json()["id"]
    steps = f"/api/v1/cases/{cid}/steps"
    early = client.post(steps, json={"step": "no_further_works"}, headers=h)
    assert early.status_code == 422 and "investigation" in early.json()["detail"]
    for step, at in (
        ("investigation", "2026-01-08T10:00:00Z"),
        ("no_further_works", "2026-01-08T10:00:00Z"),
        ("written_summary", "2026-01-09T10:00:00Z"),
        ("safety_work", "2026-01-12T10:00:00Z"),
    ):
        r = client.post(
            steps, json={"step": step, "at": at, "note": "no further works needed"}, headers=h
        )
        assert r.status_code == 200, r.text
    case = r.json()
    states = {d["step"]: d["state"] for d in case["deadlines"]}
    assert states == {
        "investigation": "done",
        "written_summary": "done",
        "safety_work": "done",
        "further_works_begun": "not_required",
        "further_works_started": "not_required",
    }
    assert case["overdue"] == []
    row = next(
        r
        for r in client.get("/api/v1/boroughs/hackney/risk", headers=h).json()
        if r["property_id"] == pid
    )
    assert row["open_case_id"] == cid and row["overdue_steps"] == []

    # Works after "none needed" contradict it: a note explains, or a new case records them.
    works = client.post(steps, json={"step": "further_works_begun"}, headers=h)
    assert works.status_code == 409 and "no further works needed" in works.json()["detail"]

    closed = client.post(f"/api/v1/cases/{cid}/close", json={"note": "done"}, headers=h).json()
    states = {d["step"]: d["state"] for d in closed["deadlines"]}
    assert states["further_works_begun"] == states["further_works_started"] == "not_required"
    evidence = client.get(f"/api/v1/cases/{cid}/evidence", headers=h).text
    assert "not required" in evidence and "not done" not in evidence
    client.post("/login", data={"email": "staff_hackney@example.org", "password": PASSWORD})
    page = client.get(f"/cases/{cid}").text
    assert page.count("dl-not_required") == 4  # two rows, two badges
    assert "not done" not in page and 'data-field="further-works"' in page


def test_no_further_works_is_refused_once_works_are_recorded(
    fleet_ctx: FleetContext, world: World, client: TestClient
) -> None:
    pid = _property_id(client, world)
    h = world.headers("staff_hackney")
    cid = client.post(
        f"/api/v1/properties/{pid}/cases", json={"aware_at": "2026-01-05T09:00:00Z"}, headers=h
    ).json()["id"]
    steps = f"/api/v1/cases/{cid}/steps"
    for step in ("investigation", "further_works_begun"):
        assert client.post(steps, json={"step": step}, headers=h).status_code == 200
    refused = client.post(steps, json={"step": "no_further_works"}, headers=h)
    assert refused.status_code == 409 and "further works begun" in refused.json()["detail"]


def _cases(ctx: FleetContext) -> list[tuple[int, str, str | None]]:
    with ctx.sessions() as s:
        rows = s.scalars(select(Case).order_by(Case.id)).all()
        return [(c.id, c.status, None if c.trigger is None else c.trigger["level"]) for c in rows]


def test_closing_while_the_risk_goes_on_opens_no_new_case_until_it_rises(
    fleet_ctx: FleetContext, world: World
) -> None:
    """A case closed at "high" is not reopened by the same high risk hour after hour (a fresh
    clock each time); risk above the level at closing opens a new case."""
    t0 = datetime(2026, 1, 5, tzinfo=UTC)
    settings = RiskSettings()
    store(fleet_ctx, "cs-hackney-0001", list(samples(DAMP, t0, 24 * 7)))
    now = t0 + timedelta(days=7)
    sweep(fleet_ctx.sessions, settings, now=now)
    with fleet_ctx.sessions.begin() as s:
        case = s.scalars(select(Case)).one()
        assert s.scalars(select(PropertyRisk)).one().level == "high"
        service.record_step(
            s, case=case, step=CaseStep.INVESTIGATION, at=now, principal=SYSTEM, now=now
        )
        service.close_case(s, case=case, principal=SYSTEM, now=now, note="no hazard found")

    t = now
    for _ in range(3):  # the hourly sweeps after closing
        store(fleet_ctx, "cs-hackney-0001", list(samples(DAMP, t, 1)))
        t += timedelta(hours=1)
        sweep(fleet_ctx.sessions, settings, now=t)
    with fleet_ctx.sessions() as s:
        assert s.scalars(select(PropertyRisk)).one().level == "high"
    assert _cases(fleet_ctx) == [(1, "closed", "high")]

    level = "high"
    for _ in range(8):  # the damp goes on until visible mould is predicted
        assert _cases(fleet_ctx) == [(1, "closed", "high")]
        store(fleet_ctx, "cs-hackney-0001", list(samples(DAMP, t, 24)))
        t += timedelta(days=1)
        sweep(fleet_ctx.sessions, settings, now=t)
        with fleet_ctx.sessions() as s:
            level = s.scalars(select(PropertyRisk)).one().level
        if level == "severe":
            break
    assert level == "severe"
    assert _cases(fleet_ctx) == [(1, "closed", "high"), (2, "open", "severe")]
    with fleet_ctx.sessions() as s:
        first = s.get(Case, 1)
        assert first is not None and first.closed_level == "high"
        closed = s.scalars(select(CaseEvent).where(CaseEvent.kind == "closed")).one()
        assert closed.detail == {"risk_level": "high"}


def test_risk_that_fell_below_the_case_level_and_rose_again_opens_a_new_case(
    fleet_ctx: FleetContext, world: World
) -> None:
    """A new episode after the close is new evidence, even at the level the case closed at."""
    t0 = datetime(2026, 1, 5, tzinfo=UTC)
    settings = RiskSettings()
    store(fleet_ctx, "cs-hackney-0001", list(samples(DAMP, t0, 24 * 7)))
    closed_at = t0 + timedelta(days=7)
    sweep(fleet_ctx.sessions, settings, now=closed_at)
    with fleet_ctx.sessions.begin() as s:
        prop = s.scalars(select(Property).where(Property.reference == "HACKNEY-0001")).one()
        case = s.scalars(select(Case)).one()
        service.record_step(
            s, case=case, step=CaseStep.INVESTIGATION, at=closed_at, principal=SYSTEM, now=closed_at
        )
        service.close_case(s, case=case, principal=SYSTEM, now=closed_at)
        risk = s.get(PropertyRisk, prop.id)
        assert risk is not None and risk.level == "high"
        later = closed_at + timedelta(hours=1)
        assert (
            service.on_property_risk(s, prop=prop, risk=risk, threshold=RiskLevel.HIGH, now=later)
            is None
        )
        # The level engine records the fall and the rise as level changes.
        for at, old, new in (
            (closed_at + timedelta(days=2), "high", "elevated"),
            (closed_at + timedelta(days=5), "elevated", "high"),
        ):
            s.add(
                RiskLevelChange(
                    property_id=prop.id,
                    borough_id=prop.borough_id,
                    at=at,
                    from_level=old,
                    to_level=new,
                    score=4,
                )
            )
        s.flush()
        opened = service.on_property_risk(
            s, prop=prop, risk=risk, threshold=RiskLevel.HIGH, now=closed_at + timedelta(days=5)
        )
        assert opened is not None and opened[1] and opened[0].source == "risk"
        assert opened[0].aware_at == closed_at + timedelta(days=5)
