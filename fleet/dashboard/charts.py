"""Small server-rendered SVG line charts: no JavaScript build, readable without scripts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from html import escape

WIDTH, HEIGHT = 640, 180
PAD_L, PAD_R, PAD_T, PAD_B = 48, 12, 12, 28


@dataclass(frozen=True)
class Series:
    label: str
    unit: str
    points: Sequence[tuple[datetime, float]]


def _ticks(lo: float, hi: float, n: int = 4) -> list[float]:
    if hi == lo:
        return [lo]
    step = (hi - lo) / n
    return [lo + i * step for i in range(n + 1)]


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
    t0, t1 = min(times), max(times)
    v0, v1 = min(values), max(values)
    if v1 - v0 < 1e-9:
        v0, v1 = v0 - 1, v1 + 1
    span_t = (t1 - t0) or 1.0
    plot_w, plot_h = WIDTH - PAD_L - PAD_R, HEIGHT - PAD_T - PAD_B

    def x(t: float) -> float:
        return PAD_L + (t - t0) / span_t * plot_w

    def y(v: float) -> float:
        return PAD_T + (1 - (v - v0) / (v1 - v0)) * plot_h

    path = " ".join(
        f"{'M' if i == 0 else 'L'}{x(t):.1f},{y(v):.1f}"
        for i, (t, v) in enumerate(zip(times, values, strict=True))
    )
    grid = "".join(
        f'<line x1="{PAD_L}" x2="{WIDTH - PAD_R}" y1="{y(v):.1f}" y2="{y(v):.1f}" class="grid"/>'
        f'<text x="{PAD_L - 4}" y="{y(v) + 4:.1f}" text-anchor="end">{v:.1f}</text>'
        for v in _ticks(v0, v1)
    )
    start = series.points[0][0].strftime("%d %b %H:%M")
    end = series.points[-1][0].strftime("%d %b %H:%M")
    summary = (
        f"{title} from {start} to {end}: min {min(values):.1f}, max {max(values):.1f}, "
        f"latest {values[-1]:.1f} {escape(series.unit)}"
    )
    return (
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{summary}">'
        f"<title>{summary}</title>{grid}"
        f'<path d="{path}" fill="none" stroke="{colour}" stroke-width="1.6"/>'
        f'<text x="{PAD_L}" y="{HEIGHT - 8}">{start}</text>'
        f'<text x="{WIDTH - PAD_R}" y="{HEIGHT - 8}" text-anchor="end">{end}</text>'
        f'<circle cx="{x(times[-1]):.1f}" cy="{y(values[-1]):.1f}" r="3" fill="{colour}"/>'
        "</svg>"
    )
