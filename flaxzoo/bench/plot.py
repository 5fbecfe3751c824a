"""A small log-log line plot as a PNG with PIL (matplotlib is not a dependency): one panel per quantity."""
from __future__ import annotations

import math

from flaxzoo.files import atomic_path

WIDTH, HEIGHT, MARGIN = 420, 300, 48
COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd")


def _ticks(lo: float, hi: float) -> list[float]:
    """Powers of ten and their 2x / 5x inside [lo, hi] (at least the two ends)."""
    ticks = [m * 10 ** e for e in range(math.floor(math.log10(lo)) - 1, math.ceil(math.log10(hi)) + 1)
             for m in (1, 2, 5) if lo <= m * 10 ** e <= hi]
    return ticks if len(ticks) >= 2 else [lo, hi]


def _label(v: float) -> str:
    return f"{v:.3g}"


def _panel(draw, box, title: str, xlabel: str, series: dict, xticks: dict | None = None) -> None:
    x0, y0, x1, y1 = box
    points = [(x, y) for pts in series.values() for x, y in pts if x > 0 and y > 0]
    draw.rectangle(box, outline="black")
    draw.text((x0, y0 - 16), title, fill="black")
    draw.text(((x0 + x1) // 2 - 3 * len(xlabel), y1 + 20), xlabel, fill="black")
    if not points:
        draw.text((x0 + 10, (y0 + y1) // 2), "no data", fill="black")
        return
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    lx = (math.log(min(xs)), math.log(max(xs)) if max(xs) > min(xs) else math.log(min(xs)) + 1)
    ly = (math.log(min(ys) / 1.2), math.log(max(ys) * 1.2))

    def at(x, y):
        return (x0 + (math.log(x) - lx[0]) / (lx[1] - lx[0]) * (x1 - x0),
                y1 - (math.log(y) - ly[0]) / (ly[1] - ly[0]) * (y1 - y0))

    for t in sorted(set(xs)):
        px = at(t, math.exp(ly[0]))[0]
        draw.line([(px, y1), (px, y1 + 4)], fill="black")
        draw.text((px - 8, y1 + 6), (xticks or {}).get(t, _label(t)), fill="black")
    for t in _ticks(math.exp(ly[0]), math.exp(ly[1])):
        py = at(math.exp(lx[0]), t)[1]
        draw.line([(x0 - 4, py), (x0, py)], fill="black")
        draw.line([(x0, py), (x1, py)], fill="#e0e0e0")
        draw.text((x0 - 44, py - 5), _label(t), fill="black")
    for i, (name, pts) in enumerate(series.items()):
        color = COLORS[i % len(COLORS)]
        pts = sorted((at(x, y) for x, y in pts if x > 0 and y > 0))
        if len(pts) > 1:
            draw.line(pts, fill=color, width=2)
        for px, py in pts:
            draw.ellipse([px - 3, py - 3, px + 3, py + 3], fill=color)
        draw.text((x0 + 6, y0 + 4 + 12 * i), name, fill=color)


def loglog_png(path: str, title: str, xlabel: str, panels: dict[str, dict[str, list[tuple[float, float]]]],
               xticks: dict[float, str] | None = None) -> None:
    """panels: {panel title: {series name: [(x, y), ...]}}, drawn side by side on log-log axes; xticks: labels
    for the data's x values (default: the numbers)."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (len(panels) * (WIDTH + MARGIN) + MARGIN, HEIGHT + 2 * MARGIN + 20), "white")
    draw = ImageDraw.Draw(image)
    draw.text((MARGIN, 6), title, fill="black")
    for i, (name, series) in enumerate(panels.items()):
        x0 = MARGIN + i * (WIDTH + MARGIN)
        _panel(draw, (x0, MARGIN + 20, x0 + WIDTH - MARGIN, MARGIN + 20 + HEIGHT - MARGIN), name, xlabel, series, xticks)
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")
