"""Refusals shown as a page in the dashboard's layout: what went wrong and a way back."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from urllib.parse import urlsplit, urlunsplit

from fastapi import Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from fleet.access import accounts
from fleet.access.principal import Principal
from fleet.api.deps import SESSION_COOKIE
from fleet.core.context import FleetContext
from fleet.dashboard.templating import TEMPLATES
from fleet.models.base import utcnow

TITLES = {
    400: "Not accepted",
    403: "Not allowed",
    404: "Not found",
    405: "Not possible here",
    409: "Not done",
    422: "Not accepted",
}


@dataclass(frozen=True)
class Problem:
    """One refused field; `typed` is the text sent for it, shown so it can be copied, not lost."""

    field: str
    message: str
    typed: str | None = None


def _viewer(ctx: FleetContext, token: str | None) -> Principal | None:
    if not token:
        return None
    with ctx.sessions() as session:
        return accounts.principal_from_session(session, token, now=utcnow())


def _phrase(status_code: int) -> str:
    try:
        return HTTPStatus(status_code).phrase
    except ValueError:
        return "Not done"


def back_link(request: Request) -> str:
    """The page the browser came from when it is one of ours; the overview otherwise."""
    came_from = urlsplit(request.headers.get("referer", ""))
    if came_from.netloc != request.url.netloc or not came_from.path.startswith("/"):
        return "/"
    return urlunsplit(("", "", came_from.path, came_from.query, ""))


async def error_page(
    request: Request,
    status_code: int,
    reason: str,
    *,
    problems: Sequence[Problem] = (),
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    user = await run_in_threadpool(
        _viewer, request.app.state.fleet, request.cookies.get(SESSION_COOKIE)
    )
    title = TITLES.get(status_code) or _phrase(status_code)
    return TEMPLATES.TemplateResponse(
        request,
        "error.html",
        {
            "user": user,
            "title": title,
            "reason": reason,
            "problems": problems,
            "back": back_link(request),
        },
        status_code=status_code,
        headers=dict(headers or {}),
    )
