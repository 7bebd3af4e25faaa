import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fleet.risk import psychro


def test_dew_point_reference() -> None:
    assert psychro.dew_point(20.0, 50.0) == pytest.approx(9.26, abs=0.01)


def test_dew_point_at_saturation_is_air_temperature() -> None:
    assert psychro.dew_point(12.5, 100.0) == pytest.approx(12.5, abs=1e-9)


def test_saturation_vapour_pressure_reference() -> None:
    # 6.1094 hPa at 0 °C by construction; about 23.3 hPa at 20 °C.
    assert psychro.saturation_vapour_pressure(0.0) == pytest.approx(6.1094)
    assert psychro.saturation_vapour_pressure(20.0) == pytest.approx(23.33, abs=0.02)


def test_surface_rh_reference() -> None:
    assert psychro.surface_rh(20.0, 60.0, 14.0) == pytest.approx(87.7, abs=0.05)


def test_surface_rh_caps_at_saturation_unless_asked() -> None:
    assert psychro.surface_rh(20.0, 60.0, 5.0) == 100.0
    assert psychro.surface_rh(20.0, 60.0, 5.0, cap=False) > 100.0


def test_surface_at_dew_point_is_saturated() -> None:
    td = psychro.dew_point(21.0, 55.0)
    assert psychro.surface_rh(21.0, 55.0, td, cap=False) == pytest.approx(100.0, rel=1e-9)


def test_absolute_humidity_reference() -> None:
    # Standard tables give about 8.6-8.7 g/m³ at 20 °C, 50 %.
    assert psychro.absolute_humidity(20.0, 50.0) == pytest.approx(8.63, abs=0.05)


def test_surface_temperature_from_factor() -> None:
    assert psychro.surface_temperature(0.75, 20.0, 0.0) == pytest.approx(15.0)
    assert psychro.temperature_factor(15.0, 20.0, 0.0) == pytest.approx(0.75)


def test_temperature_factor_undefined_without_difference() -> None:
    with pytest.raises(ValueError, match="f_Rsi is undefined"):
        psychro.temperature_factor(18.0, 20.0, 20.0)


def test_critical_surface_temperature_gives_limit() -> None:
    t_crit = psychro.critical_surface_temperature(20.0, 60.0, 80.0)
    assert psychro.surface_rh(20.0, 60.0, t_crit) == pytest.approx(80.0, rel=1e-9)
    f_min = psychro.minimum_temperature_factor(20.0, 60.0, 0.0)
    assert f_min == pytest.approx(t_crit / 20.0)


@pytest.mark.parametrize("rh", [0.0, -5.0, math.nan])
def test_rejects_impossible_humidity(rh: float) -> None:
    with pytest.raises(ValueError):
        psychro.dew_point(20.0, rh)


temps = st.floats(min_value=-30.0, max_value=45.0)


@given(f=st.floats(min_value=0.0, max_value=1.0), ti=temps, te=temps)
def test_factor_and_surface_temperature_are_inverse(f: float, ti: float, te: float) -> None:
    if abs(ti - te) < 0.5:
        return
    ts = psychro.surface_temperature(f, ti, te)
    assert psychro.temperature_factor(ts, ti, te) == pytest.approx(f, abs=1e-9)


@given(t=temps, rh=st.floats(min_value=1.0, max_value=100.0))
def test_dew_point_never_above_air_temperature(t: float, rh: float) -> None:
    td = psychro.dew_point(t, rh)
    assert td <= t + 1e-9
    assert psychro.temperature_at_vapour_pressure(psychro.vapour_pressure(t, rh)) == pytest.approx(
        td, abs=1e-9
    )
