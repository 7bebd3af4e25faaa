"""VTT (Hukka-Viitanen) mould growth index, stepped one hour at a time.

The index M runs from 0 (no growth) to 6 (heavy, tight coverage); 3 is the first mould
visible to the naked eye. It integrates exposure over time, which a single threshold on RH
cannot: a wall at 85 % for two days is harmless, for two months it is not, and drying spells
make it recede. The fleet keeps one :class:`MouldState` per sensor placement and steps it
with each new hourly mean, so the state must be small and serialisable.

Model (as documented in ``DOMAIN.md`` section 3):

- RHcrit(T) = max(-0.00267T³ + 0.160T² - 3.13T + 100, RHmin), RHmin = 80 % (very sensitive,
  sensitive) or 85 % (medium resistant, resistant).
- Growth only when 0 < T < 50 °C and RH ≥ RHcrit, at
  dM/dt = k1·k2 / (7·exp(-0.68 ln T - 13.9 ln RH + 66.02)) / 24 per hour, where
  k2 = max(1 - exp(2.3 (M - M_max)), 0), M_max = A + B·x - C·x²,
  x = (RHcrit - RH)/(RHcrit - 100).
- Otherwise decline per hour of the dry spell: -0.032/24 for the first 6 h, nothing from
  6 h to 24 h, -0.016/24 afterwards, times a material decline factor (1 for pine sapwood).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from typing import Any

#: Index at which mould becomes visible to the naked eye.
VISIBLE_MOULD = 3.0
MAX_INDEX = 6.0

_DECLINE_FIRST_6H = -0.032 / 24.0
_DECLINE_AFTER_24H = -0.016 / 24.0


@dataclass(frozen=True)
class _ClassParams:
    rh_min: float
    a: float
    b: float
    c: float
    k1_low: float  # M < 1
    k1_high: float  # M >= 1


class Sensitivity(Enum):
    """Material sensitivity classes of the updated VTT model."""

    VERY_SENSITIVE = "very_sensitive"
    SENSITIVE = "sensitive"
    MEDIUM_RESISTANT = "medium_resistant"
    RESISTANT = "resistant"

    @property
    def params(self) -> _ClassParams:
        return _PARAMS[self]


_PARAMS: dict[Sensitivity, _ClassParams] = {
    Sensitivity.VERY_SENSITIVE: _ClassParams(80.0, 1.0, 7.0, 2.0, 1.0, 2.0),
    Sensitivity.SENSITIVE: _ClassParams(80.0, 0.3, 6.0, 1.0, 0.578, 0.386),
    Sensitivity.MEDIUM_RESISTANT: _ClassParams(85.0, 0.0, 5.0, 1.5, 0.072, 0.097),
    Sensitivity.RESISTANT: _ClassParams(85.0, 0.0, 3.0, 1.0, 0.033, 0.014),
}


@dataclass(frozen=True, slots=True)
class MouldState:
    """Everything needed to continue the index from where it stopped.

    ``m`` is the index; ``dry_hours`` counts consecutive hours without growth conditions,
    which decides the decline rate (the 6 h / 24 h stages).
    """

    m: float = 0.0
    dry_hours: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"m": self.m, "dry_hours": self.dry_hours}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MouldState:
        m = float(data["m"])
        dry = int(data["dry_hours"])
        if not 0.0 <= m <= MAX_INDEX or dry < 0:
            raise ValueError(f"invalid stored mould state {data!r}: m must be 0..6, dry_hours >= 0")
        return cls(m=m, dry_hours=dry)


def critical_rh(t_c: float, sensitivity: Sensitivity = Sensitivity.SENSITIVE) -> float:
    """RHcrit(T) in %: the RH above which growth starts (note the -3.13T term)."""
    poly = -0.00267 * t_c**3 + 0.160 * t_c**2 - 3.13 * t_c + 100.0
    return max(poly, sensitivity.params.rh_min)


def growth_conditions(t_c: float, rh: float, sensitivity: Sensitivity) -> bool:
    """True when the hour counts towards growth: 0 < T < 50 °C and RH ≥ RHcrit."""
    return 0.0 < t_c < 50.0 and rh >= critical_rh(t_c, sensitivity)


def max_index(t_c: float, rh: float, sensitivity: Sensitivity) -> float:
    """M_max: the index the growth can approach at these conditions."""
    p = sensitivity.params
    rh_crit = critical_rh(t_c, sensitivity)
    denom = rh_crit - 100.0
    x = 1.0 if denom == 0.0 else (rh_crit - rh) / denom
    return min(p.a + p.b * x - p.c * x * x, MAX_INDEX)


def _validate(t_c: float, rh: float) -> float:
    if not (math.isfinite(t_c) and math.isfinite(rh)):
        raise ValueError(f"temperature and RH must be finite numbers, got T={t_c!r} RH={rh!r}")
    if rh < 0.0 or rh > 100.0:
        raise ValueError(f"relative humidity must be within 0..100 %, got {rh!r}")
    return rh


def step(
    state: MouldState,
    t_c: float,
    rh: float,
    *,
    sensitivity: Sensitivity = Sensitivity.SENSITIVE,
    decline_factor: float = 1.0,
) -> MouldState:
    """Advance the index by one hour of mean temperature ``t_c`` °C and ``rh`` %.

    ``decline_factor`` scales the decline (1.0 for pine sapwood; lower for materials that
    hold on to mould). Returns a new state; the input is not changed.
    """
    _validate(t_c, rh)
    m = state.m
    # critical_rh/max_index are inlined: this runs once per placement per hour, fleet-wide.
    if 0.0 < t_c < 50.0:
        p = sensitivity.params
        rh_crit = -0.00267 * t_c**3 + 0.160 * t_c**2 - 3.13 * t_c + 100.0
        rh_crit = max(rh_crit, p.rh_min)
        if rh >= rh_crit:
            denom = rh_crit - 100.0
            x = 1.0 if denom == 0.0 else (rh_crit - rh) / denom
            m_max = min(p.a + p.b * x - p.c * x * x, MAX_INDEX)
            k1 = p.k1_low if m < 1.0 else p.k1_high
            k2 = max(1.0 - math.exp(2.3 * (m - m_max)), 0.0)
            if k2 > 0.0:
                rate = 7.0 * math.exp(-0.68 * math.log(t_c) - 13.9 * math.log(rh) + 66.02)
                m = min(m + k1 * k2 / rate / 24.0, MAX_INDEX)
            return MouldState(m=m, dry_hours=0)
    dry = state.dry_hours + 1
    if dry <= 6:
        m += _DECLINE_FIRST_6H * decline_factor
    elif dry > 24:
        m += _DECLINE_AFTER_24H * decline_factor
    return MouldState(m=max(m, 0.0), dry_hours=dry)


@dataclass(frozen=True)
class SeriesResult:
    """Hourly index trajectory (one value after each input hour) and the final state."""

    indices: list[float]
    final: MouldState

    @property
    def peak(self) -> float:
        return max(self.indices, default=self.final.m)


def run_series(
    hours: Iterable[tuple[float, float]],
    *,
    sensitivity: Sensitivity = Sensitivity.SENSITIVE,
    initial: MouldState | None = None,
    decline_factor: float = 1.0,
) -> SeriesResult:
    """Run the model over consecutive hourly ``(temperature, rh)`` means.

    Equivalent to calling :func:`step` hour by hour, so a history recomputed in bulk matches
    the state the live path stored. Missing hours must be filled (or the series split) by the
    caller: the model has no notion of gaps.
    """
    state = initial if initial is not None else MouldState()
    out: list[float] = []
    append = out.append
    for t_c, rh in hours:
        state = step(state, t_c, rh, sensitivity=sensitivity, decline_factor=decline_factor)
        append(state.m)
    return SeriesResult(indices=out, final=state)
