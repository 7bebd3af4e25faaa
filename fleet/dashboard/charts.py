"""Small server-rendered SVG line charts: no JavaScript build, readable without scripts."""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from html import escape

from fleet.risk.workdays import UK

WIDTH, HEIGHT = 640, 180
PAD_L, PAD_R, PAD_T, PAD_B = 48, 12, 12, 28

# The smallest value axis per unit: a sensor's last-digit jitter drawn across the whole
# chart height reads as a trend that is not there.
MIN_SPAN = {"°C": 2.0, "%": 5.0, "dBm": 10.0, "ppm": 200.0, "V": 0.2}
DEFAULT_MIN_SPAN = 1.0
# Quantities that cannot leave these bounds: the axis stops there too.
LIMITS = {"%": (0.0, 100.0)}
# A line across a gap this many times the usual spacing would draw readings nobody took.
GAP_FACTOR = 3.0


@dataclass(frozen=True)
class Series:
    label: str
    unit: str
    points: Sequence[tuple[datetime, float]]
    # Fixed value axis, for a quantity with a scale of its own (the mould index's 0-6).
    scale: tuple[float, float] | None = None
    # Limits to read the line against, as dashed lines: (value, label). The axis takes them in.
    marks: Sequence[tuple[float, str]] = ()
    # The time range asked for: the axis spans it, so readings that stopped at noon show as an
    # empty stretch up to now rather than as a line that seems to end at the present.
    window: tuple[datetime, datetime] | None = None


def _nice_step(span: float, n: int = 4) -> float:
    """A round step (1, 2 or 5 times a power of ten) giving about n intervals or fewer."""
    raw = span / n
    power = 10.0 ** math.floor(math.log10(raw))
    return next(m * power for m in (1.0, 2.0, 5.0, 10.0) if m * power >= raw)


def value_axis(values: Sequence[float], unit: str) -> tuple[float, float, list[float]]:
    """(low, high, ticks): round bounds around the values, at least MIN_SPAN[unit] wide
    (DEFAULT_MIN_SPAN for other units) and within LIMITS[unit]; ticks at a round step."""
    lo, hi = min(values), max(values)
    span = max(hi - lo, MIN_SPAN.get(unit, DEFAULT_MIN_SPAN))
    mid = (lo + hi) / 2
    lo, hi = min(lo, mid - span / 2), max(hi, mid + span / 2)
    floor, ceil = LIMITS.get(unit, (-math.inf, math.inf))
    if lo < floor:
        lo, hi = floor, min(ceil, hi + floor - lo)
    if hi > ceil:
        lo, hi = max(floor, lo - (hi - ceil)), ceil
    step = _nice_step(hi - lo)
    lo, hi = math.floor(lo / step) * step, math.ceil(hi / step) * step
    return lo, hi, _ticks(lo, hi, step)


def _ticks(lo: float, hi: float, step: float) -> list[float]:
    return [lo + i * step for i in range(round((hi - lo) / step) + 1)]


def _decimals(step: float) -> int:
    """Enough decimals to print every tick of this step exactly (0.5 -> 1, 0.05 -> 2)."""
    return next((d for d in range(4) if abs(round(step, d) - step) < step * 1e-6), 4)


def runs(times: Sequence[float]) -> list[tuple[int, int]]:
    """[start, end) index ranges of points close enough to join with a line: a gap of more
    than GAP_FACTOR times the median spacing (an outage, a device taken down) breaks it."""
    if len(times) < 3:
        return [(0, len(times))]
    usual = statistics.median(b - a for a, b in itertools.pairwise(times))
    out, start = [], 0
    for i in range(1, len(times)):
        if times[i] - times[i - 1] > GAP_FACTOR * usual:
            out.append((start, i))
            start = i
    out.append((start, len(times)))
    return out


def _label(t: float) -> str:
    """UK wall-clock time with its zone, as every time on the dashboard is shown."""
    return datetime.fromtimestamp(t, UK).strftime("%d %b %H:%M %Z")


def line_chart(series: Series, *, colour: str = "#0969da") -> str:
    """An accessible SVG: role=img with a title and a summary of the range shown."""
    title = escape(series.label)
    if not series.points:
        return (
            f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{title}: '
            f'no data"><text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle">'
            "No data in this range</text></svg>"
        )
    times = [p[0].timestamp() for p in series.points]
    values = [p[1] for p in series.points]
    if series.scale is not None:
        v0, v1 = series.scale
        step = _nice_step(v1 - v0)
        ticks = _ticks(v0, v1, step)
    else:
        v0, v1, ticks = value_axis(values + [v for v, _ in series.marks], series.unit)
        step = ticks[1] - ticks[0]
    t0, t1 = min(times), max(times)
    if series.window is not None:
        t0 = min(t0, series.window[0].timestamp())
        t1 = max(t1, series.window[1].timestamp())
    span_t = (t1 - t0) or 1.0
    plot_w, plot_h = WIDTH - PAD_L - PAD_R, HEIGHT - PAD_T - PAD_B

    def x(t: float) -> float:
        return PAD_L + (t - t0) / span_t * plot_w

    def y(v: float) -> float:
        return PAD_T + (1 - (min(max(v, v0), v1) - v0) / (v1 - v0)) * plot_h

    lines, dots = [], []
    for start, end in runs(times):
        if end - start == 1:  # a lone reading between gaps: a line would not show it
            dots.append(f'<circle cx="{x(times[start]):.1f}" cy="{y(values[start]):.1f}" r="1.6"/>')
        lines.append(
            " ".join(
                f"{'M' if i == start else 'L'}{x(times[i]):.1f},{y(values[i]):.1f}"
                for i in range(start, end)
            )
        )
    decimals = _decimals(step)
    grid = "".join(
        f'<line x1="{PAD_L}" x2="{WIDTH - PAD_R}" y1="{y(v):.1f}" y2="{y(v):.1f}" class="grid"/>'
        f'<text x="{PAD_L - 4}" y="{y(v) + 4:.1f}" text-anchor="end">{v:.{decimals}f}</text>'
        for v in ticks
    )
    grid += "".join(
        f'<line x1="{PAD_L}" x2="{WIDTH - PAD_R}" y1="{y(v):.1f}" y2="{y(v):.1f}" class="mark"/>'
        f'<text x="{WIDTH - PAD_R - 2}" y="{y(v) - 3:.1f}" text-anchor="end">{escape(text)}</text>'
        for v, text in series.marks
        if v0 <= v <= v1
    )
    start_at, end_at = _label(times[0]), _label(times[-1])
    gaps = len(lines) - 1
    summary = (
        f"{title} from {start_at} to {end_at}: min {min(values):.1f}, max {max(values):.1f}, "
        f"latest {values[-1]:.1f} {escape(series.unit)}"
        + (f"; {gaps} gap{'s' if gaps > 1 else ''} without readings" if gaps else "")
    )
    axis_from, axis_to = (_label(t) for t in (t0, t1))
    if (axis_from, axis_to) != (start_at, end_at):
        summary += f"; shown from {axis_from} to {axis_to}"
    return (
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{summary}">'
        f"<title>{summary}</title>{grid}"
        f'<path d="{" ".join(lines)}" fill="none" stroke="{colour}" stroke-width="1.6"/>'
        f'<g fill="{colour}">{"".join(dots)}</g>'
        f'<text x="{PAD_L}" y="{HEIGHT - 8}">{axis_from}</text>'
        f'<text x="{WIDTH - PAD_R}" y="{HEIGHT - 8}" text-anchor="end">{axis_to}</text>'
        f'<circle cx="{x(times[-1]):.1f}" cy="{y(values[-1]):.1f}" r="3" fill="{colour}"/>'
        "</svg>"
    )
