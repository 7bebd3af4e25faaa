"""What the dashboard answers besides the page asked for: refusals as pages in its layout (the
APIs keep JSON), no copy left in the browser's cache, form messages that name the right field,
page numbers past the end, and who resolved an alert."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from fleet.health.alert_rules import Finding
from fleet.health.alerts import apply_findings
from fleet.models import Alert, Borough, Device, Estate
from fleet.registry import places
from fleet.risk.workdays import UK
from tests.dashboard.ota_data import publish_release
from tests.dashboard.test_ota_pages import client, csrf_of, recorder, sign_in  # noqa: F401
from tests.fleet.conftest import World, fleet_ctx, world  # noqa: F401

OPENED = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
CLEARED = datetime(2026, 3, 2, 11, 30, tzinfo=UTC)


def _alert(world: World, rule: str, *, cleared: bool) -> int:  # noqa: F811
    """A Hackney alert opened at OPENED and, if `cleared`, resolved by the system at CLEARED."""
    with world.ctx.sessions.begin() as s:
        device = s.scalars(select(Device).where(Device.device_id == "cs-hackney-0001")).one()
        (alert,) = apply_findings(s, device, [Finding(rule, True, f"{rule} seen")], now=OPENED)
        if cleared:
            apply_findings(s, device, [Finding(rule, False)], now=CLEARED)
        s.flush()
        return alert.id


def _notice(html: str) -> str:
    found = re.search(r'<p class="notice" role="status">(.*?)</p>', html, re.S)
    assert found, "no notice on the page"
    return found.group(1)


def _refusal(html: str) -> str:
    found = re.search(r'<p class="error" role="alert" id="form-error">(.*?)</p>', html, re.S)
    assert found, "no refusal on the page"
    return found.group(1)


def _main(html: str) -> str:
    found = re.search(r'<main id="main"[^>]*>(.*)</main>', html, re.S)
    assert found, "not a dashboard page"
    return found.group(1)


def test_refusals_are_pages_with_the_reason_and_a_way_back(
    client: TestClient,  # noqa: F811
    world: World,  # noqa: F811
) -> None:
    sign_in(client, "staff_hackney")
    alert = _alert(world, "sensor_fault", cleared=False)
    token = csrf_of(client, "/alerts")
    client.post(f"/alerts/{alert}/resolve", data={"csrf": token})
    again = client.post(
        f"/alerts/{alert}/resolve",
        data={"csrf": token},
        headers={"referer": "http://testserver/alerts"},
    )
    assert again.status_code == 409 and again.headers["content-type"].startswith("text/html")
    main = _main(again.text)
    assert "<h1>Not done</h1>" in main and f"alert {alert} is already resolved" in main
    assert '<a href="/alerts">Back to the page you came from</a>' in main
    assert 'action="/logout"' in again.text  # the layout, with its navigation and Sign out

    # An unknown page, another borough's property and a wrong address: the same kind of page.
    for path, status, reason in (
        ("/no-such-page", 404, "Not Found"),
        ("/registry/properties/2", 404, "no property 2"),
        ("/alerts?show=everything", 422, "show"),
    ):
        answer = client.get(path)
        assert answer.status_code == status, path
        assert reason in _main(answer.text), path
        assert '<a href="/">Go to the fleet overview</a>' in answer.text  # no page to go back to
    not_allowed = client.post("/rollouts", data={"csrf": token, "release_id": "1"})
    assert not_allowed.status_code == 403 and "<h1>Not allowed</h1>" in not_allowed.text

    # The APIs keep their JSON answers.
    api = TestClient(client.app)
    missing = api.get("/api/v1/devices/cs-nobody", headers=world.headers("staff_hackney"))
    assert missing.status_code == 404 and missing.json() == {"detail": "no device 'cs-nobody'"}
    bad = api.get("/api/v1/devices?limit=nope", headers=world.headers("staff_hackney"))
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["query", "limit"]
    sta = api.get("/sta/v1.1/Nothing")
    assert sta.status_code >= 400 and sta.headers["content-type"] == "application/json"


def test_a_refused_form_shows_what_was_typed_but_never_a_secret(
    client: TestClient,  # noqa: F811
    world: World,  # noqa: F811
) -> None:
    sign_in(client, "staff_hackney")
    token = csrf_of(client, "/registry")
    statement = "The tenant says the bedroom wall has been wet since October. " * 40
    answer = client.post("/registry/hackney/estates", data={"csrf": token, "name": statement})
    assert answer.status_code == 422
    main = _main(answer.text)
    assert "Nothing was saved" in main and "<strong>name</strong>" in main
    assert f'<textarea readonly rows="4">{statement}</textarea>' in main  # kept, to copy

    refused = client.post("/login", data={"password": "hunter2 is my password"})
    assert refused.status_code == 422 and "<strong>email</strong>: Field required" in refused.text
    assert "hunter2" not in refused.text


def _start_rollout(client: TestClient, field: str, value: str) -> Any:  # noqa: F811
    return client.post("/rollouts", data={"release_id": "1", field: value})


@pytest.mark.parametrize(
    ("page", "field", "limit", "send"),
    [
        ("/", "q", 100, lambda c, v: c.get("/", params={"q": v})),
        ("/audit", "actor", 200, lambda c, v: c.get("/audit", params={"actor": v})),
        ("/audit", "target_id", 64, lambda c, v: c.get("/audit", params={"target_id": v})),
        ("/rollouts", "soak_min", 10, lambda c, v: _start_rollout(c, "soak_min", v)),
        ("/rollouts", "failure_pct", 10, lambda c, v: _start_rollout(c, "failure_pct", v)),
        ("/rollouts", "device_ids", 200_000, lambda c, v: _start_rollout(c, "device_ids", v)),
    ],
)
def test_a_field_stops_typing_where_the_server_would_refuse(
    client: TestClient,  # noqa: F811
    world: World,  # noqa: F811
    page: str,
    field: str,
    limit: int,
    send,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    publish_release(world.ctx, tmp_path / "keys")  # the rollout form needs a release to offer
    sign_in(client, "admin")
    control = re.search(rf'<(?:input|textarea) name="{field}"[^>]*>', client.get(page).text)
    assert control is not None and f'maxlength="{limit}"' in control.group(0)
    assert send(client, "1" * limit).status_code != 422
    too_long = send(client, "1" * (limit + 1))
    assert too_long.status_code == 422 and f"<strong>{field}</strong>" in too_long.text


def test_pages_are_not_kept_in_the_browser_cache(
    client: TestClient,  # noqa: F811
    world: World,  # noqa: F811
) -> None:
    assert client.get("/login").headers["cache-control"] == "no-store"
    sign_in(client, "staff_hackney")
    for path in ("/", "/devices/cs-hackney-0001", "/registry", "/cases", "/alerts", "/nowhere"):
        assert client.get(path).headers.get("cache-control") == "no-store", path
    assert "no-store" not in client.get("/static/style.css").headers.get("cache-control", "")


def test_pages_run_only_the_fleets_scripts_and_cannot_be_framed(
    client: TestClient,  # noqa: F811
    world: World,  # noqa: F811
) -> None:
    sign_in(client, "staff_hackney")
    for path in ("/login", "/", "/registry", "/nowhere"):
        headers = client.get(path).headers
        policy = headers["content-security-policy"]
        assert "script-src 'self';" in policy and "frame-ancestors 'none'" in policy, path
        assert (
            headers["x-frame-options"] == "DENY" and headers["x-content-type-options"] == "nosniff"
        )
    api = client.get("/api/v1/devices", headers=world.headers("staff_hackney")).headers
    assert "content-security-policy" not in api and api["x-content-type-options"] == "nosniff"


def test_blank_estate_names_are_refused(
    client: TestClient,  # noqa: F811
    world: World,  # noqa: F811
) -> None:
    sign_in(client, "staff_hackney")
    token = csrf_of(client, "/registry")
    for name in ("   ", "\t\n", ""):
        r = client.post("/registry/hackney/estates", data={"csrf": token, "name": name})
        assert r.status_code == 422
        assert _refusal(r.text) == "not saved: give the estate or block a name"
    r = client.post("/registry/hackney/estates", data={"csrf": token, "name": "x" * 201})
    assert _refusal(r.text) == "not saved: a name is at most 200 characters"
    r = client.post("/registry/hackney/estates", data={"csrf": token, "name": "  Holly Court "})
    assert _notice(r.text) == "estate Holly Court created"
    with world.ctx.sessions() as s:
        assert list(s.scalars(select(Estate.name))) == ["Holly Court"]


def test_the_property_form_names_the_field_that_is_wrong(
    client: TestClient,  # noqa: F811
    world: World,  # noqa: F811
) -> None:
    sign_in(client, "staff_hackney")
    form = {"csrf": csrf_of(client, "/registry"), "reference": "HX-77"}
    r = client.post("/registry/hackney/properties", data={**form, "estate_id": "abc"})
    assert _refusal(r.text) == "not saved: choose the estate from the list"
    r = client.post("/registry/hackney/properties", data={**form, "floor": "two"})
    assert _refusal(r.text) == "not saved: floor must be a whole number"
    with world.ctx.sessions.begin() as s:
        camden = s.get(Borough, world.borough_ids["camden"])
        assert camden is not None
        elsewhere = places.create_estate(s, borough=camden, name="Camden Row").id
    r = client.post("/registry/hackney/properties", data={**form, "estate_id": str(elsewhere)})
    assert r.status_code == 422
    assert _refusal(r.text) == "not saved: Hackney has no such estate; choose it from the list"
    assert "HX-77" not in client.get("/registry").text


def test_page_numbers_past_the_end_go_to_the_last_page(
    client: TestClient,  # noqa: F811
    world: World,  # noqa: F811
) -> None:
    sign_in(client, "admin")
    far = client.get("/audit?action=user.login&page=5", follow_redirects=False)
    assert far.status_code == 303 and far.headers["location"] == "/audit?action=user.login&page=1"
    page = client.get("/audit?action=user.login&page=5").text
    assert "page 1 of 1" in page and "No entry matches" not in page

    far = client.get("/?q=hackney&state=&page=99", follow_redirects=False)
    assert far.status_code == 303 and far.headers["location"] == "/?q=hackney&state=&page=1"
    page = client.get("/?q=hackney&page=99").text
    assert "page 1 of 1" in page and 'data-device="cs-hackney-0001"' in page
    assert 'rel="prev"' not in page
    assert client.get("/?page=1", follow_redirects=False).status_code == 200
    assert client.get("/?page=99999999999999999999").status_code == 422


def test_resolved_alerts_say_who_resolved_them_and_when(
    client: TestClient,  # noqa: F811
    world: World,  # noqa: F811
) -> None:
    by_system = _alert(world, "battery_low", cleared=True)
    by_person = _alert(world, "sensor_fault", cleared=False)
    sign_in(client, "staff_hackney")
    token = csrf_of(client, "/alerts")
    client.post(f"/alerts/{by_person}/acknowledge", data={"csrf": token})
    client.post(f"/alerts/{by_person}/resolve", data={"csrf": token})
    with world.ctx.sessions() as s:
        resolved = s.get(Alert, by_person)
        assert resolved is not None and resolved.resolved_at is not None
        when = resolved.resolved_at.astimezone(UK).strftime("%Y-%m-%d %H:%M %Z")

    page = client.get("/alerts?show=resolved").text
    rows = dict(re.findall(r'<tr data-alert="(\d+)">(.*?)</tr>', page, re.S))
    system_row = re.sub(r"\s+", " ", rows[str(by_system)])
    assert "resolved by the system (condition cleared), 2026-03-02 11:30 GMT" in system_row
    person_row = re.sub(r"\s+", " ", rows[str(by_person)])
    assert f"resolved by staff_hackney@example.org, {when}" in person_row
    assert "acknowledged by staff_hackney@example.org" in person_row
