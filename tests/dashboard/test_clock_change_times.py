"""A time typed for the night the UK clocks change is placed where it really was: the hour
that happens twice is asked about, the hour that never happens is refused."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from fleet.dashboard.uk_time import UkTimeError, uk_time
from fleet.models import CaseEvent, Property
from tests.dashboard.test_ota_pages import client, csrf_of, recorder, sign_in  # noqa: F401
from tests.dashboard.test_refill import _field, _marked, _message
from tests.fleet.conftest import World, fleet_ctx, world  # noqa: F401

# 2026: clocks go forward on 29 March (01:00 GMT -> 02:00 BST), back on 25 October
# (02:00 BST -> 01:00 GMT).


def test_ordinary_times_are_uk_wall_clock_time() -> None:
    assert uk_time("2026-01-15T09:30", field="at") == datetime(2026, 1, 15, 9, 30, tzinfo=UTC)
    assert uk_time("2026-07-15T09:30", field="at") == datetime(2026, 7, 15, 8, 30, tzinfo=UTC)
    assert uk_time("", field="at") is None


def test_the_repeated_hour_needs_its_clock_and_the_skipped_hour_is_refused() -> None:
    with pytest.raises(UkTimeError, match="happened twice") as asked:
        uk_time("2026-10-25T01:30", field="at")
    assert asked.value.field == "clock"
    first = uk_time("2026-10-25T01:30", field="at", clock="BST")
    second = uk_time("2026-10-25T01:30", field="at", clock="GMT")
    assert first == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    assert second == datetime(2026, 10, 25, 1, 30, tzinfo=UTC)
    with pytest.raises(UkTimeError, match="did not happen") as skipped:
        uk_time("2026-03-29T01:30", field="aware_at", clock="GMT")
    assert skipped.value.field == "aware_at"
    # Either side of the changes needs no choice.
    assert uk_time("2026-10-25T02:30", field="at") == datetime(2026, 10, 25, 2, 30, tzinfo=UTC)
    assert uk_time("2026-03-29T02:30", field="at") == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    with pytest.raises(UkTimeError, match="is not a date and time"):
        uk_time("25/10/2026 01:30", field="at")


def test_a_step_in_the_repeated_hour_asks_which_and_records_the_answer(
    client: TestClient,  # noqa: F811
    world: World,  # noqa: F811
) -> None:
    staff = world.headers("staff_hackney")
    with world.ctx.sessions() as s:
        pid = s.scalars(select(Property.id).where(Property.reference == "HACKNEY-0001")).one()
    opened = client.post(
        f"/api/v1/properties/{pid}/cases", json={"aware_at": "2026-10-20T09:00:00Z"}, headers=staff
    )
    case_id = opened.json()["id"]
    investigated = (CaseEvent.case_id == case_id, CaseEvent.kind == "investigation")
    here = f"/cases/{case_id}"
    sign_in(client, "staff_hackney")
    note = "Surveyor on site overnight after the leak."
    form = {"csrf": csrf_of(client, here), "step": "investigation", "at": "2026-10-25T01:30"}
    r = client.post(f"{here}/steps", data={**form, "note": note})
    assert r.status_code == 422
    assert "happened twice" in _message(r.text)
    assert _marked(r.text, "step-form", "clock")
    assert _field(r.text, "step-form", "at")["value"] == "2026-10-25T01:30"
    assert note in r.text
    with world.ctx.sessions() as s:
        assert not s.scalars(select(CaseEvent).where(*investigated)).all()

    r = client.post(f"{here}/steps", data={**form, "clock": "GMT"}, follow_redirects=False)
    assert r.status_code == 303
    with world.ctx.sessions() as s:
        event = s.scalars(select(CaseEvent).where(*investigated)).one()
        at = event.at if event.at.tzinfo else event.at.replace(tzinfo=UTC)
    assert at == datetime(2026, 10, 25, 1, 30, tzinfo=UTC)


def test_a_case_aware_since_a_skipped_time_is_refused_on_that_field(
    client: TestClient,  # noqa: F811
    world: World,  # noqa: F811
) -> None:
    with world.ctx.sessions() as s:
        pid = s.scalars(select(Property.id).where(Property.reference == "HACKNEY-0001")).one()
    here = f"/risk/properties/{pid}"
    sign_in(client, "staff_hackney")
    form = {"csrf": csrf_of(client, here), "hazard": "emergency", "aware_at": "2026-03-29T01:15"}
    r = client.post(f"{here}/cases", data=form)
    assert r.status_code == 422
    assert "did not happen in the UK" in _message(r.text)
    assert _marked(r.text, "open-case", "aware_at")
    assert 'name="clock"' not in r.text  # nothing to choose for a time that never was
