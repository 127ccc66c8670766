"""The HTML report's plots: one function per plot, plain data in, an inline SVG string out.

Each function takes lists and numbers (never a report), so what a plot shows is decided in
one place, :mod:`harness.report.html`, and a plot can be checked on its own. matplotlib runs
headless (Agg); the SVG keeps its text as text (``svg.fonttype: none``), so the page needs
no font files, and it is cleaned for inlining: no XML prologue, no metadata block, no
namespace URLs, an ``id`` to find it by, and a viewBox without a fixed size so that it
scales to the page and to paper.
"""

from __future__ import annotations

import functools
import html
import io
import math
import re
from typing import TYPE_CHECKING, Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.ticker import FuncFormatter

from harness.report.format import duration
from harness.result import CHANGE_WORDS

if TYPE_CHECKING:
    from matplotlib.typing import RcKeyType

# Wide figures at 72 units per inch: at a ~1200 px page, one unit is about one pixel, so
# the font sizes below are roughly what a reader sees.
WIDTH_IN = 15.0
STYLE: dict[RcKeyType, Any] = {
    "svg.fonttype": "none",
    # Labels are names from reports: "$\\foo{$" is a model's name, not TeX for mathtext to parse.
    "text.parse_math": False,
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans", "Liberation Sans", "Arial", "Helvetica"],
    "font.size": 11.5,
    "axes.titlesize": 12,
    "axes.titleweight": "bold",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "axes.grid.axis": "x",
    "grid.color": "#dddddd",
    "grid.linewidth": 0.8,
    "axes.axisbelow": True,
    "legend.frameon": False,
}

# One colour per stage, the same on every page whichever stages a run has; the page's CSS
# uses the same verdict colours.
STAGE_COLOURS = {
    "import torch": "#4C72B0",
    "import sentence-transformers": "#8FAADC",
    "CUDA init": "#8172B3",
    "model init": "#DD8452",
    "model to device": "#C9A227",
    "first encode": "#55A868",
}
OTHER_STAGE_COLOURS = ["#A5A5A5", "#937860", "#DA8BC3"]
VERDICT_COLOURS = {
    "slower": "#C0392B",
    "faster": "#2E8B57",
    "no change": "#7F8C8D",
    "inconclusive": "#D4A017",
}
TARGET_COLOUR = "#C0392B"
POINT_COLOUR = "#1F3A5F"


def _styled(plot):
    """Run a plot function under the house style (every artist reads it when created)."""

    @functools.wraps(plot)
    def wrapper(*args, **kwargs):
        with plt.rc_context(STYLE):
            return plot(*args, **kwargs)

    return wrapper


def _figure(rows: int = 1, cols: int = 1, height_in: float = 4.0, **kwargs):
    return plt.subplots(rows, cols, figsize=(WIDTH_IN, height_in), squeeze=False, **kwargs)


def _svg(fig, plot_id: str, title: str) -> str:
    """The figure as an SVG element ready to inline in HTML."""
    buffer = io.StringIO()
    # The salt makes matplotlib's internal ids (clip paths) unique per plot on one page,
    # and the same on every run.
    with plt.rc_context({"svg.hashsalt": plot_id}):
        fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    text = buffer.getvalue()
    text = re.sub(r"<\?xml[^>]*\?>\s*", "", text)
    text = re.sub(r"<!DOCTYPE[^>]*>\s*", "", text)
    text = re.sub(r"<!--.*?-->\s*", "", text, flags=re.S)
    text = re.sub(r"<metadata>.*?</metadata>\s*", "", text, flags=re.S)

    def root(match: re.Match) -> str:
        attrs = match.group(1)
        view_box = re.search(r'viewBox="([^"]*)"', attrs)
        box = view_box.group(1) if view_box else "0 0 100 100"
        # HTML's parser puts inline <svg> (and xlink:href) in the right namespaces itself.
        return (
            f'<svg id="{plot_id}" class="plot" role="img" aria-label="{html.escape(title)}" viewBox="{box}">'
        )

    text = re.sub(r"<svg\b([^>]*)>", root, text, count=1)
    return text.strip()


def _seconds(value: float, _pos=None) -> str:
    return duration(value, trim=True)


def _legend_on_top(ax, ncol: int) -> None:
    """The legend in one row above the plot, where the eye starts, clear of the bars."""
    ax.legend(
        loc="lower left",
        bbox_to_anchor=(0, 1.01),
        ncol=ncol,
        fontsize=11.5,
        handlelength=1.6,
        borderaxespad=0.2,
    )


def _label_height(n: int, per_row: float = 0.42, extra: float = 1.3) -> float:
    return max(2.2, n * per_row + extra)


@_styled
def stage_bars(
    labels: list[str],
    stages: dict[str, list[float]],
    target: float | None,
    totals: list[float | None] | None = None,
    plot_id: str = "plot-stages",
) -> str:
    """Per cell, one horizontal bar of the stage medians laid end to end, with the target
    of the total as a dashed line. ``stages`` maps a stage's name to one value per label."""
    fig, axes = _figure(height_in=_label_height(len(labels), 0.5, 1.6))
    ax = axes[0][0]
    y = list(range(len(labels)))
    left = [0.0] * len(labels)
    spare = iter(OTHER_STAGE_COLOURS * len(stages))
    for name, values in stages.items():
        colour = STAGE_COLOURS.get(name) or next(spare)
        widths = [v or 0.0 for v in values]
        ax.barh(y, widths, left=left, height=0.62, color=colour, label=name, edgecolor="white", linewidth=0.6)
        left = [a + b for a, b in zip(left, widths)]
    ends = totals if totals else left
    for i, (end, bar_end) in enumerate(zip(ends, left)):
        if end is not None:
            ax.text(bar_end, i, f"  {duration(end)}", va="center", ha="left", fontsize=11.5, color="#333333")
    if target is not None:
        ax.axvline(target, color=TARGET_COLOUR, linestyle="--", linewidth=1.4, label=f"target {target:g} s")
    ax.set_yticks(y, labels)
    ax.invert_yaxis()
    ax.set_xlim(0, max([*left, target or 0]) * 1.14 or 1)
    ax.xaxis.set_major_formatter(FuncFormatter(_seconds))
    ax.set_xlabel("median per stage (the bar's length is the median total load time)")
    _legend_on_top(ax, ncol=len(stages) + 1)
    return _svg(fig, plot_id, "Load time by stage per cell")


@_styled
def spread(
    labels: list[str],
    panels: dict[str, list[list[float]]],
    targets: dict[str, float | None],
    plot_id: str = "plot-spread",
) -> str:
    """Per metric a panel; per cell a box (quartiles, whiskers to 1.5 IQR) with every
    sample drawn over it as a point, so two samples are not mistaken for a distribution."""
    fig, axes = _figure(1, len(panels), height_in=_label_height(len(labels), 0.55, 1.4), sharey=True)
    for ax, (title, samples) in zip(axes[0], panels.items()):
        y = list(range(len(labels)))
        present = [i for i, s in enumerate(samples) if s]
        if present:
            ax.boxplot(
                [samples[i] for i in present],
                positions=[y[i] for i in present],
                orientation="horizontal",  # matplotlib 3.10+ (vert= is deprecated)
                widths=0.55,
                showfliers=False,
                patch_artist=True,
                manage_ticks=False,
                boxprops={"facecolor": "#E8EEF7", "edgecolor": "#7A8BA6"},
                medianprops={"color": "#1F3A5F", "linewidth": 2},
                whiskerprops={"color": "#7A8BA6"},
                capprops={"color": "#7A8BA6"},
            )
        for i in present:
            values = samples[i]
            # A fixed, even spread across the box's height: same picture on every render.
            offsets = [((k + 0.5) / len(values) - 0.5) * 0.4 for k in range(len(values))]
            ax.scatter(
                values,
                [i + o for o in offsets],
                s=26,
                color=POINT_COLOUR,
                zorder=3,
                alpha=0.85,
                edgecolors="white",
                linewidths=0.5,
            )
        target = targets.get(title)
        ax.set_title(title, loc="left")
        ax.set_yticks(y, labels)
        ax.set_ylim(len(labels) - 0.5, -0.9)
        ax.xaxis.set_major_formatter(FuncFormatter(_seconds))
        low = min((min(s) for s in samples if s), default=0)
        left = max(0, low * 0.8) if low > 0 else 0
        ax.set_xlim(left=left)
        if target is not None:
            # The axis starts where the samples do: a target below it has no line to draw,
            # so its label says where it is instead of floating over the tick labels.
            if target >= left:
                ax.set_xlim(left, max(ax.get_xlim()[1], target * 1.05))
                ax.axvline(target, color=TARGET_COLOUR, linestyle="--", linewidth=1.4)
                ax.text(target, -0.7, f" target {target:g} s", color=TARGET_COLOUR, fontsize=11, va="bottom")
            else:
                ax.text(
                    left,
                    -0.7,
                    f" target {target:g} s (below the axis)",
                    color=TARGET_COLOUR,
                    fontsize=11,
                    va="bottom",
                )
    return _svg(fig, plot_id, "Every sample over a box plot, per cell")


@_styled
def import_attribution(groups: dict[str, list[tuple[str, float]]], plot_id: str = "plot-imports") -> str:
    """Per torch version a panel of the packages that cost most import time (self time)."""
    names = list(groups)
    cols = min(3, max(1, len(names)))
    rows = math.ceil(len(names) / cols) or 1
    longest = max((len(g) for g in groups.values()), default=1)
    fig, axes = _figure(rows, cols, height_in=rows * _label_height(longest, 0.34, 1.0), sharex=True)
    flat = [ax for row in axes for ax in row]
    for ax, name in zip(flat, names):
        packages = groups[name]
        y = list(range(len(packages)))
        values = [s for _, s in packages]
        ax.barh(y, values, color="#4C72B0", height=0.65)
        for i, value in enumerate(values):
            ax.text(value, i, f" {duration(value)}", va="center", fontsize=11, color="#333333")
        ax.set_yticks(y, [p for p, _ in packages])
        ax.invert_yaxis()
        ax.set_title(name, loc="left")
        ax.xaxis.set_major_formatter(FuncFormatter(_seconds))
    top = max((s for g in groups.values() for _, s in g), default=1)
    for ax in flat:
        ax.set_xlim(0, top * 1.25)
    for ax in flat[len(names) :]:
        ax.set_visible(False)
    return _svg(fig, plot_id, "Import time by package per torch version")


@_styled
def memory(
    labels: list[str],
    delta: list[float | None],
    peak: list[float | None],
    target: float | None,
    plot_id: str = "plot-memory",
) -> str:
    """Per cell the median RSS growth (what the target is about) and the median peak RSS."""
    fig, axes = _figure(height_in=_label_height(len(labels), 0.62, 1.5))
    ax = axes[0][0]
    height = 0.36
    for offset, values, colour, name in (
        (-height / 2, delta, "#4C72B0", "RSS delta (memory_mb)"),
        (height / 2, peak, "#7F9BC8", "peak RSS (peak_rss_mb)"),
    ):
        ys = [i + offset for i in range(len(labels))]
        widths = [v or 0 for v in values]
        ax.barh(ys, widths, height=height, color=colour, label=name)
        for yy, value in zip(ys, values):
            if value is None:
                continue
            # Inside the bar's end when it fits, so the label never sits on the target line.
            inside = value > 0.2 * max(v or 0 for v in [*delta, *peak])
            ax.text(
                value,
                yy,
                f"{value:.0f} MB " if inside else f" {value:.0f} MB",
                va="center",
                ha="right" if inside else "left",
                fontsize=11,
                color="white" if inside else "#333333",
            )
    if target is not None:
        ax.axvline(
            target, color=TARGET_COLOUR, linestyle="--", linewidth=1.4, label=f"target (delta) {target:g} MB"
        )
    ax.set_yticks(range(len(labels)), labels)
    ax.invert_yaxis()
    top = max([v for v in [*delta, *peak] if v is not None] + [target or 0, 1])
    ax.set_xlim(0, top * 1.15)
    ax.set_xlabel("MB (median)")
    _legend_on_top(ax, ncol=3)
    return _svg(fig, plot_id, "Memory per cell against the target")


@_styled
def ratio_intervals(
    labels: list[str],
    ratios: list[float],
    lows: list[float],
    highs: list[float],
    verdicts: list[str],
    threshold: float,
    plot_id: str = "plot-ratio",
    xlabel: str = "change of the median, current against baseline (whiskers: 95% interval)",
    title: str = "Change against the baseline with its interval",
    kinds: list[str] | None = None,
) -> str:
    """Per (cell, metric) a ratio (of medians current/baseline, or a paired comparison's
    geometric mean) as a bar from 1, with its 95% interval as whiskers; the shaded band is the
    threshold within which no change counts. ``kinds`` (each row's metric kind, the
    catalogue's: time, size, score) puts each kind in a panel of its own, on its own axis,
    so a +75% in memory does not squeeze every ±5% in time, and words its legend
    (``larger``/``smaller`` for sizes); by default every row is a time."""
    kinds = kinds or ["time"] * len(labels)
    order = [k for k in CHANGE_WORDS if k in kinds]
    rows = [[i for i, k in enumerate(kinds) if k == kind] for kind in order]
    fig, axes = _figure(
        len(order),
        1,
        height_in=sum(_label_height(len(r), 0.34, 1.4) for r in rows),
        gridspec_kw={"height_ratios": [_label_height(len(r), 0.34, 1.4) for r in rows], "hspace": 0.45},
    )
    for ax, kind, picked in zip((row[0] for row in axes), order, rows):
        _ratio_panel(
            ax,
            [labels[i] for i in picked],
            [ratios[i] for i in picked],
            [lows[i] for i in picked],
            [highs[i] for i in picked],
            [verdicts[i] for i in picked],
            threshold,
            CHANGE_WORDS[kind],
        )
        if len(order) > 1:
            # Above the panel's legend, which sits on top of the axes.
            ax.set_title(
                {"time": "Times", "size": "Sizes (memory)", "score": "Scores", "count": "Counts"}[kind],
                loc="left",
                pad=30,
            )
    axes[-1][0].set_xlabel(xlabel)
    return _svg(fig, plot_id, title)


def _ratio_panel(ax, labels, ratios, lows, highs, verdicts, threshold, words) -> None:
    y = list(range(len(labels)))
    ax.axvspan(
        1 - threshold, 1 + threshold, color="#EEEEEE", zorder=0, label=f"±{threshold * 100:g}% threshold"
    )
    ax.axvline(1.0, color="#555555", linewidth=1)
    colours = [VERDICT_COLOURS.get(v, "#999999") for v in verdicts]
    ax.barh(y, [r - 1 for r in ratios], left=1, height=0.5, color=colours, alpha=0.55)
    ax.errorbar(
        ratios,
        y,
        xerr=[[r - lo for r, lo in zip(ratios, lows)], [hi - r for r, hi in zip(ratios, highs)]],
        fmt="none",
        ecolor="#222222",
        elinewidth=1.3,
        capsize=4,
        zorder=3,
    )
    ax.scatter(ratios, y, color=colours, s=30, zorder=4, edgecolors="#222222", linewidths=0.6)
    for verdict, colour in VERDICT_COLOURS.items():
        if verdict in verdicts:
            ax.scatter(
                [],
                [],
                color=colour,
                s=30,
                edgecolors="#222222",
                linewidths=0.6,
                label=words.get(verdict, verdict),
            )
    ax.set_yticks(y, labels)
    ax.invert_yaxis()
    # One very wide interval (a few noisy samples of a short stage) must not squash every
    # other row: the axis stops at ±100% and a whisker that goes on says where it ends.
    span = min(1.0, max([abs(v - 1) for v in [*lows, *highs] if math.isfinite(v)] + [threshold * 2]))
    edge = 1 + span * 1.15
    for i, high in enumerate(highs):
        if math.isfinite(high) and high > edge:
            ax.annotate(
                f"→ {(high - 1) * 100:+.0f}%",
                (edge, i),
                xytext=(-4, 0),
                textcoords="offset points",
                ha="right",
                va="bottom",
                fontsize=10,
                color="#222222",
            )
    ax.set_xlim(1 - span * 1.15, edge)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _p: f"{(v - 1) * 100:+.0f}%"))
    _legend_on_top(ax, ncol=5)


@_styled
def trends(series: dict[str, tuple[list[str], list[float], list[int]]], plot_id: str = "plot-trend") -> str:
    """Per cell a panel of the median total per run, oldest to newest; each detected step
    (the first run of a new level) is marked."""
    names = list(series)
    cols = min(3, max(1, len(names)))
    rows = math.ceil(len(names) / cols) or 1
    fig, axes = _figure(rows, cols, height_in=rows * 2.9)
    flat = [ax for row in axes for ax in row]
    for ax, name in zip(flat, names):
        runs, values, steps = series[name]
        x = list(range(len(values)))
        ax.plot(x, values, marker="o", color="#4C72B0", linewidth=1.6, markersize=5)
        for i in steps:
            ax.axvline(i - 0.5, color=TARGET_COLOUR, linestyle=":", linewidth=1.4)
            ax.scatter(
                [i], [values[i]], s=90, facecolors="none", edgecolors=TARGET_COLOUR, linewidths=2, zorder=3
            )
            before = values[i - 1] if i else values[i]
            ax.annotate(
                f"step {(values[i] - before) / before * 100:+.0f}%" if before else "step",
                (i, values[i]),
                textcoords="offset points",
                xytext=(6, 8),
                color=TARGET_COLOUR,
                fontsize=11,
            )
        ax.set_title(name, loc="left", fontsize=12)
        # Run ids are long: past a few runs, label the first, the last and each step.
        shown = list(range(len(runs))) if len(runs) <= 6 else sorted({0, len(runs) - 1, *steps})
        ax.set_xticks(shown, [runs[i] for i in shown], fontsize=10.5)
        ax.set_xlim(-0.5, max(len(values) - 0.5, 1.5))
        ax.grid(axis="y", color="#dddddd")
        ax.yaxis.set_major_formatter(FuncFormatter(_seconds))
        low, high = min(values), max(values)
        pad = (high - low) * 0.25 or high * 0.1 or 1
        ax.set_ylim(max(0, low - pad), high + pad)
    for ax in flat[len(names) :]:
        ax.set_visible(False)
    fig.tight_layout()
    return _svg(fig, plot_id, "Median total load time per run, with step changes")
