"""Lowest isopleth for mould (LIM) check.

LIM_0 (Zeng et al. 2023) is the lowest temperature-dependent RH at which mould can germinate on
the most favourable substrate, RH_LIM0(T) = 100·(0.02633·cosh(0.10083·(T - 30)) + 0.7153):
about 75.6 % at 20 °C, lowest (≈74.2 %) at 30 °C, rising steeply when cold. Being below it is
a strong "safe" signal; being above it is a warning that precedes the slower VTT index.
Values at or above 100 % mean germination is not possible at that temperature.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass


def rh_lim0(t_c: float) -> float:
    """Lowest isopleth RH (%) at temperature ``t_c`` °C."""
    if not math.isfinite(t_c):
        raise ValueError(f"temperature must be a finite number, got {t_c!r}")
    return 100.0 * (0.02633 * math.cosh(0.10083 * (t_c - 30.0)) + 0.7153)


@dataclass(frozen=True)
class LimCheck:
    """Result of comparing one reading with the isopleth.

    ``margin`` is RH minus the isopleth, in percentage points: positive means above it.
    """

    threshold: float
    margin: float

    @property
    def exceeded(self) -> bool:
        return self.margin >= 0.0


def check(t_c: float, rh: float) -> LimCheck:
    """Compare a (surface or air) reading with LIM_0; at or above the isopleth is exceeded."""
    if not math.isfinite(rh):
        raise ValueError(f"relative humidity must be a finite number, got {rh!r}")
    threshold = rh_lim0(t_c)
    return LimCheck(threshold=threshold, margin=rh - threshold)


def fraction_above(readings: Iterable[tuple[float, float]]) -> float:
    """Share (0..1) of equally spaced ``(temperature, rh)`` readings at or above LIM_0.

    Returns 0.0 for an empty input.
    """
    total = above = 0
    for t_c, rh in readings:
        total += 1
        if check(t_c, rh).exceeded:
            above += 1
    return above / total if total else 0.0
