"""The SVG charts read true: jitter is not drawn as a trend, gaps in the data are not bridged
by a line, the tick labels differ from one another, and limits are drawn to read against."""

from __future__ import annotations

import itertools
import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import pytest

from fleet.dashboard.charts import (
    HEIGHT,
    PAD_B,
    PAD_L,
    PAD_R,
    PAD_T,
    WIDTH,
    Series,
    line_chart,
    value_axis,
)
from fleet.dashboard.risk import ROOM_RH_MARK

NS = {"s": "http://www.w3.org/2000/svg"}
T0 = datetime(2026, 11, 2, tzinfo=UTC)


def _svg(series: Series) -> ET.Element:
    return ET.fromstring(
        line_chart(series).replace("<svg ", '<svg xmlns="http://www.w3.org/2000/svg" ', 1)
    )


def _every(minutes: int, values: list[float], start: datetime = T0) -> list[tuple[datetime, float]]:
    return [(start + timedelta(minutes=minutes * i), v) for i, v in enumerate(values)]


def _tick_labels(svg: ET.Element) -> list[str]:
    return [
        t.text or ""
        for t in svg.iter(f"{{{NS['s']}}}text")
        if t.get("text-anchor") == "end" and "(" not in (t.text or "") and ":" not in (t.text or "")
    ]


def _segments(svg: ET.Element) -> list[str]:
    path = next(svg.iter(f"{{{NS['s']}}}path")).get("d") or ""
    return [s for s in re.split(r"(?=M)", path) if s]


def _ys(segment: str) -> list[float]:
    return [float(y) for y in re.findall(r"[ML][\d.]+,([\d.]+)", segment)]


def test_sensor_jitter_stays_a_flat_line_with_distinct_labels() -> None:
    """21.76-21.78 °C used to fill the whole height, labelled 21.8 five times."""
    svg = _svg(Series("Temperature", "°C", _every(15, [21.76, 21.78, 21.77, 21.76])))
    labels = _tick_labels(svg)
    assert len(labels) >= 3 and len(set(labels)) == len(labels), labels
    values = [float(v) for v in labels]
    assert max(values) - min(values) >= 2.0
    ys = _ys(_segments(svg)[0])
    assert max(ys) - min(ys) < (HEIGHT - PAD_T - PAD_B) * 0.05, ys


@pytest.mark.parametrize(
    ("values", "unit", "width"),
    [
        ([21.76, 21.78], "°C", 2.0),
        ([74.0], "%", 5.0),
        ([-56.0], "dBm", 10.0),
        ([612.0, 640.0], "ppm", 200.0),
        ([3.0, 3.0], "", 1.0),
    ],
)
def test_the_value_axis_has_a_least_width_per_unit(
    values: list[float], unit: str, width: float
) -> None:
    lo, hi, ticks = value_axis(values, unit)
    assert hi - lo >= width and lo <= min(values) and max(values) <= hi
    assert ticks[0] == lo and ticks[-1] == pytest.approx(hi)
    steps = {round(b - a, 9) for a, b in itertools.pairwise(ticks)}
    assert len(steps) == 1, ticks


@pytest.mark.parametrize("values", [[99.0, 99.6], [0.5, 1.0]])
def test_percentages_stay_within_0_and_100(values: list[float]) -> None:
    lo, hi, _ = value_axis(values, "%")
    assert lo >= 0.0 and hi <= 100.0 and hi - lo >= 5.0


def test_a_gap_in_the_readings_breaks_the_line() -> None:
    """A device offline for six hours: the chart shows the hole instead of a straight line."""
    before = _every(15, [20.0, 20.5, 21.0, 21.5])
    after = _every(15, [18.0, 18.5, 19.0], start=before[-1][0] + timedelta(hours=6))
    svg = _svg(Series("Temperature", "°C", before + after))
    segments = _segments(svg)
    assert len(segments) == 2 and [len(_ys(s)) for s in segments] == [4, 3], segments
    assert "1 gap without readings" in (svg.get("aria-label") or "")


def test_the_time_axis_spans_the_range_asked_for() -> None:
    """24 hours asked for, readings from the first 12: the line ends mid-chart, so a device
    silent since noon does not look current, and the axis labels give the range shown."""
    window = (T0, T0 + timedelta(hours=24))
    points = _every(15, [20.0 + i / 100 for i in range(48)])  # 00:00-11:45
    svg = _svg(Series("Temperature", "°C", points, window=window))
    xs = [float(x) for x in re.findall(r"[ML]([\d.]+),", _segments(svg)[0])]
    plot_w = WIDTH - PAD_L - PAD_R
    assert xs[0] == pytest.approx(PAD_L, abs=0.1)
    assert xs[-1] == pytest.approx(PAD_L + plot_w * 11.75 / 24, abs=0.1)
    labels = [t.text for t in svg.iter(f"{{{NS['s']}}}text") if ":" in (t.text or "")]
    assert labels[-2:] == ["02 Nov 00:00 GMT", "03 Nov 00:00 GMT"]  # UK time, zone named
    assert "shown from 02 Nov 00:00 GMT to 03 Nov 00:00 GMT" in (svg.get("aria-label") or "")

    lone = _svg(Series("Temperature", "°C", [(T0 + timedelta(hours=18), 21.0)], window=window))
    dot = list(lone.iter(f"{{{NS['s']}}}circle"))[-1]  # a single reading sits at its time
    assert float(dot.get("cx") or 0) == pytest.approx(PAD_L + plot_w * 18 / 24, abs=0.1)

    unwindowed = _svg(Series("Temperature", "°C", points))
    assert "shown from" not in (unwindowed.get("aria-label") or "")


def test_regular_readings_make_one_line() -> None:
    svg = _svg(Series("Temperature", "°C", _every(15, [20.0 + i / 10 for i in range(40)])))
    assert len(_segments(svg)) == 1
    assert "gap" not in (svg.get("aria-label") or "")


def test_a_lone_reading_between_gaps_is_drawn_as_a_dot() -> None:
    points = _every(15, [20.0, 20.1, 20.2, 20.3])
    lone = (points[-1][0] + timedelta(hours=5), 22.0)
    later = _every(15, [21.0, 21.1, 21.2], start=lone[0] + timedelta(hours=5))
    svg = _svg(Series("Temperature", "°C", [*points, lone, *later]))
    assert len(_segments(svg)) == 3
    assert len(list(next(svg.iter(f"{{{NS['s']}}}g")))) == 1


def test_the_room_rh_limit_is_drawn_and_taken_into_the_axis() -> None:
    """At 45-50 % the 70 % line is still shown, so staff see how far the room is from it."""
    svg = _svg(Series("Relative humidity", "%", _every(15, [45.0, 50.0]), marks=ROOM_RH_MARK))
    marks = [e for e in svg.iter(f"{{{NS['s']}}}line") if e.get("class") == "mark"]
    assert len(marks) == 1
    assert any("Approved Document F" in (t.text or "") for t in svg.iter(f"{{{NS['s']}}}text"))
    values = [float(v) for v in _tick_labels(svg)]
    assert max(values) >= 70.0


def test_a_fixed_scale_keeps_its_bounds() -> None:
    svg = _svg(Series("Mould index", "", _every(60, [0.2, 0.3]), scale=(0.0, 6.0)))
    values = [float(v) for v in _tick_labels(svg)]
    assert min(values) == 0.0 and max(values) == 6.0


def test_no_points_say_so() -> None:
    assert "No data in this range" in line_chart(Series("Temperature", "°C", []))
