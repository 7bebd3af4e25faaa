"""Property risk level from the individual indicators, with the evidence behind it.

A housing officer needs one answer ("how urgent is this home?") and the reasons for it, so
the scoring is a plain table of points, summed, with fixed cut-offs. Nothing is weighted
implicitly: every point in the score appears in the evidence list.

Points (``DEFAULT_POINTS``):

===========================  ======  ====================================================
indicator                    points  meaning
===========================  ======  ====================================================
``vtt.visible``              6       VTT index >= 3: mould visible to the naked eye
``vtt.growth``               3       VTT index >= 1 (and < 3): microscopic growth
``vtt.onset``                1       VTT index >= 0.5 (and < 1): growth starting
``bs5250.surface_rh80``      3       surface RH mean above 80 % over days
``adf2006.rh90``             2       room RH above 90 % for more than 1 h in 12 h
``adf2006.rh70``             1       room RH above 70 % for more than 2 h in 12 h
``co2.above_1500``           1       poor ventilation
``co2.above_800``            0       reported as evidence only
``lim.exceeded``             1       at least half the readings at or above LIM_0
===========================  ======  ====================================================

Each rule counts once however many episodes it had (all episodes are listed as evidence);
only the highest VTT band counts. Levels: score 0-1 low, 2-3 elevated, 4-5 high, 6+ severe,
so predicted visible mould alone is severe. Which violations to pass (open ones, or those
that ended in the last N days) is the caller's choice.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from enum import Enum

from fleet.risk.rules import (
    ADF_RH70,
    ADF_RH90,
    BS5250_SURFACE_RH80,
    CO2_ABOVE_800,
    CO2_ABOVE_1500,
)
from fleet.risk.violation import Violation

VTT_VISIBLE = "vtt.visible"
VTT_GROWTH = "vtt.growth"
VTT_ONSET = "vtt.onset"
LIM_EXCEEDED = "lim.exceeded"

DEFAULT_POINTS: Mapping[str, int] = {
    VTT_VISIBLE: 6,
    VTT_GROWTH: 3,
    VTT_ONSET: 1,
    BS5250_SURFACE_RH80: 3,
    ADF_RH90: 2,
    ADF_RH70: 1,
    CO2_ABOVE_1500: 1,
    CO2_ABOVE_800: 0,
    LIM_EXCEEDED: 1,
}

#: Share of readings at or above LIM_0 from which ``lim.exceeded`` counts.
LIM_FRACTION_THRESHOLD = 0.5


class RiskLevel(Enum):
    """Property risk level, ordered from ``LOW`` to ``SEVERE``."""

    LOW = "low"
    ELEVATED = "elevated"
    HIGH = "high"
    SEVERE = "severe"

    @property
    def rank(self) -> int:
        return _RANKS[self]


_RANKS = {RiskLevel.LOW: 0, RiskLevel.ELEVATED: 1, RiskLevel.HIGH: 2, RiskLevel.SEVERE: 3}


def level_for_score(score: int) -> RiskLevel:
    """The fixed cut-offs: 0-1 low, 2-3 elevated, 4-5 high, 6 or more severe."""
    if score >= 6:
        return RiskLevel.SEVERE
    if score >= 4:
        return RiskLevel.HIGH
    if score >= 2:
        return RiskLevel.ELEVATED
    return RiskLevel.LOW


@dataclass(frozen=True)
class Indicators:
    """Inputs for one property (or room): any of them may be missing."""

    mould_index: float | None = None
    violations: Sequence[Violation] = ()
    lim_fraction: float | None = None


@dataclass(frozen=True)
class Evidence:
    """One reason behind the score. ``points`` is 0 for repeated episodes of a counted rule."""

    code: str
    points: int
    detail: str
    violation: Violation | None = None


@dataclass(frozen=True)
class Assessment:
    level: RiskLevel
    score: int
    evidence: tuple[Evidence, ...] = field(default_factory=tuple)


def _vtt_evidence(m: float, points: Mapping[str, int]) -> Evidence | None:
    if m >= 3.0:
        code, what = VTT_VISIBLE, "visible mould predicted"
    elif m >= 1.0:
        code, what = VTT_GROWTH, "microscopic growth predicted"
    elif m >= 0.5:
        code, what = VTT_ONSET, "growth starting"
    else:
        return None
    return Evidence(code, points.get(code, 0), f"VTT mould index {m:.2f}: {what}")


def _span(d: timedelta) -> str:
    """``3 h 20 min``: measured time to the minute."""
    minutes = int(d.total_seconds() // 60)
    hours, minutes = divmod(minutes, 60)
    if hours and minutes:
        return f"{hours} h {minutes} min"
    return f"{hours} h" if hours else f"{minutes} min"


def assess(indicators: Indicators, *, points: Mapping[str, int] = DEFAULT_POINTS) -> Assessment:
    """Score the indicators and return the level with every contributing reason."""
    evidence: list[Evidence] = []
    if indicators.mould_index is not None:
        item = _vtt_evidence(indicators.mould_index, points)
        if item is not None:
            evidence.append(item)
    counted: set[str] = set()
    for v in sorted(indicators.violations, key=lambda v: (v.rule_id, v.since)):
        first = v.rule_id not in counted
        counted.add(v.rule_id)
        state = "ongoing" if v.until is None else f"until {v.until.isoformat()}"
        detail = (
            f"{v.rule_id}: {v.quantity} above {v.threshold:g} since {v.since.isoformat()} "
            f"({state}), peak {v.peak:g}"
        )
        if v.time_above is not None:
            detail += f", measured {_span(v.time_above)} above"
        evidence.append(Evidence(v.rule_id, points.get(v.rule_id, 0) if first else 0, detail, v))
    frac = indicators.lim_fraction
    if frac is not None and frac >= LIM_FRACTION_THRESHOLD:
        evidence.append(
            Evidence(
                LIM_EXCEEDED,
                points.get(LIM_EXCEEDED, 0),
                f"{frac:.0%} of readings at or above the lowest isopleth for mould",
            )
        )
    score = sum(e.points for e in evidence)
    return Assessment(level=level_for_score(score), score=score, evidence=tuple(evidence))
