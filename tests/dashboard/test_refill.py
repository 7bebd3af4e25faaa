"""A form the fleet refuses comes back filled in with what was typed, the refused field
marked invalid and tied to the message (WCAG 2.2 SC 3.3.7 Redundant Entry), and never
with a password typed into it."""

from __future__ import annotations

import html
import re
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import select

from fleet.core.context import FleetContext
from fleet.models import Device, Property
from tests.dashboard.ota_data import publish_release
from tests.dashboard.test_ota_pages import client, csrf_of, recorder, sign_in  # noqa: F401
from tests.fleet.conftest import World, fleet_ctx, world  # noqa: F401

MESSAGE = re.compile(r'<p class="error" role="alert" id="form-error">(.*?)</p>', re.S)


def _field(page: str, form: str, name: str) -> dict[str, str]:
    """The attributes of field ``name`` in the form with id ``form``."""
    found = re.search(rf'<form [^>]*id="{form}"[^>]*>(.*?)</form>', page, re.S)
    assert found, f"no form {form}"
    tag = re.search(rf'<(?:input|select|textarea)\b[^>]*\bname="{name}"[^>]*>', found.group(1))
    assert tag, f"no field {name} in {form}"
    attrs = dict(re.findall(r'([\w-]+)="([^"]*)"', tag.group(0)))
    return {k: html.unescape(v) for k, v in attrs.items()}


def _marked(page: str, form: str, name: str) -> bool:
    attrs = _field(page, form, name)
    return attrs.get("aria-invalid") == "true" and attrs.get("aria-describedby") == "form-error"


def _message(page: str) -> str:
    found = MESSAGE.search(page)
    assert found, "no message about the refused form"
    return html.unescape(found.group(1))


def test_a_refused_property_comes_back_filled_in_with_the_bad_field_marked(
    client: TestClient,  # noqa: F811
    world: World,  # noqa: F811
) -> None:
    sign_in(client, "staff_hackney")
    typed = {
        "csrf": csrf_of(client, "/registry"),
        "reference": "HX-77",
        "address": '12 Mare Street, Flat 3 & 4 "rear"',
        "postcode": "E8 1HE",
        "housing_type": "maisonette",
        "floor": "two",
    }
    r = client.post("/registry/hackney/properties", data=typed)
    assert r.status_code == 422
    page = r.text
    assert _message(page) == "not saved: floor must be a whole number"
    form = "property-hackney"
    assert re.search(r"<details open><summary>Add a property", page)  # not hidden away
    assert _field(page, form, "reference")["value"] == "HX-77"
    assert _field(page, form, "address")["value"] == '12 Mare Street, Flat 3 & 4 "rear"'
    assert _field(page, form, "postcode")["value"] == "E8 1HE"
    assert _field(page, form, "floor")["value"] == "two"
    assert "<option selected>maisonette</option>" in page
    assert _marked(page, form, "floor")
    assert not _marked(page, form, "reference") and not _marked(page, form, "address")
    # The other forms of the page are left as they were.
    assert _field(page, "estate-hackney", "name").get("value") == ""

    # A reference already taken marks the reference; the address typed stays.
    fixed = {**typed, "reference": "HACKNEY-0001", "floor": "2"}
    r = client.post("/registry/hackney/properties", data=fixed)
    assert r.status_code == 409
    assert "already exists" in _message(r.text)
    assert _marked(r.text, form, "reference") and not _marked(r.text, form, "floor")
    assert _field(r.text, form, "address")["value"] == '12 Mare Street, Flat 3 & 4 "rear"'
    with world.ctx.sessions() as s:
        assert s.scalars(select(Property.reference).order_by(Property.id)).all() == [
            "HACKNEY-0001",
            "CAMDEN-0001",
        ]
    # Saved once right, with the address typed into the form.
    r = client.post("/registry/hackney/properties", data={**fixed, "reference": "HX-77"})
    assert r.status_code == 200 and "Property HX-77" in r.text
    assert "12 Mare Street, Flat 3 &amp; 4 &#34;rear&#34;" in r.text


def test_a_refused_network_keeps_its_name_and_ssid_but_never_the_password(
    client: TestClient,  # noqa: F811
    world: World,  # noqa: F811
) -> None:
    sign_in(client, "staff_hackney")
    form = {
        "csrf": csrf_of(client, "/registry"),
        "name": "office",
        "ssid": "HackneyTenants",
        "password": "short",
    }
    r = client.post("/registry/hackney/wifi-profiles", data=form)
    assert r.status_code == 422
    assert _field(r.text, "wifi-form-hackney", "name")["value"] == "office"
    assert _field(r.text, "wifi-form-hackney", "ssid")["value"] == "HackneyTenants"
    assert "value" not in _field(r.text, "wifi-form-hackney", "password")
    assert _marked(r.text, "wifi-form-hackney", "password")
    assert 'value="short"' not in r.text


def test_a_refused_placement_keeps_room_and_position(
    client: TestClient,  # noqa: F811
    world: World,  # noqa: F811
) -> None:
    sign_in(client, "staff_hackney")
    home = "/registry/properties/1"
    form = {"csrf": csrf_of(client, home), "room": "kitchen", "position": "x" * 65}
    r = client.post(f"{home}/placements", data=form)
    assert r.status_code == 422
    assert _field(r.text, "placement", "room")["value"] == "kitchen"
    assert _field(r.text, "placement", "position")["value"] == "x" * 65
    assert _marked(r.text, "placement", "position")


def test_a_refused_rollout_comes_back_filled_in(
    client: TestClient,  # noqa: F811
    fleet_ctx: FleetContext,  # noqa: F811
    world: World,  # noqa: F811
    tmp_path: Path,
) -> None:
    release = publish_release(fleet_ctx, tmp_path / "keys")
    sign_in(client, "admin")
    form = {
        "csrf": csrf_of(client, "/rollouts"),
        "release_id": str(release),
        "borough": "camden",
        "tag": "pilot",
        "device_ids": "cs-camden-0001",
        "waves": "0, ten",
        "soak_min": "45",
        "failure_pct": "5",
    }
    r = client.post("/rollouts", data=form)
    assert r.status_code == 422
    page = r.text
    assert _message(page).startswith("not started: wave 0 is neither a device count")
    assert _marked(page, "new-rollout", "waves")
    assert _field(page, "new-rollout", "waves")["value"] == "0, ten"
    assert _field(page, "new-rollout", "tag")["value"] == "pilot"
    assert _field(page, "new-rollout", "soak_min")["value"] == "45"
    assert _field(page, "new-rollout", "failure_pct")["value"] == "5"
    assert re.search(r'<option value="camden" selected>Camden</option>', page)
    assert re.search(r'name="device_ids"[^>]*>cs-camden-0001</textarea>', page)
    assert not _marked(page, "new-rollout", "tag")
    r = client.post("/rollouts", data={**form, "waves": "1", "failure_pct": "150"})
    assert _marked(r.text, "new-rollout", "failure_pct")
    assert _field(r.text, "new-rollout", "waves")["value"] == "1"


def test_refused_device_settings_and_pin_come_back_filled_in(
    client: TestClient,  # noqa: F811
    fleet_ctx: FleetContext,  # noqa: F811
    world: World,  # noqa: F811
) -> None:
    here = "/devices/cs-hackney-0001"
    sign_in(client, "staff_hackney")
    token = csrf_of(client, here)
    form = {"csrf": token, "sample_interval_s": "ten", "health_interval_s": "1800"}
    r = client.post(f"{here}/config", data=form)
    assert r.status_code == 422
    assert _message(r.text) == "settings not sent: sample_interval_s must be a whole number"
    assert _field(r.text, "settings", "sample_interval_s")["value"] == "ten"
    assert _field(r.text, "settings", "health_interval_s")["value"] == "1800"
    assert _marked(r.text, "settings", "sample_interval_s")
    assert not _marked(r.text, "settings", "health_interval_s")

    with fleet_ctx.sessions.begin() as s:
        device = s.scalars(select(Device).where(Device.device_id == "cs-hackney-0001")).one()
        device.fw_version = "0.1.0"
    sign_in(client, "admin")
    token = csrf_of(client, here)
    r = client.post(
        f"{here}/pin", data={"csrf": token, "reason": "tenant asked", "version": "0.0.9"}
    )
    assert r.status_code == 422
    assert _message(r.text).startswith("not pinned: no release 0.0.9 is published")
    assert _field(r.text, "pin-form", "reason")["value"] == "tenant asked"
    assert _field(r.text, "pin-form", "version")["value"] == "0.0.9"
    assert _marked(r.text, "pin-form", "version") and not _marked(r.text, "pin-form", "reason")


def test_a_refused_case_step_keeps_the_note_and_marks_what_to_change(
    client: TestClient,  # noqa: F811
    world: World,  # noqa: F811
) -> None:
    staff = world.headers("staff_hackney")
    with world.ctx.sessions() as s:
        pid = s.scalars(select(Property.id).where(Property.reference == "HACKNEY-0001")).one()
    opened = client.post(
        f"/api/v1/properties/{pid}/cases", json={"aware_at": "2026-03-02T09:00:00Z"}, headers=staff
    )
    here = f"/cases/{opened.json()['id']}"
    sign_in(client, "staff_hackney")
    note = "Tenant phoned: mould behind the wardrobe, photos sent by e-mail."
    form = {"csrf": csrf_of(client, here), "step": "written_summary", "at": "", "note": note}
    r = client.post(f"{here}/steps", data=form)
    assert r.status_code == 422
    assert _message(r.text) == "record the investigation before written_summary"
    assert _marked(r.text, "step-form", "step")
    assert '<option value="written_summary" selected>' in r.text
    assert re.search(rf'name="note"[^>]*>{re.escape(note)}</textarea>', r.text)
    # A time before the landlord became aware marks the time, and keeps it.
    form = {**form, "step": "investigation", "at": "2026-03-01T10:00"}
    r = client.post(f"{here}/steps", data=form)
    assert r.status_code == 422 and "before the landlord became aware" in _message(r.text)
    assert _marked(r.text, "step-form", "at") and not _marked(r.text, "step-form", "step")
    assert _field(r.text, "step-form", "at")["value"] == "2026-03-01T10:00"
