"""Psychrometric helpers (Magnus approximation).

Sensors report air temperature and relative humidity, but mould grows on cold surfaces where
the *surface* relative humidity is higher than the room's. These functions convert between the
quantities the risk models need: vapour pressure, dew point, absolute humidity, surface RH from
a measured or estimated surface temperature, and the temperature factor f_Rsi that relates a
wall's inner surface temperature to indoor and outdoor temperature.

Magnus constants (a = 17.625, b = 243.04 °C, c = 6.1094 hPa) are the Alduchov-Eskridge values,
valid over liquid water roughly from -40 °C to +50 °C.
"""

from __future__ import annotations

import math

MAGNUS_A = 17.625
MAGNUS_B = 243.04  # °C
MAGNUS_C = 6.1094  # hPa

#: Specific gas constant of water vapour, J/(kg·K).
R_WATER_VAPOUR = 461.5
KELVIN_OFFSET = 273.15

#: Usual design target for the temperature factor of a dwelling's thermal bridges.
F_RSI_TARGET = 0.75


def _finite(name: str, value: float) -> float:
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return value


def _check_rh(rh: float) -> float:
    _finite("relative humidity", rh)
    if rh <= 0.0:
        raise ValueError(f"relative humidity must be above 0 %, got {rh!r}")
    return rh


def saturation_vapour_pressure(t_c: float) -> float:
    """Saturation vapour pressure over water in hPa at ``t_c`` °C: c·exp(aT/(b+T))."""
    _finite("temperature", t_c)
    return MAGNUS_C * math.exp(MAGNUS_A * t_c / (MAGNUS_B + t_c))


def vapour_pressure(t_c: float, rh: float) -> float:
    """Actual water vapour pressure in hPa for air at ``t_c`` °C and ``rh`` %."""
    _finite("relative humidity", rh)
    return saturation_vapour_pressure(t_c) * rh / 100.0


def temperature_at_vapour_pressure(e_hpa: float) -> float:
    """Temperature (°C) whose saturation vapour pressure is ``e_hpa``: the Magnus inverse."""
    _finite("vapour pressure", e_hpa)
    if e_hpa <= 0.0:
        raise ValueError(f"vapour pressure must be positive, got {e_hpa!r}")
    gamma = math.log(e_hpa / MAGNUS_C)
    return MAGNUS_B * gamma / (MAGNUS_A - gamma)


def dew_point(t_c: float, rh: float) -> float:
    """Dew point in °C: g = ln(RH/100) + aT/(b+T); Td = bg/(a-g).

    Any surface colder than this collects condensation.
    """
    _finite("temperature", t_c)
    _check_rh(rh)
    gamma = math.log(rh / 100.0) + MAGNUS_A * t_c / (MAGNUS_B + t_c)
    return MAGNUS_B * gamma / (MAGNUS_A - gamma)


def absolute_humidity(t_c: float, rh: float) -> float:
    """Water vapour density in g/m³ (ideal gas: rho = e / (R_v·T)).

    Unlike RH it does not change when air warms or cools without gaining or losing moisture,
    so it separates moisture production (cooking, drying laundry) from temperature swings.
    """
    e_pa = vapour_pressure(t_c, rh) * 100.0
    return 1000.0 * e_pa / (R_WATER_VAPOUR * (t_c + KELVIN_OFFSET))


def surface_rh(air_t: float, air_rh: float, surface_t: float, *, cap: bool = True) -> float:
    """Relative humidity at a surface of temperature ``surface_t`` in contact with room air.

    RH_s = RH_air · e_s(T_air) / e_s(T_s): the vapour pressure is the same, only the saturation
    pressure changes. With ``cap`` (the default) the result is limited to 100 %: beyond that the
    excess condenses on the surface. Pass ``cap=False`` to see by how much it is oversaturated.
    """
    _finite("relative humidity", air_rh)
    value = air_rh * saturation_vapour_pressure(air_t) / saturation_vapour_pressure(surface_t)
    return min(value, 100.0) if cap else value


def surface_temperature(f_rsi: float, t_inside: float, t_outside: float) -> float:
    """Inner surface temperature from a temperature factor: Tsi = Te + f_Rsi·(Ti - Te).

    Used when a wall has no surface probe: a survey (or the 0.75 design target) gives f_Rsi.
    """
    _finite("temperature factor", f_rsi)
    _finite("indoor temperature", t_inside)
    _finite("outdoor temperature", t_outside)
    return t_outside + f_rsi * (t_inside - t_outside)


def temperature_factor(t_surface: float, t_inside: float, t_outside: float) -> float:
    """Temperature factor f_Rsi = (Tsi - Te)/(Ti - Te), the inverse of :func:`surface_temperature`.

    Lets a surface probe reading characterise the wall independently of the weather.
    Raises ``ValueError`` when indoor and outdoor temperatures are too close for the ratio to
    mean anything (it divides by their difference).
    """
    _finite("surface temperature", t_surface)
    _finite("indoor temperature", t_inside)
    _finite("outdoor temperature", t_outside)
    delta = t_inside - t_outside
    if abs(delta) < 1e-9:
        raise ValueError(
            "indoor and outdoor temperatures are equal; f_Rsi is undefined. "
            "Use readings taken when the outdoor temperature differs from the indoor one."
        )
    return (t_surface - t_outside) / delta


def critical_surface_temperature(air_t: float, air_rh: float, surface_rh_limit: float) -> float:
    """Lowest surface temperature (°C) that keeps the surface RH at or below the limit.

    With ``surface_rh_limit = 80`` this is the BS 5250 / BS EN ISO 13788 mould criterion;
    with 100 it is the dew point.
    """
    _check_rh(air_rh)
    _check_rh(surface_rh_limit)
    e = vapour_pressure(air_t, air_rh)
    return temperature_at_vapour_pressure(e * 100.0 / surface_rh_limit)


def minimum_temperature_factor(
    air_t: float, air_rh: float, t_outside: float, surface_rh_limit: float = 80.0
) -> float:
    """Temperature factor a surface needs so its RH stays at or below ``surface_rh_limit``."""
    t_crit = critical_surface_temperature(air_t, air_rh, surface_rh_limit)
    return temperature_factor(t_crit, air_t, t_outside)
