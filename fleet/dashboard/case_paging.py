"""Pages of the case list, newest first on the shared (time, id) keyset: Next follows the
last case shown, Newer goes back a page, and nothing beyond a page is ever silently dropped."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from fleet.access.principal import Principal
from fleet.cases import service as cases
from fleet.core.keyset import Cursor
from fleet.models import Case

#: The tabs of the case list and the status each reads (overdue: open, a deadline passed).
SHOWS = {"open": "open", "overdue": "open", "closed": "closed", "all": None}


@dataclass(frozen=True)
class CasePage:
    cases: Sequence[Case]
    total: int
    #: Position (from 1) of the first case shown among all that match.
    start: int
    next: Cursor | None
    #: Whether a newer page exists, and where it starts (None: at the newest case).
    has_newer: bool
    newer: Cursor | None

    @property
    def end(self) -> int:
        return self.start + len(self.cases) - 1


def page_of(
    session: Session,
    *,
    principal: Principal,
    show: str,
    after: Cursor | None,
    now: datetime,
    size: int,
) -> CasePage:
    if show == "overdue":
        return _in_memory(cases.overdue_cases(session, principal=principal, now=now), after, size)
    status = SHOWS[show]
    total = cases.count_cases(session, principal=principal, status=status)
    found = cases.list_cases(
        session, principal=principal, status=status, limit=size + 1, after=after
    )
    shown = found[:size]
    following = cases.case_cursor(shown[-1]) if len(found) > size else None
    if after is None:
        return CasePage(shown, total, 1, following, False, None)
    # Back from the first case shown (or from the cursor when it is past the end).
    top = cases.case_cursor(shown[0]) if shown else after
    newer = cases.newer_cases(
        session, principal=principal, status=status, before=top, limit=size + 1
    )
    start = cases.count_cases(session, principal=principal, status=status, newer_than=top) + 1
    back = cases.case_cursor(newer[size]) if len(newer) > size else None
    return CasePage(shown, total, start, following, bool(newer), back)


def _in_memory(everything: list[Case], after: Cursor | None, size: int) -> CasePage:
    """The same paging over cases already read newest first."""
    first = 0
    if after is not None:
        first = next(
            (i for i, c in enumerate(everything) if after.holds_below(c.opened_at, c.id)),
            len(everything),
        )
    shown = everything[first : first + size]
    following = cases.case_cursor(shown[-1]) if first + size < len(everything) else None
    back_from = first - size
    back = cases.case_cursor(everything[back_from - 1]) if back_from > 0 else None
    return CasePage(shown, len(everything), first + 1, following, first > 0, back)
