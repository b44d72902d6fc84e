"""The report's chart, drawn on the server as inline SVG: prints anywhere, needs no script and no network."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from markupsafe import Markup, escape

WIDTH, HEIGHT = 900, 300
LEFT, RIGHT, TOP, BOTTOM = 60, 60, 30, 40
PRESENT_COLOUR, READY_COLOUR = "#1f5fa8", "#2e8b3a"
BEFORE_START = dt.timedelta(hours=3)
AFTER_END = dt.timedelta(minutes=15)


def nice_ceiling(value: float) -> int:
    """The next round number at or above `value` that splits into four round steps, for an axis top."""
    if value <= 8:
        return 4 if value <= 4 else 8
    power = 10 ** (len(str(int(value))) - 1)
    for step in (1, 1.2, 1.6, 2, 2.4, 3, 4, 5, 6, 8, 10):
        if step * power >= value:
            return int(step * power)
    return 10 * power


def time_ticks(start: dt.datetime, end: dt.datetime) -> list[dt.datetime]:
    """Whole quarter, half or full hours across the span, at most eight of them."""
    span_minutes = (end - start).total_seconds() / 60
    step = next((s for s in (15, 30, 60, 120, 240, 480) if span_minutes / s <= 8), 1440)
    first = start.replace(minute=0, second=0, microsecond=0)
    ticks = [first + dt.timedelta(minutes=step * i) for i in range(int(span_minutes // step) + 3)]
    return [t for t in ticks if start <= t <= end]


def window(model: dict[str, Any]) -> tuple[dt.datetime, dt.datetime]:
    """The stretch of time worth drawing: from before the run's planned start to just after the close (not days
    later). A run on another day that never went live has no planned start: from its last change of phase on."""
    event = model["event"]
    if event["session_starts_at"] is None:
        starts_at = dt.datetime.fromisoformat(event["phase_history"][-1]["at"])
        ends_at = dt.datetime.fromisoformat(model["source"]["as_of"])
    else:
        starts_at, ends_at = map(dt.datetime.fromisoformat, (event["session_starts_at"], event["session_ends_at"]))
    live_ended = dt.datetime.fromisoformat(event["live_ended"]) if event["live_ended"] else ends_at
    return starts_at - BEFORE_START, max(ends_at, live_ended) + AFTER_END


def chart_svg(model: dict[str, Any], labels: dict[str, str], number: Callable[[int], str]) -> Markup:
    """Attendance (left axis) and sites ready (right axis) as step lines over the event's day."""
    points = [(dt.datetime.fromisoformat(p["at"]), p["present"], p["sites_ready"]) for p in model["timeline"]]
    start, end = window(model)
    inside = [p for p in points if start <= p[0] <= end]
    if inside:
        start = max(start, inside[0][0] - dt.timedelta(minutes=10))
    before = [p for p in points if p[0] < start]
    series = ([(start, before[-1][1], before[-1][2])] if before else []) + inside
    top = nice_ceiling(max([model["totals"]["expected"], *(p[1] for p in series)]))
    sites = nice_ceiling(model["totals"]["sites"])
    span = max((end - start).total_seconds(), 1.0)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(at: dt.datetime) -> float:
        return LEFT + plot_w * (at - start).total_seconds() / span

    def y(value: float, scale: float) -> float:
        return TOP + plot_h * (1 - value / scale)

    parts = [_axes(start, end, x, (top, sites), number, (plot_w, plot_h))]
    for index, colour, scale in ((1, PRESENT_COLOUR, top), (2, READY_COLOUR, sites)):
        parts.append(_step_line([(x(p[0]), y(p[index], scale)) for p in series], x(end), colour))
    parts.append(_legend(labels))
    return Markup(f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" xmlns="http://www.w3.org/2000/svg" '
                  f'role="img" aria-label="{escape(labels["chart_title"])}">{"".join(parts)}</svg>')


def _step_line(points: list[tuple[float, float]], right: float, colour: str) -> str:
    if not points:
        return ""
    coords = []
    for index, (px, py) in enumerate(points):
        if index:
            coords.append(f"{px:.1f},{points[index - 1][1]:.1f}")
        coords.append(f"{px:.1f},{py:.1f}")
    coords.append(f"{right:.1f},{points[-1][1]:.1f}")
    return f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{" ".join(coords)}"/>'


def _axes(start: dt.datetime, end: dt.datetime, x: Callable[[dt.datetime], float], scales: tuple[int, int],
          number: Callable[[int], str], size: tuple[int, int]) -> str:
    (top, sites), (plot_w, plot_h) = scales, size
    out = [f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#999"/>']
    for i in range(5):
        fraction = i / 4
        py = TOP + plot_h * (1 - fraction)
        out.append(f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{py:.1f}" y2="{py:.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{LEFT - 6}" y="{py + 4:.1f}" text-anchor="end" font-size="11" '
                   f'fill="{PRESENT_COLOUR}">{number(round(top * fraction))}</text>')
        out.append(f'<text x="{LEFT + plot_w + 6}" y="{py + 4:.1f}" font-size="11" '
                   f'fill="{READY_COLOUR}">{round(sites * fraction)}</text>')
    for at in time_ticks(start, end):
        px = x(at)
        out.append(f'<line x1="{px:.1f}" x2="{px:.1f}" y1="{TOP + plot_h}" y2="{TOP + plot_h + 4}" stroke="#999"/>')
        out.append(f'<text x="{px:.1f}" y="{TOP + plot_h + 18}" text-anchor="middle" font-size="11">{at:%H:%M}</text>')
    return "".join(out)


def _legend(labels: dict[str, str]) -> str:
    out = []
    for index, (key, colour) in enumerate((("chart_present", PRESENT_COLOUR), ("chart_ready", READY_COLOUR))):
        lx = LEFT + index * 220
        out.append(f'<line x1="{lx}" x2="{lx + 24}" y1="14" y2="14" stroke="{colour}" stroke-width="3"/>'
                   f'<text x="{lx + 30}" y="18" font-size="12">{escape(labels[key])}</text>')
    return "".join(out)
