"""Update pages: releases, rollouts with per-wave progress, pause/resume/abort, new rollouts
and pinning a device to its version."""

from __future__ import annotations

import re
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, HTTPException, Path, Request, status
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from fleet.access.principal import Principal
from fleet.access.roles import Scope
from fleet.api.deps import check_csrf, get_session, page_user, wake_rollouts
from fleet.api.schemas import MAX_ID
from fleet.dashboard.pages import render_device
from fleet.dashboard.refill import NO_REFUSAL, Refused
from fleet.dashboard.templating import TEMPLATES, back_with_notice
from fleet.models import Device
from fleet.models.base import utcnow
from fleet.models.ota import Rollout
from fleet.ota import report, service
from fleet.ota import rollout as rollouts
from fleet.ota.errors import NotFound, OtaError
from fleet.registry import devices, places

router = APIRouter(include_in_schema=False)
RolloutId = Annotated[int, Path(ge=1, le=MAX_ID)]
DeviceId = Annotated[str, Path(min_length=1, max_length=64)]
DEFAULT_WAVES = "1, 10%, 50%, 100%"
MAX_SOAK_MIN = 30 * 24 * 60
MAX_PIN_REASON = 400
MAX_VERSION = 32  # the width of ota_pins.version
# (words in a refusal, the new-rollout field it is about), first match wins.
ROLLOUT_FIELDS: tuple[tuple[str, str | None], ...] = (
    ("matches no device", None),  # the tag, board or borough: any of them
    ("names no devices", None),
    ("wave", "waves"),
    ("device id", "device_ids"),
    ("no such device", "device_ids"),
    ("target.tag", "tag"),
    ("target.board", "board"),
    ("target.all", "every"),
    ("release", "release_id"),
    ("borough", "borough"),
)


def parse_waves(text: str) -> list[int | str]:
    """ "1, 10%, 100%" → [1, "10%", "100%"]; rollouts.check_waves judges the values."""
    waves: list[int | str] = []
    for part in filter(None, (p.strip() for p in re.split(r"[,\s]+", text))):
        waves.append(int(part) if part.isdigit() else part)
    return waves


@router.get("/releases", response_class=HTMLResponse)
def releases_page(
    request: Request,
    session: Session = Depends(get_session),
    user: Principal = Depends(page_user),
) -> HTMLResponse:
    user.require(Scope.DEVICES_READ)
    return TEMPLATES.TemplateResponse(
        request,
        "ota_releases.html",
        {
            "user": user,
            "releases": report.releases_with_rollouts(session, user),
            "kind_label": report.kind_label,
        },
    )


def render_rollouts(
    request: Request, session: Session, user: Principal, *, refused: Refused = NO_REFUSAL
) -> HTMLResponse:
    """The rollouts page; a refused new rollout comes back filled in."""
    rows = rollouts.visible_rollouts(session, user)
    can_create = Scope.RELEASES_WRITE in user.scopes
    return TEMPLATES.TemplateResponse(
        request,
        "ota_rollouts.html",
        {
            "user": user,
            "rollouts": [(r, report.describe_target(session, r)) for r in rows],
            "counts": report.member_counts(session, [r.id for r in rows]),
            "releases": {rel.id: rel for rel in service.list_releases(session)},
            "can_create": can_create,
            "boroughs": places.visible_boroughs(session, principal=user),
            "boards_and_tags": devices.boards_and_tags(session, user),
            "default_waves": DEFAULT_WAVES,
            "notice": request.query_params.get("notice"),
            "refused": refused,
        },
        status_code=refused.status_code if refused.form else status.HTTP_200_OK,
    )


@router.get("/rollouts", response_class=HTMLResponse)
def rollouts_page(
    request: Request,
    session: Session = Depends(get_session),
    user: Principal = Depends(page_user),
) -> HTMLResponse:
    user.require(Scope.DEVICES_READ)
    return render_rollouts(request, session, user)


def rollout_field(message: str) -> str | None:
    """The new-rollout field a refusal is about, from the words the rollout checks use."""
    for words, name in ROLLOUT_FIELDS:
        if words in message:
            return name
    return None


@router.post("/rollouts")
def create_rollout(
    request: Request,
    release_id: int = Form(..., ge=1, le=MAX_ID),
    borough: str = Form("", max_length=32),
    tag: str = Form("", max_length=64),
    board: str = Form("", max_length=64),
    device_ids: str = Form("", max_length=200_000),
    every: str = Form(""),
    waves: str = Form(DEFAULT_WAVES, max_length=400),
    soak_min: str = Form("60", max_length=10),
    failure_pct: str = Form("10", max_length=10),
    csrf: str = Form(""),
    session: Session = Depends(get_session),
    user: Principal = Depends(page_user),
) -> Response:
    check_csrf(user, csrf)
    user.require(Scope.RELEASES_WRITE)
    typed = {
        "release_id": str(release_id),
        "borough": borough,
        "tag": tag,
        "board": board,
        "device_ids": device_ids,
        "every": every,
        "waves": waves,
        "soak_min": soak_min,
        "failure_pct": failure_pct,
    }

    def refuse(message: str, field: str | None) -> Response:
        said = Refused("new-rollout", f"not started: {message}", field, typed)
        return render_rollouts(request, session, user, refused=said)

    ids = [d for d in re.split(r"[,\s]+", device_ids) if d]
    if device_ids.strip() and not ids:
        return refuse("the device ids field holds no id", "device_ids")
    target: dict[str, Any] = {
        "tag": tag.strip() or None,
        "board": board.strip() or None,
        "device_ids": ids or None,
        # Every device only when asked for: an empty form must never mean the whole fleet.
        "all": True if every else None,
    }
    if borough:
        target["borough_id"] = places.borough_by_code(session, code=borough, principal=user).id
    try:
        soak = int(soak_min)
    except ValueError:
        return refuse("soak and failure threshold must be numbers", "soak_min")
    try:
        threshold = float(failure_pct)
    except ValueError:
        return refuse("soak and failure threshold must be numbers", "failure_pct")
    if not 0 <= soak <= MAX_SOAK_MIN:
        return refuse(f"soak is 0 to {MAX_SOAK_MIN} minutes", "soak_min")
    # The form asks in percent; the rollout keeps a share (0 to 1), so its own message would
    # lead someone to type 0.5 for half.
    if not 0 <= threshold <= 100:
        return refuse("the failure threshold is a percentage, 0 to 100", "failure_pct")
    try:
        rollout = rollouts.create_rollout(
            session,
            user,
            release_id=release_id,
            target=target,
            waves=parse_waves(waves),
            soak_s=soak * 60,
            failure_threshold=threshold / 100,
        )
    except OtaError as exc:
        return refuse(str(exc), rollout_field(str(exc)))
    session.commit()
    wake_rollouts(request)
    return back_with_notice(f"/rollouts/{rollout.id}", "rollout started")


def _visible(session: Session, user: Principal, rollout_id: int) -> Rollout:
    try:
        return rollouts.visible_rollout(session, user, rollout_id)
    except NotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc


@router.get("/rollouts/{rollout_id}", response_class=HTMLResponse)
def rollout_page(
    request: Request,
    rollout_id: RolloutId,
    session: Session = Depends(get_session),
    user: Principal = Depends(page_user),
) -> HTMLResponse:
    user.require(Scope.DEVICES_READ)
    rollout = _visible(session, user, rollout_id)
    return TEMPLATES.TemplateResponse(
        request,
        "ota_rollout.html",
        {
            "user": user,
            "view": report.rollout_view(session, rollout, user, utcnow()),
            "kind_label": report.kind_label,
            "can_act": Scope.RELEASES_WRITE in user.scopes,
            "notice": request.query_params.get("notice"),
        },
    )


@router.post("/rollouts/{rollout_id}/{action}")
def rollout_action(
    request: Request,
    rollout_id: RolloutId,
    action: Annotated[str, Path(pattern="^(pause|resume|abort)$")],
    reason: str = Form("", max_length=400),
    csrf: str = Form(""),
    session: Session = Depends(get_session),
    user: Principal = Depends(page_user),
) -> Response:
    check_csrf(user, csrf)
    user.require(Scope.RELEASES_WRITE)
    rollout = _visible(session, user, rollout_id)
    here = f"/rollouts/{rollout_id}"
    publisher = request.app.state.commands
    try:
        rollouts.act(
            session, user, rollout, action, publisher, reason.strip() or "paused by an operator"
        )
    except OtaError as exc:
        return back_with_notice(here, f"not done: {exc}")
    session.commit()
    wake_rollouts(request)
    return back_with_notice(here, f"rollout {rollout_id} {rollouts.ACTIONS[action]}")


def _visible_device(session: Session, user: Principal, device_id: str) -> Device:
    """Looked up before the permission check: a device of another borough is 404 for anyone."""
    try:
        return service.visible_device(session, user, device_id)
    except NotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc


@router.post("/devices/{device_id}/pin")
def pin_device(
    request: Request,
    device_id: DeviceId,
    reason: str = Form("", max_length=4000),
    version: str = Form("", max_length=400),
    csrf: str = Form(""),
    session: Session = Depends(get_session),
    user: Principal = Depends(page_user),
) -> Response:
    check_csrf(user, csrf)
    device = _visible_device(session, user, device_id)
    user.require(Scope.RELEASES_WRITE)
    here = f"/devices/{quote(device.device_id, safe='')}"
    typed = {"reason": reason, "version": version}

    def refuse(message: str, field: str | None) -> Response:
        said = Refused("pin-form", f"not pinned: {message}", field, typed)
        return render_device(request, session, user, device, refused=said)

    reason, version = reason.strip(), version.strip()
    if not reason:
        return refuse("give a reason (who asked, or why it must stay)", "reason")
    if len(reason) > MAX_PIN_REASON:
        return refuse(f"the reason is at most {MAX_PIN_REASON} characters", "reason")
    if len(version) > MAX_VERSION:
        return refuse(f"a version is at most {MAX_VERSION} characters", "version")
    if not version and not device.fw_version:
        return refuse("the device has not reported its version; give one", "version")
    try:
        pin = service.pin(session, user, device.device_id, version or None, reason, known_only=True)
    except OtaError as exc:
        return refuse(str(exc), "reason" if "reason" in str(exc) else "version")
    session.commit()
    return back_with_notice(here, f"pinned to {pin.version}")


@router.post("/devices/{device_id}/unpin")
def unpin_device(
    device_id: DeviceId,
    csrf: str = Form(""),
    session: Session = Depends(get_session),
    user: Principal = Depends(page_user),
) -> Response:
    check_csrf(user, csrf)
    device = _visible_device(session, user, device_id)
    user.require(Scope.RELEASES_WRITE)
    here = f"/devices/{quote(device.device_id, safe='')}"
    try:
        service.unpin(session, user, device.device_id)
    except NotFound:
        return back_with_notice(here, "not unpinned: the device is not pinned")
    session.commit()
    return back_with_notice(here, "unpinned: rollouts may update it again")
