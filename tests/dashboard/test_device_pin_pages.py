"""Pinning a device to its version from the device page: the permission and the form token,
borough scoping, clear notices for bad input, audit entries with the user as actor, and a
rollout that leaves the pinned device alone until it is unpinned."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import select

from fleet.core.context import FleetContext
from fleet.models import AuditEntry, Device
from fleet.models.ota import VersionPin
from fleet.ota.engine import tick
from tests.dashboard.ota_data import Recorder, hackney_rollout, jobs, publish_release, report
from tests.dashboard.test_ota_pages import BASE, client, csrf_of, recorder, sign_in  # noqa: F401
from tests.fleet.conftest import World, fleet_ctx, world  # noqa: F401

DEVICE = "cs-hackney-0001"
HERE = f"/devices/{DEVICE}"


def set_version(ctx: FleetContext, device_id: str, version: str | None) -> None:
    with ctx.sessions.begin() as s:
        device = s.scalars(select(Device).where(Device.device_id == device_id)).one()
        device.fw_version = version


def pin_of(ctx: FleetContext, device_id: str) -> VersionPin | None:
    with ctx.sessions() as s:
        pk = s.scalars(select(Device.id).where(Device.device_id == device_id)).one()
        return s.get(VersionPin, pk)


def pin_audit(ctx: FleetContext) -> list[AuditEntry]:
    with ctx.sessions() as s:
        return list(
            s.scalars(
                select(AuditEntry)
                .where(AuditEntry.action.in_(["ota.pin", "ota.unpin"]))
                .order_by(AuditEntry.id)
            )
        )


def test_staff_may_not_pin_and_other_boroughs_get_404(
    client: TestClient,  # noqa: F811
    fleet_ctx: FleetContext,  # noqa: F811
    world: World,  # noqa: F811
) -> None:
    set_version(fleet_ctx, DEVICE, "0.1.0")
    sign_in(client, "staff_hackney")
    page = client.get(HERE).text
    assert "Unpin" not in page and 'id="pin-form"' not in page  # no releases:write, no form
    token = csrf_of(client, HERE)
    assert client.post(f"{HERE}/pin", data={"csrf": token, "reason": "x"}).status_code == 403
    assert client.post(f"{HERE}/unpin", data={"csrf": token}).status_code == 403

    sign_in(client, "staff_camden")
    token = csrf_of(client, "/devices/cs-camden-0001")
    assert client.get(HERE).status_code == 404
    assert client.post(f"{HERE}/pin", data={"csrf": token, "reason": "x"}).status_code == 404
    assert client.post(f"{HERE}/unpin", data={"csrf": token}).status_code == 404
    # Its own device: seen, but pinning still needs the permission.
    r = client.post("/devices/cs-camden-0001/pin", data={"csrf": token, "reason": "x"})
    assert r.status_code == 403

    sign_in(client, "admin")
    assert client.post("/devices/cs-nowhere-0001/pin", data={"reason": "x"}).status_code == 403
    token = csrf_of(client, HERE)
    r = client.post("/devices/cs-nowhere-0001/pin", data={"csrf": token, "reason": "x"})
    assert r.status_code == 404
    assert pin_of(fleet_ctx, DEVICE) is None and pin_audit(fleet_ctx) == []


def test_admin_pins_and_unpins_with_notices_and_audit(
    client: TestClient,  # noqa: F811
    fleet_ctx: FleetContext,  # noqa: F811
    world: World,  # noqa: F811
) -> None:
    set_version(fleet_ctx, DEVICE, None)
    sign_in(client, "admin")
    assert 'id="pin-form"' in client.get(HERE).text
    assert client.post(f"{HERE}/pin", data={"reason": "tenant asked"}).status_code == 403
    token = csrf_of(client, HERE)

    def pin(pinned: bool = False, **form: str) -> str:
        r = client.post(f"{HERE}/pin", data={"csrf": token, **form})
        # A refusal is the page again, answered 422 with what was typed kept.
        assert r.status_code == (200 if pinned else 422), r.text
        return r.text

    assert "not pinned: give a reason" in pin(reason="   ")
    assert "not pinned: the reason is at most 400 characters" in pin(reason="x" * 401)
    assert "not pinned: a version is at most 32 characters" in pin(reason="r", version="1" * 33)
    assert "not pinned: the device has not reported its version; give one" in pin(reason="r")
    assert pin_of(fleet_ctx, DEVICE) is None and pin_audit(fleet_ctx) == []

    set_version(fleet_ctx, DEVICE, "0.1.0")
    page = pin(True, reason=" tenant asked for no updates ")
    assert 'role="status">pinned to 0.1.0<' in page
    assert "Pinned to 0.1.0 by user:" in page and ": tenant asked for no updates." in page
    assert 'id="pin-form"' not in page and ">Unpin</button>" in page
    row = pin_of(fleet_ctx, DEVICE)
    assert row is not None and (row.version, row.reason) == ("0.1.0", "tenant asked for no updates")

    page = client.post(f"{HERE}/unpin", data={"csrf": token}).text
    assert "unpinned: rollouts may update it again" in page and 'id="pin"' not in page
    assert pin_of(fleet_ctx, DEVICE) is None
    page = client.post(f"{HERE}/unpin", data={"csrf": token}).text
    assert "not unpinned: the device is not pinned" in page

    # A version that is neither published nor running is a typo, refused as the API does.
    assert "not pinned: no release 0.0.9 is published" in pin(reason="hold back", version="0.0.9")
    assert "not pinned: version" in pin(reason="hold back", version="next week")
    assert pin_of(fleet_ctx, DEVICE) is None
    assert "pinned to 0.1.0" in pin(True, reason="hold back", version="0.1.0")
    assert pin_of(fleet_ctx, DEVICE).version == "0.1.0"  # type: ignore[union-attr]

    entries = pin_audit(fleet_ctx)
    assert [e.action for e in entries] == ["ota.pin", "ota.unpin", "ota.pin"]
    assert all("admin@example.org" in e.actor for e in entries)
    assert all(e.target_type == "device" and e.target_id == DEVICE for e in entries)
    assert all(e.borough_id == world.borough_ids["hackney"] for e in entries)
    assert entries[0].detail == {"version": "0.1.0", "reason": "tenant asked for no updates"}
    assert entries[2].detail == {"version": "0.1.0", "reason": "hold back"}


def tick_until(ctx: FleetContext, publisher: Recorder, done: Callable[[], bool]) -> None:
    """Drives the engine a bounded number of steps (a wave, its soak of 0 s, the next wave)."""
    for _ in range(6):
        if done():
            return
        tick(ctx.sessions, publisher, BASE)
    assert done(), "the rollout did not get there within 6 engine steps"


def test_a_device_pinned_from_the_page_is_left_out_of_a_rollout_until_unpinned(
    client: TestClient,  # noqa: F811
    fleet_ctx: FleetContext,  # noqa: F811
    world: World,  # noqa: F811
    recorder: Recorder,  # noqa: F811
    tmp_path: Path,
) -> None:
    release = publish_release(fleet_ctx, tmp_path / "keys")
    rollout_id = hackney_rollout(fleet_ctx, release, extra_devices=3, soak_s=0)  # 4 devices
    sign_in(client, "admin")
    token = csrf_of(client, HERE)
    page = client.post(f"{HERE}/pin", data={"csrf": token, "reason": "damp survey running"}).text
    assert "pinned to 0.1.0" in page

    tick(fleet_ctx.sessions, recorder, BASE)
    first = jobs(fleet_ctx, rollout_id)
    assert len(first) == 2 and DEVICE not in first
    for device_id, job in first.items():
        report(fleet_ctx, device_id, job, "succeeded", app="0.2.0")
    tick_until(fleet_ctx, recorder, lambda: len(jobs(fleet_ctx, rollout_id)) == 3)
    offered = jobs(fleet_ctx, rollout_id)
    assert DEVICE not in offered  # the last wave took every unpinned Hackney device
    assert not any(f"/{DEVICE}/" in topic for topic, _, _ in recorder.sent)

    page = client.post(f"{HERE}/unpin", data={"csrf": token}).text
    assert "unpinned" in page
    tick_until(fleet_ctx, recorder, lambda: DEVICE in jobs(fleet_ctx, rollout_id))
    assert any(f"/{DEVICE}/" in topic and payload for topic, payload, _ in recorder.sent)
