"""Chart geometry for server-drawn SVG (templates/console/charts.html draws it): a bar chart and
a line chart in a fixed viewBox that scales with the page. Colours come from the stylesheet."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

WIDTH, HEIGHT = 640, 260
LEFT, RIGHT, TOP, BOTTOM = 72, 16, 16, 40  # room for the axis labels


@dataclass(frozen=True)
class Tick:
    y: float
    label: str


def nice_ceiling(value: float) -> float:
    """A round number at or above `value` for the top of an axis (1, 2, 2.5, 5 × 10^n)."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * power:
            return step * power
    return 10 * power


def _label(value: float) -> str:
    if abs(value) >= 1_000_000:
        return f"{value / 1_000_000:,.2f}".rstrip("0").rstrip(".") + "M"
    if abs(value) >= 10_000:
        return f"{value / 1000:,.0f}k"
    return f"{value:,.0f}" if value == int(value) else f"{value:,.1f}"


def _ticks(top: float, count: int = 4) -> list[Tick]:
    plot = HEIGHT - TOP - BOTTOM
    return [Tick(TOP + plot - plot * i / count, _label(top * i / count)) for i in range(count + 1)]


def bar_chart(bars: Sequence[tuple[str, Decimal | float]]) -> dict:
    """Bars for (label, value ≥ 0) pairs, left to right, on an axis from 0."""
    top = nice_ceiling(max((float(v) for _, v in bars), default=0))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / max(len(bars), 1)
    shapes = []
    for i, (label, value) in enumerate(bars):
        h = plot_h * max(float(value), 0) / top
        shapes.append(
            {
                "x": LEFT + i * slot + slot * 0.15,
                "y": TOP + plot_h - h,
                "w": slot * 0.7,
                "h": h,
                "cx": LEFT + i * slot + slot / 2,
                "label": label,
                "value": f"{Decimal(value):,.2f}",
            }
        )
    return {"width": WIDTH, "height": HEIGHT, "bars": shapes, "ticks": _ticks(top), **_frame()}


def line_chart(labels: Sequence[str], series: dict[str, Sequence[float | None]]) -> dict:
    """One line per series over the x labels (in order); None leaves a gap."""
    values = [v for points in series.values() for v in points if v is not None]
    top = nice_ceiling(max(values, default=0))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = plot_w / max(len(labels) - 1, 1)
    x_of = (lambda i: LEFT + plot_w / 2) if len(labels) == 1 else (lambda i: LEFT + i * step)
    lines = []
    for index, (name, points) in enumerate(series.items()):
        dots = [
            {"x": x_of(i), "y": TOP + plot_h - plot_h * max(v, 0) / top, "value": v, "at": at}
            for i, (at, v) in enumerate(zip(labels, points, strict=True))
            if v is not None
        ]
        path = " ".join(f"{d['x']:.1f},{d['y']:.1f}" for d in dots)
        lines.append({"name": name, "index": index % 6, "dots": dots, "points": path})
    xs = [{"x": x_of(i), "label": label} for i, label in enumerate(labels)]
    return {
        "width": WIDTH,
        "height": HEIGHT,
        "lines": lines,
        "xs": xs,
        "ticks": _ticks(top),
        **_frame(),
    }


def _frame() -> dict:
    return {"left": LEFT, "right": WIDTH - RIGHT, "bottom": HEIGHT - BOTTOM, "top": TOP}
