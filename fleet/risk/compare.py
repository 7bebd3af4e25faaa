"""Did the works help? Risk indicators over equal windows before and after an intervention.

Landlords must evidence that a fix worked. Comparing "the week before" with "the week after"
only means something when both windows are the same length and both have data, so the window
is the shorter of the requested length and the time elapsed since the works, and each side
reports its coverage. The verdict is deliberately simple and stated with its reasons:

- ``insufficient_data``: a window shorter than a day, or either side under half covered.
- ``improved``: the share of hours at risk (surface RH >= 80 % or room RH >= 70 %) fell by at
  least 10 percentage points and the mould index did not grow faster than before.
- ``worse``: that share rose by at least 10 points.
- ``no_clear_change`` otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import NamedTuple

SURFACE_RH_LIMIT = 80.0
ROOM_RH_LIMIT = 70.0
MIN_WINDOW = timedelta(days=1)
MIN_COVERAGE = 0.5
CLEAR_CHANGE = 0.10


class HourPoint(NamedTuple):
    """One stored hour of one placement."""

    hour: datetime
    humidity: float
    surface_rh: float
    mould_index: float


class Verdict(StrEnum):
    IMPROVED = "improved"
    WORSE = "worse"
    NO_CLEAR_CHANGE = "no_clear_change"
    INSUFFICIENT_DATA = "insufficient_data"


@dataclass(frozen=True)
class WindowStats:
    start: datetime
    end: datetime
    hours: int  # placement-hours with data
    coverage: float  # share of the window's hours with data (per placement)
    mean_rh: float | None
    mean_surface_rh: float | None
    share_at_risk: float | None
    mould_change: float | None  # mould index at the end minus at the start, summed over rooms

    def to_dict(self) -> dict[str, object]:
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "hours": self.hours,
            "coverage": round(self.coverage, 3),
            "mean_rh": _round(self.mean_rh),
            "mean_surface_rh": _round(self.mean_surface_rh),
            "share_at_risk": _round(self.share_at_risk, 3),
            "mould_change": _round(self.mould_change, 4),
        }


def _round(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


@dataclass(frozen=True)
class Comparison:
    works_at: datetime
    window: timedelta
    before: WindowStats
    after: WindowStats
    verdict: Verdict
    reasons: tuple[str, ...]

    def to_dict(self) -> dict[str, object]:
        return {
            "works_at": self.works_at.isoformat(),
            "window_hours": self.window.total_seconds() / 3600.0,
            "before": self.before.to_dict(),
            "after": self.after.to_dict(),
            "verdict": str(self.verdict),
            "reasons": list(self.reasons),
        }


def window_stats(
    series: Sequence[Sequence[HourPoint]], start: datetime, end: datetime
) -> WindowStats:
    """Indicators over ``[start, end)`` for several placements' time-ordered hours."""
    span_hours = max((end - start).total_seconds() / 3600.0, 0.0)
    hours = 0
    rh_sum = srh_sum = 0.0
    at_risk = 0
    mould_change = 0.0
    have_mould = False
    for points in series:
        inside = [p for p in points if start <= p.hour < end]
        if not inside:
            continue
        hours += len(inside)
        for p in inside:
            rh_sum += p.humidity
            srh_sum += p.surface_rh
            if p.surface_rh >= SURFACE_RH_LIMIT or p.humidity >= ROOM_RH_LIMIT:
                at_risk += 1
        mould_change += inside[-1].mould_index - inside[0].mould_index
        have_mould = True
    placements = max(len(series), 1)
    coverage = hours / (span_hours * placements) if span_hours else 0.0
    return WindowStats(
        start=start,
        end=end,
        hours=hours,
        coverage=min(coverage, 1.0),
        mean_rh=rh_sum / hours if hours else None,
        mean_surface_rh=srh_sum / hours if hours else None,
        share_at_risk=at_risk / hours if hours else None,
        mould_change=mould_change if have_mould else None,
    )


def compare(
    series: Sequence[Sequence[HourPoint]],
    works_at: datetime,
    *,
    data_until: datetime,
    window: timedelta = timedelta(days=14),
) -> Comparison:
    """Compare ``[works - w, works)`` with ``[works, works + w)``.

    ``w`` is ``window`` or the time between the works and ``data_until`` (the end of the
    newest processed hour), whichever is shorter, so both sides are equally long.
    """
    w = max(min(window, data_until - works_at), timedelta(0))
    before = window_stats(series, works_at - w, works_at)
    after = window_stats(series, works_at, works_at + w)
    verdict, reasons = _verdict(w, before, after)
    return Comparison(works_at, w, before, after, verdict, tuple(reasons))


def _verdict(w: timedelta, before: WindowStats, after: WindowStats) -> tuple[Verdict, list[str]]:
    if w < MIN_WINDOW:
        return Verdict.INSUFFICIENT_DATA, [
            f"only {w.total_seconds() / 3600:.0f} h of data since the works; need at least 24 h"
        ]
    b_share, a_share = before.share_at_risk, after.share_at_risk
    for name, side, share in (("before", before, b_share), ("after", after, a_share)):
        if side.coverage < MIN_COVERAGE or share is None:
            return Verdict.INSUFFICIENT_DATA, [
                f"the {name} window has data for {side.coverage:.0%} of its hours; "
                f"need at least {MIN_COVERAGE:.0%}"
            ]
    if b_share is None or a_share is None:  # unreachable after the loop; narrows the types
        return Verdict.INSUFFICIENT_DATA, []
    delta = a_share - b_share
    reasons = [
        f"hours at risk: {b_share:.0%} before, {a_share:.0%} after",
        f"mean room RH: {before.mean_rh:.1f} % before, {after.mean_rh:.1f} % after",
        f"mean surface RH: {before.mean_surface_rh:.1f} % before, "
        f"{after.mean_surface_rh:.1f} % after",
    ]
    growth_before = before.mould_change or 0.0
    growth_after = after.mould_change or 0.0
    reasons.append(f"mould index change: {growth_before:+.3f} before, {growth_after:+.3f} after")
    if delta <= -CLEAR_CHANGE and growth_after <= growth_before + 1e-9:
        return Verdict.IMPROVED, reasons
    if delta >= CLEAR_CHANGE:
        return Verdict.WORSE, reasons
    return Verdict.NO_CLEAR_CHANGE, reasons
