"""Stop signals for background loops that turn false at a known point of the work."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, event


class StopAfter:
    """A `should_continue` (or lease gate) that turns false for good once `commits`
    transactions have committed on the engine, or once a statement starting with `marker`
    has run: the loop asking it is told to stop right after its first batch."""

    def __init__(self, *, commits: int | None = None, marker: str | None = None) -> None:
        self._commits_left = commits
        self._marker = marker
        self.tripped = False
        self.asked_after = 0  # times asked once tripped

    def __call__(self) -> bool:
        if self.tripped:
            self.asked_after += 1
        return not self.tripped

    def _on_commit(self, _conn: Any) -> None:
        if self._commits_left is not None:
            self._commits_left -= 1
            if self._commits_left <= 0:
                self.tripped = True

    def _on_statement(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if self._marker is not None and statement.startswith(self._marker):
            self.tripped = True


@contextmanager
def stop_after(
    engine: Engine, *, commits: int | None = None, marker: str | None = None
) -> Iterator[StopAfter]:
    stop = StopAfter(commits=commits, marker=marker)
    event.listen(engine, "commit", stop._on_commit)
    event.listen(engine, "before_cursor_execute", stop._on_statement)
    try:
        yield stop
    finally:
        event.remove(engine, "commit", stop._on_commit)
        event.remove(engine, "before_cursor_execute", stop._on_statement)
