"""Keyset paging for lists read newest first: a page ends at its last row's time and id.

The next page starts strictly below that pair, so rows added or changed meanwhile shift no
later page (an offset would skip or repeat them). The token is opaque to clients: they follow
the `Link: <...>; rel="next"` header unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, or_

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


@dataclass(frozen=True)
class Cursor:
    """The (time, id) of the last row of a page."""

    at: datetime
    row_id: int

    def token(self) -> str:
        return f"{(self.at - _EPOCH) // _MICROSECOND}_{self.row_id}"

    @classmethod
    def parse(cls, token: str, *, what: str = "page") -> Cursor:
        refused = f"not a {what} cursor; follow the next link unchanged"
        micros, sep, row_id = token.partition("_")
        if not sep or not micros.lstrip("-").isdigit() or not row_id.isdigit():
            raise ValueError(refused)
        try:
            return cls(_EPOCH + int(micros) * _MICROSECOND, int(row_id))
        except OverflowError as exc:
            raise ValueError(refused) from exc

    def below(self, at: Any, row_id: Any) -> ColumnElement[bool]:
        """Rows after this cursor in (time, id) descending order."""
        return or_(at < self.at, and_(at == self.at, row_id < self.row_id))

    def above(self, at: Any, row_id: Any) -> ColumnElement[bool]:
        """Rows before this cursor in that order (newer), to page back towards the newest."""
        return or_(at > self.at, and_(at == self.at, row_id > self.row_id))

    def holds_below(self, at: datetime, row_id: int) -> bool:
        """:meth:`below` for a row already read."""
        return (at, row_id) < (self.at, self.row_id)
