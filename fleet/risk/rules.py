"""Condensation and ventilation rules over time series, with evidence.

Rules (ids are stable: they are stored with the evidence):

- ``adf2006.rh70``: room RH above 70 % for more than 2 h in any 12 h period
  (Approved Document F 2006 moisture criterion).
- ``adf2006.rh90``: room RH above 90 % for more than 1 h in any 12 h period (same source).
- ``bs5250.surface_rh80``: time-weighted mean *surface* RH above 80 % over a trailing window of
  ``days`` days (BS 5250 / BS EN ISO 13788 keep surface RH at or below 80 % sustained over
  days); evaluated only when at least 75 % of the window has data.
- ``co2.above_800`` / ``co2.above_1500``: CO2 above 800 ppm for more than 8 h, or above
  1500 ppm for more than 2 h, in any 24 h. These bands are common practice as a ventilation
  proxy, not UK regulation for homes; the durations are this project's defaults.

Every rule is evaluated incrementally by a small per-rule state (see
:mod:`fleet.risk.rolling`), and :func:`evaluate` over a batch is the same fold, so a history
recomputed in bulk reports exactly what the live path reported. The time-above rules (ADF,
CO2) are fed the raw samples, so "more than 2 h" is measured time, not a count of hours whose
mean was above; the BS 5250 mean rule is fed hourly means
(:class:`fleet.risk.tracker.PlacementTracker`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from enum import Enum, StrEnum
from typing import Any

from fleet.risk.rolling import MeanRule, MeanState, OutOfOrderSample, WindowRule, WindowState
from fleet.risk.violation import Violation

__all__ = [
    "ADF_RH70",
    "ADF_RH90",
    "BS5250_SURFACE_RH80",
    "CO2_ABOVE_800",
    "CO2_ABOVE_1500",
    "CO2_POOR_PPM",
    "Co2Band",
    "MeanRule",
    "Monitor",
    "OutOfOrderSample",
    "Quantity",
    "Rule",
    "RuleState",
    "Violation",
    "WindowRule",
    "adf_rules",
    "bs5250_rule",
    "co2_band",
    "co2_rules",
    "default_rules",
    "evaluate",
    "evaluate_all",
]

ADF_RH70 = "adf2006.rh70"
ADF_RH90 = "adf2006.rh90"
BS5250_SURFACE_RH80 = "bs5250.surface_rh80"
CO2_ABOVE_800 = "co2.above_800"
CO2_ABOVE_1500 = "co2.above_1500"

Rule = WindowRule | MeanRule
RuleState = WindowState | MeanState


class Quantity(StrEnum):
    """The series a rule reads."""

    ROOM_RH = "room_rh"  # %
    SURFACE_RH = "surface_rh"  # %
    CO2 = "co2"  # ppm


class Co2Band(Enum):
    """Ventilation band of a CO2 concentration (≤ 800 good, ≤ 1500 moderate, above poor)."""

    GOOD = "good"
    MODERATE = "moderate"
    POOR = "poor"


CO2_GOOD_PPM = 800.0  # at or below it ventilation is good
CO2_POOR_PPM = 1500.0  # above it ventilation is poor


def co2_band(ppm: float) -> Co2Band:
    """Classify a CO2 reading into the 800 / 1500 ppm bands."""
    if ppm <= CO2_GOOD_PPM:
        return Co2Band.GOOD
    if ppm <= CO2_POOR_PPM:
        return Co2Band.MODERATE
    return Co2Band.POOR


def adf_rules(*, max_gap: timedelta = timedelta(hours=1)) -> tuple[WindowRule, WindowRule]:
    """The two Approved Document F (2006) room RH criteria."""
    twelve = timedelta(hours=12)
    return (
        WindowRule(ADF_RH70, Quantity.ROOM_RH, 70.0, timedelta(hours=2), twelve, max_gap),
        WindowRule(ADF_RH90, Quantity.ROOM_RH, 90.0, timedelta(hours=1), twelve, max_gap),
    )


def bs5250_rule(
    *, days: float = 7.0, min_coverage: float = 0.75, max_gap: timedelta = timedelta(hours=1)
) -> MeanRule:
    """Surface RH mean over ``days`` must stay at or below 80 %."""
    if days <= 0:
        raise ValueError(f"days must be positive, got {days!r}")
    return MeanRule(
        BS5250_SURFACE_RH80,
        Quantity.SURFACE_RH,
        80.0,
        timedelta(days=days),
        min_coverage=min_coverage,
        max_gap=max_gap,
    )


def co2_rules(*, max_gap: timedelta = timedelta(hours=1)) -> tuple[WindowRule, WindowRule]:
    """CO2 ventilation rules on the 800 / 1500 ppm bands."""
    day = timedelta(hours=24)
    return (
        WindowRule(CO2_ABOVE_800, Quantity.CO2, CO2_GOOD_PPM, timedelta(hours=8), day, max_gap),
        WindowRule(CO2_ABOVE_1500, Quantity.CO2, CO2_POOR_PPM, timedelta(hours=2), day, max_gap),
    )


def default_rules(*, surface_days: float = 7.0) -> tuple[Rule, ...]:
    """All rules with their default parameters."""
    return (*adf_rules(), bs5250_rule(days=surface_days), *co2_rules())


def evaluate(rule: Rule, samples: Iterable[tuple[datetime, float]]) -> list[Violation]:
    """Every episode of ``rule`` over a time-ordered series, the last possibly ongoing."""
    state = rule.new_state()
    found: list[Violation] = []
    for ts, value in samples:
        found.extend(state.update(ts, value))
    current = state.open_violation()
    if current is not None:
        found.append(current)
    return found


def evaluate_all(
    rules: Sequence[Rule], series: Mapping[Quantity | str, Iterable[tuple[datetime, float]]]
) -> list[Violation]:
    """Evaluate several rules over the series each one reads (rules without data are skipped).

    Results are grouped by rule, in the order of ``rules``.
    """
    materialised = {str(q): list(s) for q, s in series.items()}
    out: list[Violation] = []
    for rule in rules:
        samples = materialised.get(str(rule.quantity))
        if samples is not None:
            out.extend(evaluate(rule, samples))
    return out


class Monitor:
    """Per-placement rule states, updated one sample at a time and persisted between calls.

    ``update`` returns the episodes that ended with this sample; ``open_violations`` the ones
    in progress. Keep the returned closed episodes: the state does not retain them.
    """

    __slots__ = ("_by_quantity", "_states")

    def __init__(self, rules: Sequence[Rule] | None = None) -> None:
        chosen = default_rules() if rules is None else tuple(rules)
        ids = [r.rule_id for r in chosen]
        if len(set(ids)) != len(ids):
            raise ValueError(f"rule ids must be unique, got {ids}")
        self._states: dict[str, RuleState] = {r.rule_id: r.new_state() for r in chosen}
        self._index()

    def _index(self) -> None:
        self._by_quantity: dict[str, list[RuleState]] = {}
        for state in self._states.values():
            self._by_quantity.setdefault(str(state.rule.quantity), []).append(state)

    @property
    def rules(self) -> tuple[Rule, ...]:
        return tuple(s.rule for s in self._states.values())

    def update(
        self,
        quantity: Quantity | str,
        ts: datetime,
        value: float,
        *,
        only: type[WindowRule] | type[MeanRule] | None = None,
    ) -> list[Violation]:
        """Feed one sample of ``quantity``; rules reading other quantities (or, with ``only``,
        rules of the other kind) are untouched."""
        closed: list[Violation] = []
        for state in self._by_quantity.get(str(quantity), ()):
            if only is None or isinstance(state.rule, only):
                closed.extend(state.update(ts, value))
        return closed

    def last_seen(self, rule_id: str) -> datetime | None:
        """Time of the newest sample the rule has folded in (``None``: none, or no such rule)."""
        state = self._states.get(rule_id)
        return None if state is None else state.last_seen

    def episodes(self) -> dict[str, list[float]]:
        """Rule id -> record of its open episode (checkpoints for :meth:`resume`)."""
        out = {}
        for rule_id, state in self._states.items():
            record = state.episode()
            if record is not None:
                out[rule_id] = record
        return out

    def resume(self, rule_id: str, record: list[float]) -> bool:
        """Continue ``rule_id``'s open episode from a checkpoint; ``False`` when the rule has
        no open episode of that shape (the checkpoint does not apply)."""
        state = self._states.get(rule_id)
        if state is None:
            return False
        try:
            state.resume_episode(record)
        except ValueError:
            return False
        return True

    def open_violations(self) -> list[Violation]:
        out = []
        for state in self._states.values():
            current = state.open_violation()
            if current is not None:
                out.append(current)
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable state, keyed by rule id."""
        return {rule_id: state.to_dict() for rule_id, state in self._states.items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], rules: Sequence[Rule] | None = None) -> Monitor:
        """Restore a monitor; rules missing from ``data`` start empty (a newly added rule)."""
        monitor = cls(rules)
        for rule_id, state in list(monitor._states.items()):
            stored = data.get(rule_id)
            if stored is not None:
                monitor._states[rule_id] = state.rule.state_from_dict(stored)
        monitor._index()
        return monitor
