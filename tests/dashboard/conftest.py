"""Headless Debian Chromium driven by Playwright (no browser downloads)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect

from fleet.core.context import FleetContext, build_context
from fleet.core.settings import Settings
from tests.conftest import REPO_ROOT, missing_service
from tests.fleet.conftest import PASSWORD, World
from tests.fleet.server import RunningFleet, running_fleet

ARTIFACTS = REPO_ROOT / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str | None:
    explicit = os.environ.get("FLEET_TEST_CHROMIUM")
    if explicit:
        return explicit
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    path = chromium_path()
    if path is None:
        missing_service("Debian chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=path, headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser):  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    pg = context.new_page()
    try:
        yield pg
    finally:
        context.close()


def save_screenshot(page, name: str) -> Path:  # type: ignore[no-untyped-def]
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[RunningFleet]:
    ctx: FleetContext = build_context(
        Settings(environment="test", data_dir=tmp_path, embedded_broker_port=0)
    )
    World(ctx)
    try:
        with running_fleet(ctx) as running:
            yield running
    finally:
        ctx.close()


def sign_in(page, base_url: str, who: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(base_url + "/")
    expect(page).to_have_url(base_url + "/login?next=/")
    page.get_by_label("Email").fill(f"{who}@example.org")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Fleet overview")).to_be_visible()
