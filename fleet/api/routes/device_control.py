"""Acting on a device: commands and remote settings, each kept with the device's answer."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from sqlalchemy.orm import Session

from fleet.access.principal import Principal
from fleet.access.roles import Scope
from fleet.api.deps import get_session, require
from fleet.api.routes.devices import device_or_404
from fleet.api.schemas import CommandIn, CommandOut, CommandStateOut, SettingsIn, SettingsOut
from fleet.commands import record as commands
from fleet.commands import settings as device_settings
from fleet.commands.send import CommandUnavailable
from fleet.models import DesiredConfig

router = APIRouter(prefix="/api/v1/devices", tags=["devices"])


@router.post("/{device_id}/commands", response_model=CommandOut, status_code=202)
def command(
    device_id: str,
    body: CommandIn,
    request: Request,
    session: Session = Depends(get_session),
    principal: Principal = Depends(require(Scope.COMMANDS)),
) -> CommandOut:
    device = device_or_404(session, device_id, principal)
    try:
        sent = commands.issue(
            session, request.app.state.commands, device=device, op=body.op, principal=principal
        )
    except CommandUnavailable as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc)) from exc
    return CommandOut(id=sent.id, op=sent.op, topic=sent.topic)


@router.put("/{device_id}/config", response_model=SettingsOut, status_code=202)
def change_settings(
    device_id: str,
    body: SettingsIn,
    request: Request,
    session: Session = Depends(get_session),
    principal: Principal = Depends(require(Scope.COMMANDS)),
) -> SettingsOut:
    """Change sampling, health and (battery) uplink settings. Sent retained on the device's
    `config` topic; GET shows whether it applied them (a battery sensor answers at its next
    uplink wake)."""
    device = device_or_404(session, device_id, principal)
    try:
        row = device_settings.set_config(
            session,
            request.app.state.commands,
            device=device,
            values=body.model_dump(exclude_none=True),
            principal=principal,
        )
    except device_settings.SettingsError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, str(exc)) from exc
    except CommandUnavailable as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc)) from exc
    return SettingsOut.model_validate(row)


@router.get("/{device_id}/config", response_model=SettingsOut)
def settings_state(
    device_id: str,
    session: Session = Depends(get_session),
    principal: Principal = Depends(require(Scope.DEVICES_READ)),
) -> SettingsOut:
    """The settings last asked of the device and its answer; 404 if none were ever changed."""
    device = device_or_404(session, device_id, principal)
    row = session.get(DesiredConfig, device.id)
    if row is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"no settings changed from the fleet for {device_id}"
        )
    return SettingsOut.model_validate(row)


@router.get("/{device_id}/commands", response_model=list[CommandStateOut])
def command_history(
    device_id: str,
    limit: int = Query(20, ge=1, le=200),
    session: Session = Depends(get_session),
    principal: Principal = Depends(require(Scope.DEVICES_READ)),
) -> list[CommandStateOut]:
    """The device's newest commands with what it answered (state sent until it does)."""
    device = device_or_404(session, device_id, principal)
    return [
        CommandStateOut.model_validate(c) for c in commands.recent(session, device.id, limit=limit)
    ]
