"""Retired devices in the dashboard registry: the Decommission button retires a device as the
API does, the Retired tab lists a borough's retired devices (newest first, paged, never
another borough's), and each one has a read-only page with where it served, who retired it
and the readings kept."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import expect
from sqlalchemy import select

from fleet.access import audit
from fleet.access.principal import SYSTEM
from fleet.dashboard import retired_devices
from fleet.models import AuditEntry, Device, Reading
from fleet.registry import devices as registry
from tests.dashboard.conftest import sign_in as browser_sign_in
from tests.dashboard.ota_data import Recorder
from tests.dashboard.test_ota_pages import client, csrf_of, recorder, sign_in  # noqa: F401
from tests.fleet.conftest import World, fleet_ctx, world  # noqa: F401
from tests.fleet.server import RunningFleet

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _rows(page: str) -> list[int]:
    return [int(pk) for pk in re.findall(r'<tr data-retired="(\d+)"', page)]


def _caption(page: str) -> str:
    found = re.search(r'<table[^>]*id="retired"[^>]*>\s*<caption>(.*?)</caption>', page, re.S)
    assert found, "no caption on the retired devices table"
    return html.unescape(found.group(1))


def _next(page: str) -> str | None:
    found = re.search(r'<a rel="next" href="([^"]+)"', page)
    return html.unescape(found.group(1)) if found else None


def _main(page: str) -> str:
    found = re.search(r"<main[^>]*>(.*)</main>", page, re.S)
    assert found, "no main element"
    return found.group(1)


def _readings(world: World, device_id: str, n: int) -> None:  # noqa: F811
    with world.ctx.sessions.begin() as s:
        device = s.scalars(select(Device).where(Device.current(device_id))).one()
        for i in range(n):
            ts = T0 + timedelta(minutes=15 * i)
            s.add(Reading(device_pk=device.id, metric="humidity", ts=ts, value=70.0, unit="%RH"))


def _retire(world: World, code: str, device_id: str, at: datetime) -> int:  # noqa: F811
    """A device of borough ``code`` enrolled and retired at ``at``, recorded as the API does."""
    with world.ctx.sessions.begin() as s:
        device = registry.register_device(
            s, device_id=device_id, borough_id=world.borough_ids[code]
        )
        registry.retire(s, device, now=at)
        entry = audit.record(
            s, SYSTEM, "device.decommission", target_type="device", target_id=device_id
        )
        entry.borough_id = world.borough_ids[code]
        entry.at = at
        return device.id


def test_decommission_button_retires_the_device_and_its_page_is_read_only(
    client: TestClient,  # noqa: F811
    world: World,  # noqa: F811
    recorder: Recorder,  # noqa: F811
) -> None:
    _readings(world, "cs-hackney-0001", 3)
    sign_in(client, "staff_hackney")
    assert _rows(client.get("/registry/retired").text) == []  # in service: not listed
    device_page = client.get("/devices/cs-hackney-0001").text
    assert 'id="decommission"' in device_page and "data-confirm=" in device_page
    r = client.post(
        "/devices/cs-hackney-0001/decommission",
        data={"csrf": csrf_of(client, "/devices/cs-hackney-0001")},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text[-500:]
    detail_url = r.headers["location"].split("?")[0]
    with world.ctx.sessions() as s:
        device = s.scalars(select(Device).where(Device.device_id == "cs-hackney-0001")).one()
        assert device.retired_at is not None and device.placement_id is None
        assert detail_url == f"/registry/retired/{device.id}"
        entry = s.scalars(
            select(AuditEntry).where(AuditEntry.action == "device.decommission")
        ).one()
        assert entry.target_id == "cs-hackney-0001" and entry.detail["readings_kept"] == 3
    # The broker forgets the device's retained settings and offer, as after the API's DELETE.
    assert ("cs/v1/d/cs-hackney-0001/config", b"", True) in recorder.sent
    assert client.get("/devices/cs-hackney-0001").status_code == 404

    page = client.get(r.headers["location"])
    assert page.status_code == 200
    main = _main(page.text)
    assert "cs-hackney-0001 retired: 3 readings kept" in main
    assert "staff_hackney@example.org" in re.search(r'id="retired-by">(.*?)<', main).group(1)
    assert re.search(r'id="readings-kept">3<', main)
    assert 'href="/registry/properties/' in main and "bathroom" in main  # where it served
    assert re.search(r'<tr data-metric="humidity"><th scope="row">Humidity</th><td>3</td>', main)
    assert "<form" not in main  # no commands, settings, pins or updates
    listed = client.get("/registry/retired").text
    assert _rows(listed) == [device.id]
    assert _caption(listed).startswith("Showing 1 of 1 retired devices in Hackney")
    assert "HACKNEY-0001, bathroom" in listed
    # Retiring it again from an old page finds nothing in service.
    again = client.post(
        "/devices/cs-hackney-0001/decommission", data={"csrf": csrf_of(client, "/registry")}
    )
    assert again.status_code == 404


def test_another_borough_neither_sees_nor_opens_nor_retires_a_device(
    client: TestClient,  # noqa: F811
    world: World,  # noqa: F811
) -> None:
    pk = _retire(world, "hackney", "cs-hackney-0500", T0)
    sign_in(client, "staff_camden")
    assert _rows(client.get("/registry/retired").text) == []
    assert client.get("/registry/retired?borough=hackney").status_code == 404
    assert client.get(f"/registry/retired/{pk}").status_code == 404
    r = client.post(
        "/devices/cs-hackney-0001/decommission", data={"csrf": csrf_of(client, "/registry")}
    )
    assert r.status_code == 404
    with world.ctx.sessions() as s:
        assert registry.current_device(s, "cs-hackney-0001") is not None
    sign_in(client, "staff_hackney")
    assert _rows(client.get("/registry/retired").text) == [pk]
    assert client.get(f"/registry/retired/{pk}").status_code == 200
    sign_in(client, "admin")
    assert _rows(client.get("/registry/retired?borough=camden").text) == []
    assert _rows(client.get("/registry/retired?borough=hackney").text) == [pk]


def test_a_read_only_role_sees_no_button_and_is_refused(
    client: TestClient,  # noqa: F811
    world: World,  # noqa: F811
) -> None:
    pk = _retire(world, "hackney", "cs-hackney-0500", T0)
    sign_in(client, "readonly_hackney")
    assert 'id="decommission"' not in client.get("/devices/cs-hackney-0001").text
    r = client.post(
        "/devices/cs-hackney-0001/decommission", data={"csrf": csrf_of(client, "/registry")}
    )
    assert r.status_code == 403
    with world.ctx.sessions() as s:
        assert registry.current_device(s, "cs-hackney-0001") is not None
    # It reads the list, but not who retired a device: that is the audit log's to say.
    listed = client.get("/registry/retired").text
    assert _rows(listed) == [pk] and "the system" not in _main(listed)
    sign_in(client, "staff_hackney")
    assert "the system" in _main(client.get("/registry/retired").text)


def test_the_list_pages_newest_retirement_first_and_each_row_has_its_own_retirer(
    client: TestClient,  # noqa: F811
    world: World,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(retired_devices, "RETIRED_PAGE_SIZE", 3)
    # One hardware id retired twice: each row names its own retirement's entry.
    hackney = [_retire(world, "hackney", "cs-hackney-0600", T0)]
    with world.ctx.sessions.begin() as s:
        again = registry.register_device(
            s, device_id="cs-hackney-0600", borough_id=world.borough_ids["hackney"]
        )
        registry.retire(s, again, now=T0 + timedelta(days=1))
        entry = audit.record(
            s, SYSTEM, "device.decommission", target_type="device", target_id="cs-hackney-0600"
        )
        entry.actor, entry.at = "user:99 later@example.org", T0 + timedelta(days=1)
        entry.borough_id = world.borough_ids["hackney"]
        hackney.append(again.id)
    hackney += [
        _retire(world, "hackney", f"cs-hackney-07{i:02}", T0 + timedelta(hours=i)) for i in range(5)
    ]
    _retire(world, "camden", "cs-camden-0700", T0 + timedelta(days=9))
    sign_in(client, "staff_hackney")
    first = client.get("/registry/retired").text
    assert _caption(first) == (
        "Showing 3 of 7 retired devices in Hackney, newest retirement first (page 1 of 3)"
    )
    seen, url = [], "/registry/retired"
    pages = 0
    while url:
        page = client.get(url).text
        seen.append(_rows(page))
        url = _next(page)
        pages += 1
        assert pages < 10, "Next never ends"
    assert [len(p) for p in seen] == [3, 3, 1]
    newest_first = [hackney[1], *reversed(hackney[2:]), hackney[0]]
    assert [pk for p in seen for pk in p] == newest_first
    # A page past the end goes to the last one.
    past = client.get("/registry/retired?page=9", follow_redirects=False)
    assert past.status_code == 303 and past.headers["location"].endswith("page=3")

    def retirer(pk: int) -> str:
        main = _main(client.get(f"/registry/retired/{pk}").text)
        return re.search(r'id="retired-by">(.*?)<', main).group(1)

    assert retirer(hackney[0]) == "the system"
    assert retirer(hackney[1]) == "later@example.org"


@pytest.mark.browser
def test_decommission_asks_first_then_lists_the_device_under_retired(
    fleet: RunningFleet,
    page,  # type: ignore[no-untyped-def]
) -> None:
    asked: list[str] = []

    def answer(dialog) -> None:  # type: ignore[no-untyped-def]
        asked.append(dialog.message)
        dialog.accept() if len(asked) > 1 else dialog.dismiss()

    page.on("dialog", answer)
    browser_sign_in(page, fleet.base_url, "staff_hackney")
    page.goto(f"{fleet.base_url}/devices/cs-hackney-0001")
    button = page.get_by_role("button", name="Decommission cs-hackney-0001")
    button.click()
    assert len(asked) == 1 and asked[0].startswith("Decommission cs-hackney-0001?")
    with fleet.ctx.sessions() as s:  # dismissed: still in service
        assert registry.current_device(s, "cs-hackney-0001") is not None

    button.click()
    expect(page.get_by_role("status")).to_contain_text("cs-hackney-0001 retired")
    expect(page.get_by_role("heading", level=1)).to_contain_text("cs-hackney-0001")
    expect(page.get_by_role("button", name=re.compile("Decommission|Reboot|Pin"))).to_have_count(0)
    page.get_by_role("link", name="← Retired devices").click()
    table = page.get_by_role("table", name=re.compile("retired devices in Hackney"))
    expect(table).to_contain_text("HACKNEY-0001, bathroom")
    table.get_by_role("link", name="cs-hackney-0001").focus()
    expect(table.get_by_role("link", name="cs-hackney-0001")).to_be_focused()
    # On a phone the table scrolls in its own box; the page does not scroll sideways.
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
