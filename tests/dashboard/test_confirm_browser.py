"""Forms that change something for good ask first, in a real browser, whatever the name they
show: a quote in a property reference neither skips the question nor runs as script."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from fleet.models import Borough, Property
from fleet.registry import places
from tests.dashboard.conftest import sign_in
from tests.fleet.server import RunningFleet

pytestmark = pytest.mark.browser

REFERENCE = "O'Brien Ct 1'+alert(document.title)+'"


def test_a_quote_in_a_name_still_asks_and_never_runs(fleet: RunningFleet, page) -> None:  # type: ignore[no-untyped-def]
    with fleet.ctx.sessions.begin() as s:
        hackney = s.scalars(select(Borough).where(Borough.code == "hackney")).one()
        prop_id = places.create_property(s, borough=hackney, reference=REFERENCE).id
    asked: list[str] = []

    def answer(dialog) -> None:  # type: ignore[no-untyped-def]
        asked.append(dialog.message)
        dialog.accept() if len(asked) > 1 else dialog.dismiss()

    page.on("dialog", answer)
    sign_in(page, fleet.base_url, "staff_hackney")
    page.goto(f"{fleet.base_url}/registry/properties/{prop_id}")
    page.get_by_role("button", name="Delete property").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("O'Brien Ct 1")
    assert asked == [f"Delete property {REFERENCE}?"]  # dismissed: nothing happens
    with fleet.ctx.sessions() as s:
        assert s.get(Property, prop_id) is not None

    page.get_by_role("button", name="Delete property").click()
    expect(page.get_by_role("status")).to_contain_text("deleted")
    assert asked == [f"Delete property {REFERENCE}?"] * 2
    with fleet.ctx.sessions() as s:
        assert s.get(Property, prop_id) is None
