"""The dashboard on a phone (390 px wide): the header wraps so Sign out stays on screen, wide
tables scroll inside their own box and no page scrolls sideways; a laptop keeps one header row."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.dashboard.conftest import save_screenshot, sign_in
from tests.dashboard.test_risk_pages import fleet  # noqa: F401  (a property at risk, a case)
from tests.fleet.server import RunningFleet

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
PAGES = (
    "/",
    "/alerts",
    "/registry",
    "/registry/properties/1",
    "/risk",
    "/cases",
    "/rollouts",
    "/audit",
    "/tokens",
    "/devices/cs-hackney-0001",
    "/no-such-page",
)


def _page_width(page) -> int:  # type: ignore[no-untyped-def]
    return int(page.evaluate("document.documentElement.scrollWidth"))


def test_pages_fit_a_phone_screen(
    fleet: RunningFleet,  # noqa: F811
    browser,  # type: ignore[no-untyped-def]
) -> None:
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    try:
        sign_in(page, fleet.base_url, "admin")
        page.goto(fleet.base_url + "/cases")
        first_case = page.locator("#cases a[href^='/cases/']").first.get_attribute("href")
        assert first_case, "the risk sweep opened no case"
        for path in (*PAGES, first_case):
            page.goto(fleet.base_url + path)
            assert _page_width(page) <= PHONE["width"], f"{path} scrolls sideways"
            header = page.locator("header.top").bounding_box()
            sign_out = page.get_by_role("button", name="Sign out").bounding_box()
            assert header and sign_out, path
            # On the header's own background, within the screen, and not most of it.
            assert sign_out["x"] >= 0 and sign_out["x"] + sign_out["width"] <= PHONE["width"]
            assert header["y"] <= sign_out["y"]
            assert sign_out["y"] + sign_out["height"] <= header["y"] + header["height"]
            assert header["height"] <= PHONE["height"] / 4, path

        # The case's deadline table is wider than the screen: it scrolls, and its last column
        # (whether a step is overdue) can be brought into view.
        page.goto(fleet.base_url + first_case)
        deadlines = page.locator("table.deadlines")
        assert deadlines.evaluate("t => t.scrollWidth > t.clientWidth")
        state = deadlines.locator("tr[data-step=investigation] .badge")
        state.scroll_into_view_if_needed()
        box = state.bounding_box()
        assert box is not None and box["x"] + box["width"] <= PHONE["width"]
        assert _page_width(page) <= PHONE["width"]
        save_screenshot(page, "phone-case")

        page.goto(fleet.base_url + "/")
        expect(page.locator("#live-state")).to_contain_text("Live")
        save_screenshot(page, "phone-overview")
        page.get_by_role("button", name="Sign out").click()
        expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    finally:
        context.close()


def test_a_laptop_keeps_one_header_row_and_full_width_tables(
    fleet: RunningFleet,  # noqa: F811
    browser,  # type: ignore[no-untyped-def]
) -> None:
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    page = context.new_page()
    try:
        sign_in(page, fleet.base_url, "admin")
        brand = page.locator("header.top .brand").bounding_box()
        sign_out = page.get_by_role("button", name="Sign out").bounding_box()
        assert brand and sign_out
        assert brand["y"] <= sign_out["y"] + sign_out["height"] / 2 <= brand["y"] + brand["height"]
        table = page.locator("#devices")
        assert table.evaluate("t => getComputedStyle(t).display") == "table"
        main = page.locator("main").bounding_box()
        box = table.bounding_box()
        assert main and box and box["width"] > main["width"] * 0.9
    finally:
        context.close()
