"""Jinja environment and helpers shared by the dashboard pages."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from urllib.parse import quote, urlencode

from fastapi import Request, status
from fastapi.responses import RedirectResponse
from fastapi.templating import Jinja2Templates

from fleet.dashboard.health_view import cadence_text, health_rows
from fleet.dashboard.refill import NO_REFUSAL
from fleet.risk.workdays import UK, Deadline, uk_date

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))

OVERVIEW_METRICS = {
    "temperature": "Temperature",
    "humidity": "Humidity",
    "co2": "CO₂",
    "battery": "Battery",
}
# SenML units are for machines; people read these.
DISPLAY_UNITS = {"Cel": "°C", "%RH": "%", "%EL": "%", "ppm": " ppm", "Pa": " Pa", "V": " V"}
MAX_PAGE = 100_000  # so a typed page number cannot overflow the database's row offset
STATES = ("online", "sleeping", "late", "offline", "unknown")


def back_with_notice(url: str, notice: str) -> RedirectResponse:
    """Post/redirect/get: the page shows `notice` (quoted, so any text survives the URL)."""
    joiner = "&" if "?" in url else "?"
    return RedirectResponse(
        f"{url}{joiner}notice={quote(notice)}", status_code=status.HTTP_303_SEE_OTHER
    )


def clamped_page(request: Request, pages: int) -> RedirectResponse:
    """The same listing at its last page, for a page number past the end (an old link, a
    narrower filter): the caption, the page links and live updates then agree."""
    query = [(k, v) for k, v in request.query_params.multi_items() if k != "page"]
    query.append(("page", str(pages)))
    return RedirectResponse(
        f"{request.url.path}?{urlencode(query)}", status_code=status.HTTP_303_SEE_OTHER
    )


def fmt_value(value: float, unit: str) -> str:
    return f"{value:.1f}{DISPLAY_UNITS.get(unit, ' ' + unit)}"


def fmt_time(value: datetime | str | None) -> str:
    """An instant as UK wall-clock time with its zone (GMT or BST): the time a person in the
    UK would have read on a clock, which is also how the case forms take times in. The zone
    keeps the repeated October hour apart (01:30 BST, then 01:30 GMT)."""
    if value is None:
        return "never"
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:  # the database stores UTC
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UK).strftime("%Y-%m-%d %H:%M %Z")


def fmt_day(value: datetime | date) -> str:
    """The UK calendar date of an instant (a date is already one)."""
    if isinstance(value, datetime):
        return uk_date(value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
    return value.isoformat()


def fmt_due(deadline: Deadline) -> str:
    """The instant for a deadline counted in hours; otherwise the last UK day in time, said
    to be one: a step done at 00:30 BST the next morning is late, though in UTC it is still
    the due date."""
    if deadline.by_the_hour:
        return fmt_time(deadline.due_before)
    return f"end of {deadline.due_date.isoformat()} (UK date)"


def fmt_basis(deadline: Deadline) -> str:
    """What the period is counted from, as the law counts it: working days and weeks from the
    event's UK date (that day itself not counting), hours from the instant."""
    if deadline.by_the_hour:
        return f"{deadline.basis} from {fmt_time(deadline.counted_from)}"
    return f"{deadline.basis} after {fmt_day(deadline.counted_from)} (UK date)"


def fmt_actor(actor: str | None) -> str:
    """Who did something, for a person: `user:7 a@b.org` is a@b.org, a token names its owner,
    and the system's own changes say why (`system: condition cleared`)."""
    if not actor:
        return "someone unknown"
    if actor == "system" or actor.startswith("system:"):
        why = actor.partition(":")[2].strip()
        return f"the system ({why})" if why else "the system"
    kind, _, rest = actor.partition(" ")
    if kind.startswith("token:") and rest:
        return f"{rest.strip('()')} (API token)"
    return rest or kind


def fmt_pairs(detail: object) -> str:
    """`key: value; …` for a person to read (non-text values as JSON); "" for nothing."""
    if detail is None or detail == {}:
        return ""
    if not isinstance(detail, dict):
        return _text(detail)
    return "; ".join(f"{k}: {_text(v)}" for k, v in detail.items() if v not in ("", None))


def _text(value: object) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(_readable(value), separators=(",", ":"), ensure_ascii=False)


def _readable(value: object) -> object:
    """Measurements to two decimals (a sensor's 20.95178149 says no more than 20.95)."""
    if isinstance(value, float):
        return round(value, 2)
    if isinstance(value, dict):
        return {k: _readable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_readable(v) for v in value]
    return value


TEMPLATES.env.filters["value"] = fmt_value
TEMPLATES.env.filters["pairs"] = fmt_pairs
TEMPLATES.env.filters["due"] = fmt_due
TEMPLATES.env.filters["basis"] = fmt_basis
TEMPLATES.env.filters["when"] = fmt_time
TEMPLATES.env.filters["uk_day"] = fmt_day
TEMPLATES.env.filters["who"] = fmt_actor
TEMPLATES.env.globals["STATES"] = STATES
TEMPLATES.env.globals["health_rows"] = health_rows
TEMPLATES.env.globals["cadence_text"] = cadence_text
TEMPLATES.env.globals["METRICS"] = OVERVIEW_METRICS
TEMPLATES.env.globals["UNITS"] = DISPLAY_UNITS
TEMPLATES.env.globals["NO_REFUSAL"] = NO_REFUSAL
