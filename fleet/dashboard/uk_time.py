"""Times typed into dashboard forms are UK wall-clock times.

A browser's datetime-local field carries no offset, and UK wall-clock time is not one line:
when the clocks go back, 01:00-01:59 happens twice (BST, then GMT); when they go forward,
01:00-01:59 never happens. Taking either silently would put a case's awareness or a step an
hour away from when it was, on evidence a borough may be held to, so the first is asked
about and the second refused.
"""

from __future__ import annotations

from datetime import UTC, datetime

from fleet.risk.workdays import UK

#: The answers to "which 01:xx?" on the night the clocks go back, as the form sends them.
CLOCKS = {"BST": 0, "GMT": 1}


class UkTimeError(ValueError):
    """A typed time that cannot be placed; ``field`` is the form field to mark."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


def uk_time(value: str, *, field: str, clock: str = "") -> datetime | None:
    """``value`` (``YYYY-MM-DDTHH:MM``) read as UK time; empty means now (None).

    ``clock`` ("BST" or "GMT") says which of a repeated hour was meant; it is asked for
    (``UkTimeError`` on field ``clock``) only when the time is one of those.
    """
    if not value:
        return None
    try:
        typed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise UkTimeError(f"{value!r} is not a date and time", field) from exc
    if typed.tzinfo is not None:
        return typed
    first, second = typed.replace(tzinfo=UK, fold=0), typed.replace(tzinfo=UK, fold=1)
    if first.utcoffset() == second.utcoffset():
        return first.astimezone(UTC)
    said = f"{typed:%H:%M} on {typed:%A} {typed.day} {typed:%B %Y}"
    if not _happened(first):
        raise UkTimeError(
            f"{said} did not happen in the UK: the clocks went forward an hour that night; "
            "enter the time as the clocks showed it",
            field,
        )
    if clock not in CLOCKS:
        raise UkTimeError(
            f"{said} happened twice: the clocks went back an hour that night; "
            "choose whether it was the first time (BST) or the second (GMT)",
            "clock",
        )
    # In UTC: an aware time in the repeated hour compares unequal to every other zone's.
    return (first if CLOCKS[clock] == 0 else second).astimezone(UTC)


def _happened(local: datetime) -> bool:
    """The wall-clock time comes back unchanged from UTC (a skipped time does not)."""
    back = local.astimezone(UTC).astimezone(UK)
    return back.replace(tzinfo=None, fold=0) == local.replace(tzinfo=None, fold=0)
