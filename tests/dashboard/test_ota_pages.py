"""Update pages served by the app: releases, rollout progress by wave, failures, controls with
CSRF and permissions, borough scoping, new rollouts from the form and device update history."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from fleet.api.app import create_app
from fleet.core.context import FleetContext
from fleet.models import AuditEntry, Device
from fleet.models.ota import Rollout
from fleet.ota.engine import tick
from fleet.registry.devices import set_tags
from tests.dashboard.ota_data import Recorder, hackney_rollout, jobs, publish_release, report
from tests.fleet.conftest import PASSWORD, World, fleet_ctx, world  # noqa: F401

BASE = "http://fleet.test:8000"


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def client(fleet_ctx: FleetContext, recorder: Recorder) -> Iterator[TestClient]:  # noqa: F811
    with TestClient(create_app(fleet_ctx, commands=recorder)) as c:
        yield c


def sign_in(client: TestClient, who: str) -> None:
    client.cookies.clear()
    r = client.post("/login", data={"email": f"{who}@example.org", "password": PASSWORD})
    assert r.status_code in (200, 303), r.text


def csrf_of(client: TestClient, path: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', client.get(path).text)
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def cells(html: str, wave: int) -> dict[str, str]:
    row = re.search(rf'<tr data-wave="{wave}">(.*?)</tr>', html, re.S)
    assert row, f"no row for wave {wave}"
    return dict(re.findall(r'data-field="(\w+)">([^<]*)<', row.group(1)))


@pytest.fixture
def rollout_id(
    fleet_ctx: FleetContext,  # noqa: F811
    world: World,  # noqa: F811
    recorder: Recorder,
    tmp_path: Path,
) -> int:
    release = publish_release(fleet_ctx, tmp_path / "keys")
    rid = hackney_rollout(fleet_ctx, release)
    tick(fleet_ctx.sessions, recorder, BASE)  # offers the first wave of two devices
    return rid


def test_rollout_page_shows_wave_progress_failures_and_soak(
    client: TestClient,
    fleet_ctx: FleetContext,  # noqa: F811
    recorder: Recorder,
    rollout_id: int,
) -> None:
    first, second = sorted(jobs(fleet_ctx, rollout_id).items())
    report(fleet_ctx, first[0], first[1], "downloading", pct=40)
    report(fleet_ctx, second[0], second[1], "failed", reason="sha256 mismatch: refused")
    sign_in(client, "staff_hackney")
    html = client.get(f"/rollouts/{rollout_id}").text
    assert cells(html, 1) == {
        "targeted": "2",
        "waiting": "0",
        "in_progress": "1",
        "succeeded": "0",
        "failed": "1",
        "withdrawn": "0",
        "superseded": "0",
        "status": "offering",
    }
    assert cells(html, 2)["targeted"] == "2" and cells(html, 2)["status"] == "waiting"
    assert f"{second[0]}</a> (wave 1): sha256 mismatch: refused" in html
    assert "Borough</dt><dd>Hackney" in html
    assert "/pause" not in html  # staff may watch rollouts, not steer them

    report(fleet_ctx, first[0], first[1], "succeeded", app="0.2.0")
    tick(fleet_ctx.sessions, recorder, BASE)  # the wave has finished: the soak starts
    status = cells(client.get(f"/rollouts/{rollout_id}").text, 1)["status"]
    assert re.fullmatch(r"soaking, (9|10) min of soak left", status), status

    device = client.get(f"/devices/{second[0]}").text
    assert 'data-state="failed"' in device and "sha256 mismatch: refused" in device
    assert 'data-state="downloading"' not in device
    assert 'data-state="downloading"' in client.get(f"/devices/{first[0]}").text

    releases = client.get("/releases").text
    assert "0.2.0" in releases and "app bundle" in releases and "damp threshold fix" in releases
    assert f'href="/rollouts/{rollout_id}"' in releases
    listing = client.get("/rollouts").text
    assert f'data-rollout="{rollout_id}"' in listing and "1 updated, 1 failed" in listing


def test_a_rollout_overtaken_by_a_newer_one_shows_it_per_wave_and_device(
    client: TestClient,
    fleet_ctx: FleetContext,  # noqa: F811
    recorder: Recorder,
    rollout_id: int,
    tmp_path: Path,
) -> None:
    newer = hackney_rollout(
        fleet_ctx, publish_release(fleet_ctx, tmp_path / "newer", "0.3.0"), extra_devices=0
    )
    tick(fleet_ctx.sessions, recorder, BASE)  # the newer canary wave: the same two devices
    sign_in(client, "staff_hackney")
    html = client.get(f"/rollouts/{rollout_id}").text
    assert cells(html, 1)["superseded"] == "2" and cells(html, 1)["waiting"] == "0"
    reason = f'data-field="reason">superseded by rollout {newer} (0.3.0)<'
    assert html.count(reason) == 2


def test_other_boroughs_staff_do_not_see_the_rollout(
    client: TestClient,
    fleet_ctx: FleetContext,  # noqa: F811
    rollout_id: int,
) -> None:
    sign_in(client, "staff_camden")
    assert client.get(f"/rollouts/{rollout_id}").status_code == 404
    assert "data-rollout=" not in client.get("/rollouts").text
    releases = client.get("/releases").text
    assert "0.2.0" in releases and f"/rollouts/{rollout_id}" not in releases
    token = csrf_of(client, "/rollouts")
    r = client.post(f"/rollouts/{rollout_id}/abort", data={"csrf": token})
    assert r.status_code in (403, 404)
    with fleet_ctx.sessions() as s:
        assert s.get(Rollout, rollout_id).state == "running"  # type: ignore[union-attr]


def test_pause_resume_abort_need_the_permission_and_the_form_token(
    client: TestClient,
    fleet_ctx: FleetContext,  # noqa: F811
    recorder: Recorder,
    rollout_id: int,
) -> None:
    here = f"/rollouts/{rollout_id}"
    sign_in(client, "staff_hackney")
    token = csrf_of(client, here)
    assert client.post(f"{here}/pause", data={"csrf": token}).status_code == 403
    sign_in(client, "admin")
    assert client.post(f"{here}/pause", data={"reason": "x"}).status_code == 403  # no token
    token = csrf_of(client, here)
    offered = set(jobs(fleet_ctx, rollout_id))

    r = client.post(f"{here}/pause", data={"csrf": token, "reason": "tenant complaints"})
    assert r.status_code == 200 and "paused" in r.text and "tenant complaints" in r.text
    assert recorder.withdrawn() == offered  # retained offers not yet taken are cleared
    r = client.post(f"{here}/pause", data={"csrf": token})
    assert "not done: rollout" in r.text and "only a running one can pause" in r.text
    r = client.post(f"{here}/resume", data={"csrf": token})
    assert 'id="rollout-state">running<' in r.text
    r = client.post(f"{here}/abort", data={"csrf": token})
    assert 'id="rollout-state">aborted<' in r.text
    assert cells(r.text, 2)["status"] == "not reached"

    with fleet_ctx.sessions() as s:
        entries = s.scalars(
            select(AuditEntry)
            .where(AuditEntry.target_type == "ota_rollout", AuditEntry.actor.like("user:%"))
            .order_by(AuditEntry.id)
        ).all()
    assert [e.action for e in entries] == [
        "ota.rollout.pause",
        "ota.rollout.resume",
        "ota.rollout.abort",
    ]
    assert all("admin@example.org" in e.actor for e in entries)
    assert entries[0].detail == {"reason": "tenant complaints"}


def test_the_rollout_form_offers_what_the_fleet_has(
    client: TestClient,
    fleet_ctx: FleetContext,  # noqa: F811
    world: World,  # noqa: F811
    tmp_path: Path,
) -> None:
    """No release yet: no form, a pointer to publishing one. Then the boards and tags of the
    devices the user can see, so a target is picked rather than typed."""
    sign_in(client, "admin")
    page = client.get("/rollouts").text
    assert "No release to roll out yet" in page and "Start rollout" not in page
    publish_release(fleet_ctx, tmp_path / "keys")
    with fleet_ctx.sessions() as s:
        device = s.scalars(select(Device).where(Device.device_id == "cs-hackney-0001")).one()
        device.board = "firebeetle-sht41-ds18b20-2aa"
        set_tags(s, device=device, names=["pilot"])
        s.commit()
    page = client.get("/rollouts").text
    assert "Start rollout" in page and "No release to roll out yet" not in page
    board = re.search(r'<select name="board">(.*?)</select>', page, re.S)
    assert board is not None
    assert re.findall(r'<option value="([^"]*)">', board.group(1)) == [
        "",
        "devkitc-sht41",
        "firebeetle-sht41-ds18b20-2aa",
    ]
    tags = re.search(r'<datalist id="known-tags">(.*?)</datalist>', page, re.S)
    assert tags is not None and re.findall(r'value="([^"]*)"', tags.group(1)) == ["pilot"]


def test_rollout_started_from_the_form(
    client: TestClient,
    fleet_ctx: FleetContext,  # noqa: F811
    world: World,  # noqa: F811
    tmp_path: Path,
) -> None:
    release = publish_release(fleet_ctx, tmp_path / "keys")
    sign_in(client, "staff_hackney")
    assert "Start rollout" not in client.get("/rollouts").text
    token = csrf_of(client, "/rollouts")
    form = {"csrf": token, "release_id": str(release), "borough": "hackney"}
    assert client.post("/rollouts", data=form).status_code == 403

    sign_in(client, "admin")
    form["csrf"] = csrf_of(client, "/rollouts")
    r = client.post("/rollouts", data={**form, "waves": "0, ten"})
    assert "not started: wave 0 is neither a device count" in r.text
    r = client.post("/rollouts", data={**form, "soak_min": "soon"})
    assert "not started: soak and failure threshold must be numbers" in r.text
    # The form asks in percent, so its refusal speaks in percent too (not a 0-1 share).
    for pct in ("150", "-5", "nan"):
        r = client.post("/rollouts", data={**form, "failure_pct": pct})
        assert "not started: the failure threshold is a percentage, 0 to 100" in r.text, pct
    # A tag (or board, or device id) that reaches nothing is a typo, not an empty success.
    r = client.post("/rollouts", data={**form, "tag": "pilot"})
    assert (
        "not started: the target matches no device (tag &#39;pilot&#39;, borough Hackney)" in r.text
    )
    r = client.post("/rollouts", data={**form, "device_ids": "cs-hackney-0001 cs-hackney-9999"})
    assert "not started: no such device in the target: cs-hackney-9999" in r.text
    # An empty form never means the whole fleet: every device only when asked for.
    r = client.post("/rollouts", data={**form, "borough": ""})
    assert "not started: the target names no devices" in r.text
    r = client.post("/rollouts", data={**form, "device_ids": " , "})
    assert "not started: the device ids field holds no id" in r.text
    with fleet_ctx.sessions() as s:
        assert s.scalars(select(Rollout)).all() == []
        device = s.scalars(select(Device).where(Device.device_id == "cs-hackney-0001")).one()
        set_tags(s, device=device, names=["pilot"])
        s.commit()
    r = client.post("/rollouts", data={**form, "waves": "1, 100%", "tag": "pilot"})
    assert r.status_code == 200 and "rollout started" in r.text
    assert "Tag</dt><dd>pilot" in r.text and "Borough</dt><dd>Hackney" in r.text
    with fleet_ctx.sessions() as s:
        rollout = s.scalars(select(Rollout)).one()
        assert rollout.target == {"borough_id": world.borough_ids["hackney"], "tag": "pilot"}
        assert rollout.waves == [1, "100%"] and rollout.soak_s == 3600
        actor = s.scalars(
            select(AuditEntry.actor).where(
                AuditEntry.action == "ota.rollout.create", AuditEntry.target_id == str(rollout.id)
            )
        ).one()
        assert "admin@example.org" in actor

    r = client.post("/rollouts", data={**form, "borough": "", "every": "1"})
    assert r.status_code == 200 and "rollout started" in r.text, r.text[-800:]
    with fleet_ctx.sessions() as s:
        every = s.scalars(select(Rollout).order_by(Rollout.id.desc())).first()
        assert every is not None and every.target == {"all": True}
        every.state = "completed"  # a completed rollout still offers to late joiners
        s.commit()
        stop = f"/rollouts/{every.id}"
    page = client.get(stop).text
    assert "Abort to stop that." in page and f'action="{stop}/abort"' in page
    assert client.post(f"{stop}/abort", data={"csrf": form["csrf"]}).status_code == 200
    with fleet_ctx.sessions() as s:
        assert s.get(Rollout, every.id).state == "aborted"  # type: ignore[union-attr]
    releases = client.get("/releases").text
    assert '<td data-field="floor">none</td>' in releases
