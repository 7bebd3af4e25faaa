"""WCAG 2.2 AA properties of the dashboard in a real browser: the skip link, named tables and
headers, sign-in errors tied to their fields, 24 px targets, tables a keyboard can scroll on a
phone, and live updates that keep focus, announce state changes politely and can be paused.
One populated fleet serves the whole module."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from fleet.core.context import FleetContext, build_context
from fleet.core.settings import Settings
from fleet.ingest.handler import IngestHandler
from fleet.models import Borough, Device
from fleet.registry.devices import register_device, retire
from fleet.risk.service.settings import RiskSettings
from fleet.risk.service.sweep import sweep
from tests.cases.rooms import DAMP, samples, store
from tests.dashboard.conftest import sign_in
from tests.dashboard.ota_data import hackney_rollout, publish_release
from tests.fleet.conftest import PASSWORD, World
from tests.fleet.packs import telemetry
from tests.fleet.server import RunningFleet, running_fleet

pytestmark = pytest.mark.browser

DESK = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}
# Every kind of page a signed-in admin reaches; CASE is the first case the risk sweep opened,
# RETIRED the page of the device retired in the module's fleet.
PAGES = (
    "/",
    "/devices/cs-hackney-0001",
    "/alerts",
    "/registry",
    "/registry/properties/1",
    "/registry/retired",
    "RETIRED",
    "/risk",
    "/risk/analytics",
    "/risk/properties/1",
    "/risk/properties/1/evidence",
    "/cases",
    "CASE",
    "CASE/evidence",
    "/releases",
    "/rollouts",
    "/rollouts/1",
    "/audit",
    "/tokens",
    "/rejects",
    "/register",
    "/standards/privacy.md",
    "/no-such-page",
)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningFleet]:
    tmp: Path = tmp_path_factory.mktemp("a11y")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FLEET_RISK_SWEEP_S", "3600")
        ctx: FleetContext = build_context(
            Settings(environment="test", data_dir=tmp, embedded_broker_port=0)
        )
        World(ctx)
        start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=10)
        store(ctx, "cs-hackney-0001", list(samples(DAMP, start, 24 * 9)))
        sweep(ctx.sessions, RiskSettings())
        hackney_rollout(ctx, publish_release(ctx, tmp / "keys"))
        _retired_device(ctx)
        try:
            with running_fleet(ctx) as running:
                yield running
        finally:
            ctx.close()


@pytest.fixture(scope="module")
def desk(fleet: RunningFleet, browser) -> Iterator[object]:  # type: ignore[no-untyped-def]
    """An admin signed in on a laptop-sized window, shared by the module's tests."""
    context = browser.new_context(viewport=DESK)
    page = context.new_page()
    sign_in(page, fleet.base_url, "admin")
    try:
        yield page
    finally:
        context.close()


def _retired_device(ctx: FleetContext) -> None:
    with ctx.sessions.begin() as s:
        hackney = s.scalars(select(Borough.id).where(Borough.code == "hackney")).one()
        retire(s, register_device(s, device_id="cs-hackney-0900", borough_id=hackney))


def _retired_path(fleet: RunningFleet) -> str:
    with fleet.ctx.sessions() as s:
        pk = s.scalars(select(Device.id).where(Device.retired_at.is_not(None))).first()
    assert pk is not None, "the module's fleet has no retired device"
    return f"/registry/retired/{pk}"


def _case_path(page, base_url: str) -> str:  # type: ignore[no-untyped-def]
    page.goto(base_url + "/cases")
    href = page.locator("#cases a[href^='/cases/']").first.get_attribute("href")
    assert href, "the risk sweep opened no case"
    return str(href)


def test_skip_link_moves_focus_to_the_main_content(fleet: RunningFleet, desk) -> None:  # type: ignore[no-untyped-def]
    desk.goto(fleet.base_url + "/alerts")
    desk.keyboard.press("Tab")
    skip = desk.get_by_role("link", name="Skip to content")
    expect(skip).to_be_focused()
    assert skip.bounding_box()["x"] >= 0, "the focused skip link is on screen"
    desk.keyboard.press("Enter")
    expect(desk.locator("main")).to_be_focused()
    # The next Tab goes into the content, past the header's links.
    desk.keyboard.press("Tab")
    assert desk.evaluate("document.querySelector('main').contains(document.activeElement)")


def test_every_page_has_one_h1_a_unique_title_and_named_tables(
    fleet: RunningFleet,
    desk,  # type: ignore[no-untyped-def]
) -> None:
    case = _case_path(desk, fleet.base_url)
    retired = _retired_path(fleet)
    titles: dict[str, str] = {}
    for path in (p.replace("CASE", case).replace("RETIRED", retired) for p in PAGES):
        desk.goto(fleet.base_url + path)
        assert desk.locator("html").get_attribute("lang") == "en", path
        expect(desk.locator("h1")).to_have_count(1)
        title = desk.title()
        assert title not in titles, f"{path} has the title of {titles.get(title)}"
        titles[title] = path
        unnamed = desk.evaluate(
            # The published standard's Markdown tables have no caption; a heading names each.
            """() => [...document.querySelectorAll('main table')].filter(t => {
                 if (t.closest('article.standard')) return false;
                 const by = t.getAttribute('aria-labelledby');
                 const name = (t.caption && t.caption.textContent)
                   || t.getAttribute('aria-label')
                   || (by && document.getElementById(by)?.textContent) || '';
                 return !name.trim();
               }).map(t => t.id || t.className)"""
        )
        assert unnamed == [], f"{path}: tables without a caption or label: {unnamed}"
        empty_headers = desk.evaluate(
            "() => [...document.querySelectorAll('main th')]"
            ".filter(th => !th.textContent.trim()).length"
        )
        assert empty_headers == 0, f"{path}: a header cell names nothing"


def test_a_refused_sign_in_is_tied_to_its_fields(fleet: RunningFleet, browser) -> None:  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport=DESK)
    page = context.new_page()
    try:
        page.goto(fleet.base_url + "/login")
        page.get_by_label("Email").fill("admin@example.org")
        page.get_by_label("Password").fill("not the password")
        page.get_by_role("button", name="Sign in").click()
        error = page.get_by_role("alert")
        expect(error).to_contain_text("wrong")
        for label in ("Email", "Password"):
            field = page.get_by_label(label)
            expect(field).to_have_attribute("aria-invalid", "true")
            expect(field).to_have_accessible_description(error.inner_text())
        # The e-mail stays typed in; the password is asked for again.
        expect(page.get_by_label("Email")).to_have_value("admin@example.org")
        expect(page.get_by_label("Password")).to_have_value("")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("heading", name="Fleet overview")).to_be_visible()
    finally:
        context.close()


def test_buttons_and_disclosures_are_at_least_24px_high(fleet: RunningFleet, desk) -> None:  # type: ignore[no-untyped-def]
    case = _case_path(desk, fleet.base_url)
    for path in ("/registry", "/registry/retired", case, "/tokens", "/devices/cs-hackney-0001"):
        desk.goto(fleet.base_url + path)
        small = desk.evaluate(
            """() => [...document.querySelectorAll('main button, main summary')]
                 .filter(e => e.offsetParent !== null)
                 .map(e => [e.textContent.trim(), e.getBoundingClientRect().height])
                 .filter(([, h]) => h < 24)"""
        )
        assert small == [], f"{path}: targets under 24 px: {small}"


def test_wide_tables_on_a_phone_can_be_scrolled_from_the_keyboard(
    fleet: RunningFleet,
    browser,  # type: ignore[no-untyped-def]
) -> None:
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    try:
        sign_in(page, fleet.base_url, "admin")
        page.goto(fleet.base_url + "/rollouts/1")
        waves = page.get_by_role("table", name="Progress by wave")  # numbers only, no links
        assert waves.evaluate("t => t.scrollWidth > t.clientWidth")
        expect(waves).to_have_attribute("tabindex", "0")
        waves.focus()
        page.keyboard.press("ArrowRight")
        page.wait_for_function("() => document.getElementById('waves').scrollLeft > 0")

        # Wide enough to fit: the same table stays out of the Tab order.
        page.set_viewport_size(DESK)
        expect(waves).not_to_have_attribute("tabindex", "0")
    finally:
        context.close()


def test_published_standard_reflows_on_a_phone(fleet: RunningFleet, browser) -> None:  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    try:
        for name in ("senml-profile.md", "sensorthings.md", "CHANGELOG.md"):
            page.goto(f"{fleet.base_url}/standards/{name}")
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= PHONE["width"], f"{name} scrolls sideways ({width} px)"
        # The example payload keeps its layout and scrolls in its own box, from the keyboard too.
        page.goto(f"{fleet.base_url}/standards/senml-profile.md")
        example = page.locator("main pre").first
        assert example.evaluate("e => e.scrollWidth > e.clientWidth")
        expect(example).to_have_attribute("tabindex", "0")
    finally:
        context.close()


def test_printable_evidence_fits_a_phone_screen(fleet: RunningFleet, browser) -> None:  # type: ignore[no-untyped-def]
    # A phone lays out a page without a viewport declaration 980 px wide and shrinks it.
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    page = context.new_page()
    try:
        sign_in(page, fleet.base_url, "admin")
        case = _case_path(page, fleet.base_url)
        for path in ("/risk/properties/1/evidence", case + "/evidence"):
            page.goto(fleet.base_url + path)
            assert page.evaluate("document.documentElement.clientWidth") == PHONE["width"], path
            assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], path
    finally:
        context.close()


def _new_device(fleet: RunningFleet, device_id: str) -> None:
    with fleet.ctx.sessions.begin() as s:
        hackney = s.scalars(select(Borough.id).where(Borough.code == "hackney")).one()
        register_device(s, device_id=device_id, borough_id=hackney)


def test_live_updates_keep_focus_and_announce_state_changes_politely(
    fleet: RunningFleet,
    desk,  # type: ignore[no-untyped-def]
) -> None:
    device_id = "cs-hackney-2001"
    _new_device(fleet, device_id)
    desk.goto(fleet.base_url + "/?q=" + device_id)
    status = desk.locator("#live-state")
    expect(status).to_have_text("Live")
    expect(status).to_have_attribute("aria-live", "polite")
    changes = desk.locator("#live-changes")
    expect(changes).to_have_attribute("aria-live", "polite")
    expect(changes).to_have_text("")
    link = desk.get_by_role("link", name=device_id, exact=True)
    link.focus()

    handler = IngestHandler(fleet.ctx.sessions)
    handler.handle(f"cs/v1/d/{device_id}/status", b'{"sv":1,"state":"online"}')
    handler.handle(
        f"cs/v1/d/{device_id}/up", telemetry(device_id, float(int(time.time())), [(0, 19.5, 60.5)])
    )
    row = desk.locator(f'tr[data-device="{device_id}"]')
    expect(row.locator('[data-metric="humidity"]')).to_have_text("60.5%", timeout=15000)
    expect(row.locator('[data-field="state"]')).to_have_text("online")

    # Focus stays on the device's link through the redraw, the change is said once in words,
    # and the status keeps saying "Live": the update time beside it is not announced.
    expect(desk.get_by_role("link", name=device_id, exact=True)).to_be_focused()
    expect(changes).to_have_text(f"{device_id} is now online.")
    expect(status).to_have_text("Live")
    expect(desk.locator("#live-updated")).to_contain_text("updated")


def test_live_updates_can_be_paused_and_resumed(fleet: RunningFleet, desk) -> None:  # type: ignore[no-untyped-def]
    desk.goto(fleet.base_url + "/")
    status = desk.locator("#live-state")
    expect(status).to_have_text("Live")
    with desk.expect_event("requestfailed", lambda r: "/events" in r.url):  # the stream closes
        desk.get_by_role("button", name="Pause live updates").click()
    expect(status).to_have_text("Live updates paused")

    with desk.expect_request(lambda r: "/events" in r.url):
        desk.get_by_role("button", name="Resume live updates").click()
    expect(status).to_have_text("Live")
    expect(desk.get_by_role("button", name="Pause live updates")).to_be_visible()
