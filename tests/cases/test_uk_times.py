"""Case pages and evidence show UK wall-clock times with their zone, UK-date deadlines say
they are UK dates, and daily means are UK days: a reader never has to convert from UTC."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from fleet.cases.views import daily_summary
from fleet.core.context import FleetContext
from fleet.dashboard.audit_page import page_filter
from fleet.dashboard.templating import fmt_basis, fmt_day, fmt_due, fmt_time
from fleet.models import Placement, Property
from fleet.risk.service.settings import RiskSettings
from fleet.risk.service.sweep import sweep
from fleet.risk.workdays import emergency_deadline, written_summary_deadline
from tests.cases.rooms import DAMP, samples, store
from tests.fleet.conftest import PASSWORD, World


@pytest.mark.parametrize(
    ("instant", "shown"),
    [
        (datetime(2026, 6, 15, 23, 30, tzinfo=UTC), "2026-06-16 00:30 BST"),
        (datetime(2026, 12, 1, 9, 0, tzinfo=UTC), "2026-12-01 09:00 GMT"),
        # The repeated October hour: the zone tells the two 01:30s apart.
        (datetime(2026, 10, 25, 0, 30, tzinfo=UTC), "2026-10-25 01:30 BST"),
        (datetime(2026, 10, 25, 1, 30, tzinfo=UTC), "2026-10-25 01:30 GMT"),
        (datetime(2026, 3, 29, 1, 0, tzinfo=UTC), "2026-03-29 02:00 BST"),
        (datetime(2026, 6, 15, 23, 30), "2026-06-16 00:30 BST"),  # naive: stored UTC
        ("2026-06-15T23:30:00+00:00", "2026-06-16 00:30 BST"),
    ],
)
def test_times_are_uk_wall_clock_with_the_zone(instant: datetime | str, shown: str) -> None:
    assert fmt_time(instant) == shown


def test_deadlines_say_which_day_and_from_what() -> None:
    done = datetime(2026, 6, 15, 23, 30, tzinfo=UTC)  # 00:30 BST on Tuesday 16 June
    summary = written_summary_deadline(done)
    assert fmt_due(summary) == "end of 2026-06-19 (UK date)"
    assert fmt_basis(summary) == "3 working days after 2026-06-16 (UK date)"
    emergency = emergency_deadline(done)
    assert fmt_due(emergency) == "2026-06-17 00:30 BST"
    assert fmt_basis(emergency) == "24 hours from 2026-06-16 00:30 BST"
    assert fmt_day(done) == "2026-06-16" and fmt_day(date(2026, 6, 15)) == "2026-06-15"


def test_audit_page_dates_are_uk_days() -> None:
    """The audit page shows UK times, so its "from" and "to" are UK days too."""
    wanted = page_filter("", "", "", "", "2026-06-16", "2026-06-16")
    assert wanted.since == datetime(2026, 6, 15, 23, tzinfo=UTC)
    assert wanted.until == datetime(2026, 6, 16, 23, tzinfo=UTC)


def _rows(html: str) -> dict[str, list[str]]:
    """Deadline rows by step: the cells' text."""
    out = {}
    for step, body in re.findall(r'<tr data-step="([^"]+)"[^>]*>(.*?)</tr>', html, re.S):
        cells = re.findall(r"<td[^>]*>(.*?)</td>", body, re.S)
        out[step] = [re.sub(r"<[^>]+>|\s+", " ", c).strip() for c in cells]
    return out


def test_case_page_and_evidence_read_in_uk_time(
    fleet_ctx: FleetContext, world: World, client: TestClient
) -> None:
    pid = int(
        client.get("/api/v1/boroughs/hackney/properties", headers=world.headers("admin")).json()[0][
            "id"
        ]
    )
    client.post("/login", data={"email": "staff_hackney@example.org", "password": PASSWORD})
    csrf = re.search(r'name="csrf" value="([^"]+)"', client.get(f"/risk/properties/{pid}").text)
    assert csrf is not None
    token = csrf.group(1)
    opened = client.post(
        f"/risk/properties/{pid}/cases", data={"csrf": token, "aware_at": "2026-06-01T10:00"}
    )
    assert opened.status_code == 200, opened.text
    cid = int(re.search(r"/cases/(\d+)/evidence", opened.text).group(1))  # type: ignore[union-attr]
    for step, at, said in (
        ("investigation", "2026-06-16T00:30", "Investigation recorded"),
        ("note", "2026-07-01T09:00", "Note recorded"),
    ):
        form = {"csrf": token, "step": step, "at": at, "note": "tenant phoned"}
        done = client.post(f"/cases/{cid}/steps", data=form)
        assert done.status_code == 200 and said in done.text, done.text

    pages = {
        "case page": client.get(f"/cases/{cid}").text,
        "printable": client.get(f"/cases/{cid}/evidence").text,
        "API evidence": client.get(
            f"/api/v1/cases/{cid}/evidence", headers=world.headers("admin")
        ).text,
    }
    for name, html in pages.items():
        rows = _rows(html)
        # Done at 00:30 BST on the 16th: late for a step due by the end of the 15th, and
        # both say so in the same clock.
        assert rows["investigation"][1:5] == [
            "end of 2026-06-15 (UK date)",
            "10 working days after 2026-06-01 (UK date)",
            "2026-06-16 00:30 BST",
            "late",
        ], name
        assert rows["written_summary"][1:3] == [
            "end of 2026-06-19 (UK date)",
            "3 working days after 2026-06-16 (UK date)",
        ], name
        assert "2026-06-01 10:00 BST" in html, name  # awareness as typed
        assert "2026-07-01 09:00 BST" in html, name  # the note's time as typed
        assert " UTC" not in html, name
    listed = client.get("/cases").text
    assert "by end of 2026-06-19 (UK date)" in listed


def test_daily_means_are_uk_days(fleet_ctx: FleetContext, world: World) -> None:
    """00:00-00:59 BST on 16 June is 23:00 UTC on the 15th: it belongs to the 16th's row."""
    start = datetime(2026, 6, 15, tzinfo=UTC)  # 01:00 BST
    placement = store(fleet_ctx, "cs-hackney-0001", list(samples(DAMP, start, 48)))
    sweep(fleet_ctx.sessions, RiskSettings(), now=start + timedelta(days=2))
    with fleet_ctx.sessions() as s:
        prop = s.get_one(Property, s.get_one(Placement, placement).property_id)
        days = daily_summary(s, prop, since=None, until=None)
    hours = {d["day"]: d["hours"] for d in days}
    # 47 processed hours: 01:00-23:59 BST on the 15th, then 00:00-23:59 BST on the 16th.
    assert hours == {"2026-06-15": 23, "2026-06-16": 24}
