import pytest

from fleet.risk import lim


def test_lim_reference_at_20c() -> None:
    assert lim.rh_lim0(20.0) == pytest.approx(75.6, abs=0.05)


def test_lim_minimum_at_30c() -> None:
    assert lim.rh_lim0(30.0) == pytest.approx(100 * (0.02633 + 0.7153))
    assert lim.rh_lim0(30.0) < lim.rh_lim0(25.0)
    assert lim.rh_lim0(30.0) < lim.rh_lim0(35.0)


def test_cold_surfaces_need_higher_rh() -> None:
    assert lim.rh_lim0(5.0) > lim.rh_lim0(15.0) > lim.rh_lim0(20.0)


def test_check() -> None:
    above = lim.check(20.0, 80.0)
    assert above.exceeded
    assert above.margin == pytest.approx(80.0 - lim.rh_lim0(20.0))
    assert not lim.check(20.0, 70.0).exceeded


def test_fraction_above() -> None:
    assert lim.fraction_above([(20.0, 80.0), (20.0, 60.0), (20.0, 90.0), (20.0, 50.0)]) == 0.5
    assert lim.fraction_above([]) == 0.0


def test_rejects_nan() -> None:
    with pytest.raises(ValueError):
        lim.rh_lim0(float("nan"))
