"""Chart geometry for server-drawn SVG (templates/console/charts.html draws it): a bar chart, a
line chart and a simulation's from→to flow, in a fixed width that scales with the page. Colours
come from the stylesheet."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

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


# ---- where each old value went: one bar per old value, split by new value ---------------------

FLOW_LEFT, FLOW_RIGHT, FLOW_ROW, FLOW_BAR, FLOW_BOTTOM = 150, 56, 30, 20, 28


def shown(value: Any) -> str:
    """An outcome value as the console writes it: none, yes, no, or the value."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def value_key(value: Any) -> str:
    """A key that keeps apart values Python takes for one another (1, 1.0, true)."""
    return json.dumps(value, sort_keys=True)


def flow_chart(values: Sequence[Any], cells: Sequence[dict[str, Any]]) -> dict:
    """For one outcome field of a simulation's matrix ({values, cells: [{from, to, count,
    changed}]}): a bar per old value, in declared order, cut into the new values its subjects
    got; each new value keeps one colour (series-0…5), a kept value is drawn paler."""
    order = {value_key(v): i for i, v in enumerate(values)}
    froms = sorted({value_key(c["from"]) for c in cells}, key=lambda k: order.get(k, len(order)))
    tos = sorted({value_key(c["to"]) for c in cells}, key=lambda k: order.get(k, len(order)))
    totals = {k: sum(c["count"] for c in cells if value_key(c["from"]) == k) for k in froms}
    top = nice_ceiling(max(totals.values(), default=0))
    plot_w = WIDTH - FLOW_LEFT - FLOW_RIGHT
    height = TOP + len(froms) * FLOW_ROW + FLOW_BOTTOM
    rows = []
    for index, key in enumerate(froms):
        y, x = TOP + index * FLOW_ROW + (FLOW_ROW - FLOW_BAR) / 2, float(FLOW_LEFT)
        segments = []
        for to in tos:
            cell = next(
                (c for c in cells if value_key(c["from"]) == key and value_key(c["to"]) == to),
                None,
            )
            if cell is None or cell["count"] == 0:
                continue
            w = plot_w * cell["count"] / top
            segments.append(
                {
                    "x": x,
                    "w": w,
                    "series": tos.index(to) % 6,
                    "kept": not cell["changed"],
                    "title": f"{shown(cell['from'])} → {shown(cell['to'])}: {cell['count']}",
                }
            )
            x += w
        label = shown(json.loads(key))
        rows.append(
            {
                "y": y,
                "h": FLOW_BAR,
                "label": label if len(label) <= 20 else label[:19] + "…",
                "segments": segments,
                "total": totals[key],
                "end": x,
            }
        )
    ticks = [{"x": FLOW_LEFT + plot_w * i / 4, "label": _label(top * i / 4)} for i in range(5)]
    legend = [{"series": i % 6, "label": shown(json.loads(k))} for i, k in enumerate(tos)]
    return {
        "width": WIDTH,
        "height": height,
        "rows": rows,
        "ticks": ticks,
        "legend": legend,
        "left": FLOW_LEFT,
        "top": TOP,
        "bottom": height - FLOW_BOTTOM,
    }
