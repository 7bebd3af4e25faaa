"""Hourly aggregates and the derived quantities the risk models read.

Sensors report every few minutes, but the mould index, the LIM check and the BS 5250 mean are
defined on hourly means, and an hour is also the natural unit to store and chart. This module
turns raw ``(metric, time, value)`` samples into one :class:`HourMeans` per clock hour (UTC),
then into a :class:`DerivedHour` with dew point, absolute humidity and surface conditions.
The time-above rules (ADF RH, CO2 bands) measure time, so :func:`hourly` also hands out each
hour's raw room RH and CO2 samples (:class:`HourSamples`).

Surface conditions come from a surface probe (``surface_temperature``) when the hour has one;
otherwise the surface temperature is estimated from the wall's temperature factor f_Rsi and an
outdoor temperature (:class:`SurfaceModel`), which is how a survey describes a cold bridge.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from fleet.risk.psychro import absolute_humidity, dew_point, surface_rh, surface_temperature

HOUR = timedelta(hours=1)

TEMPERATURE = "temperature"
HUMIDITY = "humidity"
SURFACE_TEMPERATURE = "surface_temperature"
CO2 = "co2"
#: The stored metrics the risk engine reads.
METRICS = (TEMPERATURE, HUMIDITY, SURFACE_TEMPERATURE, CO2)


def floor_hour(ts: datetime) -> datetime:
    """Start of the UTC clock hour containing ``ts`` (which must be timezone-aware)."""
    if ts.tzinfo is None or ts.utcoffset() is None:
        raise ValueError(f"timestamp {ts.isoformat()} has no timezone; pass an aware datetime")
    return ts.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


@dataclass(frozen=True, slots=True)
class HourMeans:
    """Mean of each metric over one hour; ``None`` where the hour has no sample of it."""

    hour: datetime
    temperature: float | None = None
    humidity: float | None = None
    surface_temperature: float | None = None
    co2: float | None = None
    samples: int = 0


@dataclass(frozen=True, slots=True)
class HourSamples:
    """One hour's raw samples of the quantities the time-above rules read, in time order.

    The samples of all the placement's devices form one series: each holds until the next one
    from any device, so two devices' interleaved samples never count the same time twice.
    Samples taken at the same instant by several devices are averaged into one. Room RH is the
    humidity reading itself, capped at 100 % as the hourly mean is.
    """

    room_rh: tuple[tuple[datetime, float], ...] = ()
    co2: tuple[tuple[datetime, float], ...] = ()


def _series(
    points: list[tuple[datetime, float]], cap: float | None
) -> tuple[tuple[datetime, float], ...]:
    """Time-ordered, one value per instant (the mean of simultaneous samples)."""
    # Each device's run is already in time order, so the stable sort only merges runs; ties
    # keep the input (device) order, so the mean is the same on every path.
    points.sort(key=lambda p: p[0])
    out: list[tuple[datetime, float]] = []
    i, n = 0, len(points)
    while i < n:
        ts, total = points[i]
        j = i + 1
        while j < n and points[j][0] == ts:
            total += points[j][1]
            j += 1
        value = total / (j - i)
        out.append((ts, value if cap is None else min(value, cap)))
        i = j
    return tuple(out)


def hourly(
    samples: Iterable[tuple[str, datetime, float]],
) -> list[tuple[HourMeans, HourSamples]]:
    """:func:`hourly_means`, each hour with its raw room RH and CO2 samples."""
    sums: dict[datetime, dict[str, list[float]]] = {}
    raw: dict[datetime, dict[str, list[tuple[datetime, float]]]] = {}
    for metric, ts, value in samples:
        if metric not in METRICS or not math.isfinite(value):
            continue
        hour = floor_hour(ts)
        by_metric = sums.setdefault(hour, {})
        acc = by_metric.get(metric)
        if acc is None:
            by_metric[metric] = [value, 1.0]
        else:
            acc[0] += value
            acc[1] += 1.0
        if metric in (HUMIDITY, CO2):
            raw.setdefault(hour, {}).setdefault(metric, []).append((ts, value))
    out = []
    for hour in sorted(sums):
        by_metric = sums[hour]

        def mean(metric: str, by_metric: dict[str, list[float]] = by_metric) -> float | None:
            acc = by_metric.get(metric)
            return None if acc is None else acc[0] / acc[1]

        means = HourMeans(
            hour=hour,
            temperature=mean(TEMPERATURE),
            humidity=mean(HUMIDITY),
            surface_temperature=mean(SURFACE_TEMPERATURE),
            co2=mean(CO2),
            samples=int(sum(acc[1] for acc in by_metric.values())),
        )
        series = raw.get(hour, {})
        out.append(
            (
                means,
                HourSamples(
                    room_rh=_series(series.get(HUMIDITY, []), 100.0),
                    co2=_series(series.get(CO2, []), None),
                ),
            )
        )
    return out


def hourly_means(samples: Iterable[tuple[str, datetime, float]]) -> list[HourMeans]:
    """Group ``(metric, ts, value)`` samples by UTC hour and average each metric.

    Unknown metrics and non-finite values are ignored. Hours come out in time order.
    """
    return [means for means, _ in hourly(samples)]


@dataclass(frozen=True)
class SurfaceModel:
    """How to estimate the coldest surface when there is no probe.

    ``f_rsi`` is the temperature factor of the worst wall or thermal bridge (0.75 is the usual
    design target; older solid walls and bridges are often 0.5-0.65) and
    ``outdoor_temperature`` the outdoor temperature assumed for the estimate, in °C.
    """

    f_rsi: float = 0.75
    outdoor_temperature: float = 5.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.f_rsi) and 0.0 < self.f_rsi <= 1.0):
            raise ValueError(f"f_Rsi must be within (0, 1], got {self.f_rsi!r}")
        if not math.isfinite(self.outdoor_temperature):
            raise ValueError(f"outdoor temperature must be finite, got {self.outdoor_temperature}")

    def surface_temperature(self, indoor: float) -> float:
        # A room colder than outside has no cold bridge to estimate: the wall is room temperature.
        if indoor <= self.outdoor_temperature:
            return indoor
        return surface_temperature(self.f_rsi, indoor, self.outdoor_temperature)


@dataclass(frozen=True, slots=True)
class DerivedHour:
    """One hour of room and surface conditions, ready for the risk models."""

    hour: datetime
    temperature: float
    humidity: float
    dew_point: float
    absolute_humidity: float
    surface_temperature: float
    surface_rh: float
    surface_estimated: bool
    co2: float | None
    samples: int


def has_climate(means: HourMeans) -> bool:
    """Whether the hour is processed at all: it has temperature and a humidity above 0."""
    return means.temperature is not None and means.humidity is not None and means.humidity > 0.0


def derive(means: HourMeans, surface: SurfaceModel) -> DerivedHour | None:
    """Derived quantities for an hour, or ``None`` when it lacks temperature or humidity."""
    t, rh = means.temperature, means.humidity
    if t is None or rh is None or not has_climate(means):
        return None
    rh = min(rh, 100.0)
    if means.surface_temperature is not None:
        t_surface, estimated = means.surface_temperature, False
    else:
        t_surface, estimated = surface.surface_temperature(t), True
    return DerivedHour(
        hour=means.hour,
        temperature=t,
        humidity=rh,
        dew_point=dew_point(t, rh),
        absolute_humidity=absolute_humidity(t, rh),
        surface_temperature=t_surface,
        surface_rh=surface_rh(t, rh, t_surface),
        surface_estimated=estimated,
        co2=means.co2,
        samples=means.samples,
    )
