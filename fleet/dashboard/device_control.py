"""Acting on a device from its page: commands and settings (scope `commands`). The device's
answers show on the page (`fleet.commands`)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, HTTPException, Request, status
from fastapi.responses import Response
from sqlalchemy.orm import Session

from fleet.access.principal import Principal
from fleet.access.roles import Scope
from fleet.api.deps import check_csrf, get_session, page_user
from fleet.commands import record as commands
from fleet.commands import settings as device_settings
from fleet.commands.send import CommandUnavailable
from fleet.dashboard.pages import render_device
from fleet.dashboard.refill import Refused
from fleet.dashboard.templating import back_with_notice
from fleet.models import Device
from fleet.registry import devices as registry

router = APIRouter(include_in_schema=False)


def _device(session: Session, device_id: str, user: Principal, csrf: str) -> Device:
    check_csrf(user, csrf)
    user.require(Scope.COMMANDS)
    try:
        return registry.get_device(session, device_id=device_id, principal=user)
    except registry.DeviceNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc


@router.post("/devices/{device_id}/commands")
def device_command(
    request: Request,
    device_id: str,
    op: str = Form(..., pattern=r"^(reboot|sample-now|identify)$"),
    csrf: str = Form(""),
    session: Session = Depends(get_session),
    user: Principal = Depends(page_user),
) -> Response:
    device = _device(session, device_id, user, csrf)
    try:
        sent = commands.issue(
            session, request.app.state.commands, device=device, op=op, principal=user
        )
        notice = f"{op} sent (command {sent.id}); its answer shows under Commands"
    except CommandUnavailable as exc:
        notice = f"{op} not sent: {exc}"
    return back_with_notice(f"/devices/{device_id}", notice)


@router.post("/devices/{device_id}/config")
def device_settings_form(
    request: Request,
    device_id: str,
    csrf: str = Form(""),
    sample_interval_s: str = Form("", max_length=8),
    health_interval_s: str = Form("", max_length=8),
    uplink_every: str = Form("", max_length=8),
    rh_uplink_above: str = Form("", max_length=8),
    session: Session = Depends(get_session),
    user: Principal = Depends(page_user),
) -> Response:
    """Empty fields stay as they are."""
    device = _device(session, device_id, user, csrf)
    given = {
        "sample_interval_s": sample_interval_s,
        "health_interval_s": health_interval_s,
        "uplink_every": uplink_every,
        "rh_uplink_above": rh_uplink_above,
    }
    try:
        values = {k: _whole(k, v) for k, v in given.items() if v.strip()}
        row = device_settings.set_config(
            session, request.app.state.commands, device=device, values=values, principal=user
        )
    except device_settings.SettingsError as exc:
        # The message starts with the field it is about (none: nothing was given).
        named = str(exc).split(" ", 1)[0].strip("'")
        said = Refused(
            "settings", f"settings not sent: {exc}", named if named in given else None, given
        )
        return render_device(request, session, user, device, refused=said)
    except CommandUnavailable as exc:
        said = Refused(
            "settings",
            f"settings not sent: {exc}",
            None,
            given,
            status.HTTP_503_SERVICE_UNAVAILABLE,
        )
        return render_device(request, session, user, device, refused=said)
    notice = f"settings version {row.version} sent; the device's answer shows below"
    return back_with_notice(f"/devices/{device_id}", notice)


def _whole(name: str, text: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise device_settings.SettingsError(f"{name} must be a whole number") from None
