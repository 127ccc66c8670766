"""The dashboard's trend plot: an inline SVG string from plain data, drawn here rather than by
matplotlib because a site of fifty cells and a thousand runs draws a hundred of them in a
build that must take seconds. Colours are the HTML report's (:mod:`harness.report.plots`).

Every text drawn (run ids, labels) is escaped with :func:`html.escape`: the string is
inserted into the page with ``|safe``, as the HTML report inserts matplotlib's SVG.
"""

from __future__ import annotations

import html

from harness.report.format import duration

WIDTH, HEIGHT = 960, 240
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 22, 40
LINE = "#4C72B0"  # plots.trends' line
STEP = "#C0392B"  # plots.TARGET_COLOUR: steps are marked as the report marks them
INTERVAL = "#9DB3D8"


def _fmt(value: float) -> str:
    return f"{value:.1f}"


def trend(
    plot_id: str,
    title: str,
    runs: list[str],
    medians: list[float],
    lows: list[float | None],
    highs: list[float | None],
    steps: list[tuple[int, float]],
    unit: str = "s",
) -> str:
    """Per run the median (a line through the points) and its 95% interval (a vertical bar);
    each step (index of its first run, relative change) a dashed line before that run."""
    n = len(medians)
    values = [v for v in [*medians, *lows, *highs] if v is not None]
    low, high = min(values), max(values)
    pad = (high - low) * 0.1 or abs(high) * 0.1 or 1.0
    low, high = max(0.0, low - pad), high + pad
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(i: float) -> float:
        return LEFT + (plot_w * (i + 0.5) / n if n else 0)

    def y(v: float) -> float:
        return TOP + plot_h * (1 - (v - low) / (high - low))

    label = (lambda v: duration(v, trim=True)) if unit == "s" else (lambda v: f"{v:.4g} {unit}")
    out = [
        f'<svg id="{html.escape(plot_id)}" class="plot trend" role="img" '
        f'aria-label="{html.escape(title)}" viewBox="0 0 {WIDTH} {HEIGHT}">',
        f'<text x="{LEFT}" y="14" class="title">{html.escape(title)}</text>',
    ]
    for k in range(5):
        v = low + (high - low) * k / 4
        out.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{_fmt(y(v))}" y2="{_fmt(y(v))}" class="grid"/>'
            f'<text x="{LEFT - 6}" y="{_fmt(y(v) + 4)}" class="tick" text-anchor="end">'
            f"{html.escape(label(v))}</text>"
        )
    bars = [
        f"M{_fmt(x(i))} {_fmt(y(lo))}V{_fmt(y(hi))}"
        for i, (lo, hi) in enumerate(zip(lows, highs))
        if lo is not None and hi is not None
    ]
    if bars:
        out.append(f'<path d="{"".join(bars)}" stroke="{INTERVAL}" stroke-width="2" fill="none"/>')
    line = " ".join(f"{_fmt(x(i))},{_fmt(y(v))}" for i, v in enumerate(medians))
    out.append(f'<polyline points="{line}" stroke="{LINE}" stroke-width="1.5" fill="none"/>')
    if n <= 200:
        out.extend(
            f'<circle cx="{_fmt(x(i))}" cy="{_fmt(y(v))}" r="3" fill="{LINE}">'
            f"<title>{html.escape(runs[i])}: {html.escape(label(v))}</title></circle>"
            for i, v in enumerate(medians)
        )
    for index, change in steps:
        at = x(index - 0.5)
        out.append(
            f'<line x1="{_fmt(at)}" x2="{_fmt(at)}" y1="{TOP}" y2="{TOP + plot_h}" stroke="{STEP}" '
            f'stroke-dasharray="4 3" stroke-width="1.5" class="step"/>'
            f'<text x="{_fmt(at + 4)}" y="{TOP + 12}" fill="{STEP}" class="tick">'
            f"step {change * 100:+.0f}% at {html.escape(runs[index])}</text>"
        )
    shown = sorted({0, n - 1} | {i for i, _ in steps}) if n else []
    for i in shown:
        out.append(
            f'<text x="{_fmt(x(i))}" y="{HEIGHT - BOTTOM + 16}" class="tick" text-anchor="middle">'
            f"{html.escape(runs[i])}</text>"
        )
    out.append("</svg>")
    return "".join(out)
