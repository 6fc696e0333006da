"""Training curves as inline SVG for the evaluation report: loss (train and validation) and the main
accuracy against the step, one small chart each, from a train stage's `curves.json`."""

from __future__ import annotations

from html import escape

WIDTH, HEIGHT, PAD = 420, 200, 36
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd")
# Chart -> the curves it draws, first found of each group: (label, source, keys tried in order).
CHARTS = {
    "loss": (("train", "train", ("train/loss",)), ("validation", "val", ("val/loss",))),
    "accuracy": (("train", "train", ("train/accuracy", "train/stop_accuracy", "train/advance_accuracy")),
                 ("validation", "val", ("val/accuracy", "val/stop_accuracy", "val/advance_accuracy"))),
}


def series(curves: dict, source: str, keys: tuple[str, ...]) -> tuple[str, list[tuple[int, float]]] | None:
    """(key, [(step, value)]) of the first key in `keys` that `curves[source]` has, or None."""
    points = curves.get(source) or []
    for key in keys:
        found = [(int(p["step"]), float(p[key])) for p in points if key in p]
        if found:
            return key, found
    return None


def chart(title: str, lines: list[tuple[str, list[tuple[int, float]]]]) -> str:
    """One SVG line chart: (legend label, points) per line; axes with min/max ticks."""
    steps = [s for _, pts in lines for s, _ in pts]
    values = [v for _, pts in lines for _, v in pts]
    x0, x1 = min(steps), max(steps)
    y0, y1 = min(values), max(values)
    if x1 == x0:
        x1 = x0 + 1
    if y1 == y0:
        y1 = y0 + 1e-6
    sx = lambda s: PAD + (s - x0) / (x1 - x0) * (WIDTH - 2 * PAD)  # noqa: E731
    sy = lambda v: HEIGHT - PAD + (v - y0) / (y1 - y0) * (2 * PAD - HEIGHT)  # noqa: E731
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" role="img" '
             f'aria-label="{escape(title)}"><title>{escape(title)}</title>',
             f'<rect x="{PAD}" y="{PAD // 2}" width="{WIDTH - 2 * PAD}" height="{HEIGHT - 1.5 * PAD:.0f}" '
             'fill="none" stroke="#ccc"/>',
             f'<text x="{WIDTH / 2}" y="12" font-size="11" text-anchor="middle">{escape(title)}</text>',
             f'<text x="{PAD}" y="{HEIGHT - 20}" font-size="9">{x0}</text>',
             f'<text x="{WIDTH - PAD}" y="{HEIGHT - 20}" font-size="9" text-anchor="end">{x1} steps</text>',
             f'<text x="{PAD - 3}" y="{sy(y1) + 3:.1f}" font-size="9" text-anchor="end">{y1:.3g}</text>',
             f'<text x="{PAD - 3}" y="{sy(y0):.1f}" font-size="9" text-anchor="end">{y0:.3g}</text>']
    for i, (label, pts) in enumerate(lines):
        colour = COLOURS[i % len(COLOURS)]
        coords = " ".join(f"{sx(s):.1f},{sy(v):.1f}" for s, v in pts)
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{coords}"/>')
        if len(pts) == 1:
            parts.append(f'<circle cx="{sx(pts[0][0]):.1f}" cy="{sy(pts[0][1]):.1f}" r="2.5" fill="{colour}"/>')
        parts.append(f'<text x="{WIDTH - PAD - 4}" y="{PAD + 4 + 12 * i}" font-size="10" fill="{colour}" '
                     f'text-anchor="end">{escape(label)}</text>')
    return "".join(parts) + "</svg>"


def stage_charts(stage: str, curves: dict) -> list[str]:
    """The SVG charts of one train stage (none when it logged nothing they draw)."""
    out = []
    for name, groups in CHARTS.items():
        lines = []
        for label, source, keys in groups:
            found = series(curves, source, keys)
            if found:
                lines.append((f"{label} ({found[0].split('/', 1)[1]})", found[1]))
        if lines:
            out.append(chart(f"{stage}: {name}", lines))
    return out
