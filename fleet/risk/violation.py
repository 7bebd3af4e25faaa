"""Evidence record of a breached rule.

Landlords must show when a problem started, how long it lasted and how bad it got; a
violation carries exactly that, in a form that serialises to JSON for storage and reports.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any


def from_epoch(epoch: float) -> datetime:
    """UTC datetime from epoch seconds (rule states keep time as floats)."""
    return datetime.fromtimestamp(epoch, UTC)


@dataclass(frozen=True)
class Violation:
    """Evidence that a rule was breached.

    ``since`` is when the exposure that caused the breach began (for a time-above rule, the
    start of the earliest above-threshold period inside the window at the moment of breach;
    for a mean rule, the start of that window's data). ``breached_at`` is when the limit was
    crossed, ``until`` when the rule stopped being breached (``None`` while it still is) and
    ``last_seen`` the newest data considered. ``peak`` is the highest value in the episode.
    ``time_above`` (time-above rules only) is the total time above the threshold from
    ``since`` to the end of the episode, as opposed to ``duration``, which includes the hours
    the rolling window keeps the rule breached after conditions improved. The risk engine
    feeds these rules raw samples, so it is measured time (each sample holding until the
    next, for at most the rule's ``max_gap``), not a count of hours whose mean was above.
    """

    rule_id: str
    quantity: str
    threshold: float
    since: datetime
    breached_at: datetime
    until: datetime | None
    last_seen: datetime
    peak: float
    time_above: timedelta | None = None

    @property
    def ongoing(self) -> bool:
        return self.until is None

    @property
    def duration(self) -> timedelta:
        """From ``since`` to ``until`` (or to ``last_seen`` while ongoing)."""
        end = self.until if self.until is not None else self.last_seen
        return end - self.since

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule_id": self.rule_id,
            "quantity": str(self.quantity),
            "threshold": self.threshold,
            "since": self.since.isoformat(),
            "breached_at": self.breached_at.isoformat(),
            "until": None if self.until is None else self.until.isoformat(),
            "last_seen": self.last_seen.isoformat(),
            "duration_s": self.duration.total_seconds(),
            "peak": self.peak,
            "time_above_s": None if self.time_above is None else self.time_above.total_seconds(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Violation:
        """Inverse of :meth:`to_dict` (stored evidence survives a restart unchanged)."""
        try:
            until = data["until"]
            above = data.get("time_above_s")
            return cls(
                rule_id=str(data["rule_id"]),
                quantity=str(data["quantity"]),
                threshold=float(data["threshold"]),
                since=datetime.fromisoformat(data["since"]),
                breached_at=datetime.fromisoformat(data["breached_at"]),
                until=None if until is None else datetime.fromisoformat(until),
                last_seen=datetime.fromisoformat(data["last_seen"]),
                peak=float(data["peak"]),
                time_above=None if above is None else timedelta(seconds=float(above)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"invalid stored violation {data!r}: {exc}") from exc
