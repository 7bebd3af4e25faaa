"""Rejected messages in the log without a line each: a misconfigured fleet sends thousands.

Every reject is stored (the rejects page and API) and counted (``fleet_ingest_messages`` and
``fleet_rejected_messages``), so the log only needs to say that something is wrong. The first
reject of a reason is logged at INFO with its topic and detail, so a new problem shows at
once; the others of the next minute are counted and summed up in one line for the reason
(written with the first batch after the minute). Each reject is also logged at DEBUG.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

WINDOW_S = 60.0


@dataclass(slots=True)
class _Tally:
    started: float
    more: int = 0
    latest: str = ""


class RejectLog:
    """One INFO line per reason per window, with a count; safe to share between threads."""

    def __init__(
        self,
        logger: logging.Logger,
        *,
        window_s: float = WINDOW_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._log = logger
        self._window = window_s
        self._clock = clock
        self._lock = threading.Lock()
        self._tallies: dict[str, _Tally] = {}

    def note(self, rejects: Iterable[tuple[str, str, str]]) -> None:
        """Called once per stored batch with its rejects as (reason, topic, detail); also with
        none, which writes the summaries that are due."""
        now = self._clock()
        lines: list[tuple[object, ...]] = []
        with self._lock:
            self._due(now, lines)
            for reason, topic, detail in rejects:
                self._log.debug("rejected %s on %s: %s", reason, topic, detail)
                tally = self._tallies.get(reason)
                if tally is None:
                    self._tallies[reason] = _Tally(now)
                    lines.append(("rejected %s on %s: %s", reason, topic, detail))
                else:
                    tally.more += 1
                    tally.latest = f"{topic}: {detail}"
        for line in lines:  # outside the lock: a slow log handler holds up no other batch
            self._log.info(*line)

    def _due(self, now: float, lines: list[tuple[object, ...]]) -> None:
        for reason, tally in list(self._tallies.items()):
            if now - tally.started < self._window:
                continue
            if tally.more:
                lines.append(
                    (
                        "rejected %d more %s messages in the last %.0f s (latest on %s)",
                        tally.more,
                        reason,
                        now - tally.started,
                        tally.latest,
                    )
                )
                # The flood goes on: keep counting instead of logging the next one in full.
                self._tallies[reason] = _Tally(now)
            else:
                del self._tallies[reason]
