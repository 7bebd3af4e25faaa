"""The audit log page: filter by action, who, target and dates; every target leads to its own
history and its page; the same filter downloads as CSV."""

from __future__ import annotations

import math
from datetime import date, datetime, time, timedelta
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from fleet.access import audit_search
from fleet.access.principal import Principal
from fleet.access.roles import Scope
from fleet.api.deps import get_session, page_user
from fleet.dashboard.templating import TEMPLATES, clamped_page
from fleet.risk.workdays import UK

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 50
# Where an entry's target has a page of its own.
TARGET_PAGES = {
    "device": "/devices/{}",
    "case": "/cases/{}",
    "ota_rollout": "/rollouts/{}",
    "property": "/registry/properties/{}",
}


def _day(text: str, label: str) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise audit_search.AuditFilterError(
            f"{label} is not a date (YYYY-MM-DD): {text!r}"
        ) from None


def _midnight(day: date) -> datetime:
    """The start of a UK day: the page shows UK times, so its dates are UK dates too."""
    return datetime.combine(day, time(), tzinfo=UK)


def page_filter(
    action: str, actor: str, target_type: str, target_id: str, start: str, end: str
) -> audit_search.AuditFilter:
    """The form's fields as a filter; `end` is a whole day, so it counts up to its midnight."""
    first, last = _day(start, "from"), _day(end, "to")
    if first is not None and last is not None and first > last:
        raise audit_search.AuditFilterError("“from” must be on or before “to”")
    return audit_search.AuditFilter(
        action=action or None,
        actor=actor.strip() or None,
        target_type=target_type or None,
        target_id=target_id.strip() or None,
        since=_midnight(first) if first else None,
        until=_midnight(last + timedelta(days=1)) if last else None,
    )


def target_page(target_type: str | None, target_id: str | None) -> str | None:
    pattern = TARGET_PAGES.get(target_type or "")
    return pattern.format(target_id) if pattern and target_id else None


@router.get("/audit", response_class=HTMLResponse)
def audit_page(
    request: Request,
    action: str = Query("", max_length=64),
    actor: str = Query("", max_length=200),
    target_type: str = Query("", max_length=32),
    target_id: str = Query("", max_length=64),
    start: str = Query("", alias="from", max_length=10),
    end: str = Query("", alias="to", max_length=10),
    page: int = Query(1, ge=1, le=100_000),
    session: Session = Depends(get_session),
    user: Principal = Depends(page_user),
) -> Response:
    user.require(Scope.AUDIT_READ)
    form = {
        "action": action,
        "actor": actor,
        "target_type": target_type,
        "target_id": target_id,
        "from": start,
        "to": end,
    }
    query = urlencode({k: v for k, v in form.items() if v})
    actions, target_types = audit_search.choices(session, user)
    context = {
        "user": user,
        "form": form,
        "actions": actions,
        "target_types": target_types,
        "entries": [],
        "total": 0,
        "page": page,
        "pages": 1,
        "query": query,
        "notice": "",
        "target_page": target_page,
    }
    try:
        wanted = page_filter(action, actor, target_type, target_id, start, end)
    except audit_search.AuditFilterError as exc:
        context["notice"] = f"Not searched: {exc}"
        return TEMPLATES.TemplateResponse(request, "audit.html", context)
    total = audit_search.count(session, user, wanted)
    context["total"] = total
    pages = max(1, math.ceil(total / PAGE_SIZE))
    if page > pages:
        return clamped_page(request, pages)
    context["pages"] = pages
    context["entries"] = audit_search.find(
        session, user, wanted, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE
    )
    context["export"] = "/api/v1/audit/export.csv?" + urlencode(wanted.params())
    return TEMPLATES.TemplateResponse(request, "audit.html", context)
