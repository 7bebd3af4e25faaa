from datetime import UTC, datetime, timedelta

import pytest

from fleet.risk.hourly import SurfaceModel, derive, floor_hour, hourly_means

T0 = datetime(2025, 11, 3, 10, tzinfo=UTC)


def test_means_per_hour_and_metric() -> None:
    samples = [
        ("temperature", T0 + timedelta(minutes=5), 20.0),
        ("temperature", T0 + timedelta(minutes=35), 22.0),
        ("humidity", T0 + timedelta(minutes=5), 50.0),
        ("battery", T0 + timedelta(minutes=5), 80.0),  # not a risk metric
        ("humidity", T0 + timedelta(hours=1, minutes=1), 70.0),
        ("humidity", T0 + timedelta(minutes=50), float("nan")),
    ]
    first, second = hourly_means(reversed(samples))
    assert (first.hour, first.temperature, first.humidity, first.samples) == (T0, 21.0, 50.0, 3)
    assert first.surface_temperature is None and first.co2 is None
    assert (second.hour, second.humidity, second.temperature) == (
        T0 + timedelta(hours=1),
        70.0,
        None,
    )


def test_surface_from_probe_matches_the_domain_check() -> None:
    (means,) = hourly_means(
        [("temperature", T0, 20.0), ("humidity", T0, 60.0), ("surface_temperature", T0, 14.0)]
    )
    hour = derive(means, SurfaceModel())
    assert hour is not None and not hour.surface_estimated
    assert hour.surface_rh == pytest.approx(87.7, abs=0.1)
    assert hour.dew_point == pytest.approx(12.0, abs=0.1)
    assert hour.absolute_humidity == pytest.approx(10.4, abs=0.1)


def test_surface_estimated_from_temperature_factor() -> None:
    (means,) = hourly_means([("temperature", T0, 20.0), ("humidity", T0, 60.0)])
    hour = derive(means, SurfaceModel(f_rsi=0.6, outdoor_temperature=5.0))
    assert hour is not None and hour.surface_estimated
    assert hour.surface_temperature == pytest.approx(14.0)
    assert hour.surface_rh == pytest.approx(87.7, abs=0.1)
    # A room colder than outside has no cold bridge to estimate.
    cold = derive(
        hourly_means([("temperature", T0, 3.0), ("humidity", T0, 60.0)])[0], SurfaceModel()
    )
    assert cold is not None and cold.surface_temperature == 3.0


def test_hour_without_climate_is_skipped_and_bad_inputs_refused() -> None:
    assert derive(hourly_means([("co2", T0, 900.0)])[0], SurfaceModel()) is None
    with pytest.raises(ValueError, match="f_Rsi"):
        SurfaceModel(f_rsi=1.5)
    with pytest.raises(ValueError, match="timezone"):
        floor_hour(datetime(2025, 1, 1, 10, 30))
