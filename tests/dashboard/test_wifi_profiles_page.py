"""Borough staff set the Wi-Fi network that enrolment writes into sensors, on the Registry
page: saved encrypted and audited, refused with the reason, scoped to their boroughs."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy import select

from fleet.core.context import FleetContext
from fleet.enrolment import wifi
from fleet.enrolment.secrets import SecretBox
from fleet.models import AuditEntry, Borough, WifiProfile
from tests.dashboard.test_ota_pages import client, csrf_of, recorder, sign_in  # noqa: F401
from tests.fleet.conftest import World, fleet_ctx, world  # noqa: F401


def _profiles(ctx: FleetContext) -> list[tuple[str, str, bool]]:
    with ctx.sessions() as s:
        rows = s.scalars(select(WifiProfile).order_by(WifiProfile.name)).all()
        return [(p.name, p.ssid, p.password_encrypted is not None) for p in rows]


def test_staff_set_a_network_and_see_it_listed_without_its_password(
    client: TestClient,  # noqa: F811
    fleet_ctx: FleetContext,  # noqa: F811
    world: World,  # noqa: F811
) -> None:
    sign_in(client, "staff_hackney")
    page = client.get("/registry").text
    assert "sensors cannot be enrolled here until the <code>default</code> profile" in page
    token = csrf_of(client, "/registry")
    form = {"csrf": token, "name": "default", "ssid": "HackneyTenants", "password": "damp-free-1"}
    r = client.post("/registry/hackney/wifi-profiles", data=form)
    assert r.status_code == 200 and "Wi-Fi profile default saved for Hackney" in r.text
    row = re.search(r'<tr data-wifi="default">(.*?)</tr>', r.text)
    assert row is not None and "HackneyTenants" in row.group(1) and "set" in row.group(1)
    assert "damp-free-1" not in r.text
    assert _profiles(fleet_ctx) == [("default", "HackneyTenants", True)]
    with fleet_ctx.sessions() as s:
        borough = s.scalars(select(Borough).where(Borough.code == "hackney")).one()
        creds = wifi.credentials(
            s, box=SecretBox.from_settings(fleet_ctx.settings), borough=borough
        )
        assert (creds.ssid, creds.password) == ("HackneyTenants", "damp-free-1")
        entry = s.scalars(select(AuditEntry).where(AuditEntry.action == "wifi_profile.set")).one()
        assert "staff_hackney" in entry.actor and "damp-free-1" not in str(entry.detail)

    # An open network: no password. Replacing a profile keeps one row.
    form = {"csrf": token, "name": "default", "ssid": "HackneyOpen", "password": ""}
    client.post("/registry/hackney/wifi-profiles", data=form)
    assert _profiles(fleet_ctx) == [("default", "HackneyOpen", False)]


def test_a_bad_network_is_refused_with_the_reason_and_nothing_changes(
    client: TestClient,  # noqa: F811
    fleet_ctx: FleetContext,  # noqa: F811
    world: World,  # noqa: F811
) -> None:
    sign_in(client, "staff_hackney")
    token = csrf_of(client, "/registry")
    good = {"csrf": token, "ssid": "HackneyTenants", "password": "damp-free-1"}
    client.post("/registry/hackney/wifi-profiles", data=good)
    for bad, reason in (
        ({"password": "short"}, "password: String should have at least 8 characters"),
        ({"ssid": "x" * 33}, "ssid: String should have at most 32 characters"),
        ({"ssid": "  "}, "ssid: String should have at least 1 character"),
        ({"name": "n" * 65}, "a profile name is at most 64 characters"),
    ):
        r = client.post("/registry/hackney/wifi-profiles", data={**good, **bad})
        assert f"not saved: {reason}" in r.text, r.text[-2000:]
    assert _profiles(fleet_ctx) == [("default", "HackneyTenants", True)]


def test_only_staff_of_the_borough_may_set_its_network(
    client: TestClient,  # noqa: F811
    fleet_ctx: FleetContext,  # noqa: F811
    world: World,  # noqa: F811
) -> None:
    form = {"ssid": "Elsewhere", "password": "password-1"}
    sign_in(client, "readonly_hackney")
    token = csrf_of(client, "/registry")
    r = client.post("/registry/hackney/wifi-profiles", data={**form, "csrf": token})
    assert r.status_code == 403
    sign_in(client, "staff_camden")
    token = csrf_of(client, "/registry")
    r = client.post("/registry/hackney/wifi-profiles", data={**form, "csrf": token})
    assert r.status_code == 404
    assert client.post("/registry/camden/wifi-profiles", data=form).status_code == 403  # no token
    assert _profiles(fleet_ctx) == []
