"""How the renderers write figures and text: the one copy of each formatting rule.

Durations, sizes, percentages and dates; the order of torch versions and modes; text made
one line; the comparison table's headers; and escaping for the formats text lands in
(Markdown tables, headings and inline code). rich escapes its own markup
(``rich.markup.escape``) and jinja2 escapes HTML (autoescape), so neither is copied here.
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timezone

from harness.result import METRICS

# Cold before warm wherever cells are listed: the order in which a reader meets them.
MODE_ORDER = {"cold": 0, "warm": 1}

# The comparison's table, the same on the console, in Markdown and on the page. Its change
# column says which estimate it is: a stored-baseline comparison's is the change of the
# medians; a paired one's is the geometric mean of the per-round ratios (what the verdict
# judges), with the median of those ratios beside it, so a reader who compares the medians
# shown sees why the two differ.
COMPARISON_HEADERS = [
    "cell",
    "metric",
    "baseline",
    "current",
    "Δ medians",
    "95% CI",
    "p",
    "n b/c",
    "detects ≥",
    "verdict",
]
# A paired comparison within one run: each cell against its reference cell, round by round.
PAIRED_HEADERS = [
    "cell",
    "against",
    "metric",
    "reference",
    "current",
    "Δ geo-mean",
    "Δ median",
    "95% CI",
    "p",
    "rounds",
    "detects ≥",
    "verdict",
]
# A narrow table (compare's default, the page) names the reference side briefly, puts the
# interval beside the change, and leaves the rest to --wide.
# (A gated metric is starred in its metric column, so the verdict drops "(gate)".)
NARROW_COMPARISON_HEADERS = ["cell", "metric", "baseline", "cur.", "Δ medians [95% CI]", "p", "verdict"]
NARROW_PAIRED_HEADERS = ["cell", "metric", "ref.", "cur.", "Δ geo-mean [95% CI]", "Δ median", "verdict"]
# What the change columns are, said under every table that shows them.
CHANGE_NOTE = {
    "Δ medians": "Δ medians: current median against the baseline's",
    "Δ geo-mean": "Δ geo-mean: geometric mean of the per-round ratios, the estimate judged",
    "Δ median": "Δ median: median of the per-round ratios",
}


# --------------------------------------------------------------------------- figures


def decimals(value: float) -> int:
    """Three significant figures, at most four decimals: 3.74, 0.0123, 12.3, 412."""
    if value == 0 or not math.isfinite(value):
        return 2
    return max(0, min(4, 2 - math.floor(math.log10(abs(value)))))


def figure(value: float, places: int | None = None) -> str:
    """A number with ``places`` decimals (by default three significant figures)."""
    return f"{value:.{decimals(value) if places is None else places}f}"


def duration(seconds: float, *, trim: bool = False) -> str:
    """A time as a person reads it, three significant figures: ``412 ms``, ``3.74 s``, ``95.1 s``.

    ``trim`` drops trailing zeros (``2 s`` rather than ``2.00 s``), for axis ticks.
    """
    if seconds == 0:
        return "0" if trim else "0 s"
    value, unit = (seconds * 1000, "ms") if abs(seconds) < 1 else (seconds, "s")
    text = figure(value)
    if trim and "." in text:
        text = text.rstrip("0").rstrip(".")
    return f"{text} {unit}"


def megabytes(value: float) -> str:
    return f"{value:.0f} MB"


def quantity(metric: str, value: float | None) -> str:
    """A metric's value with its unit; ``–`` when there is none."""
    if value is None or not math.isfinite(value):
        return "–"
    unit = METRICS[metric].unit
    if unit == "":
        return cosine(value)
    if unit == "count":
        return f"{value:,.0f}"
    return megabytes(value) if unit == "MB" else duration(value)


def cosine(value: float) -> str:
    """An embedding cosine similarity: ``0.9934`` (four places: 0.99 is the threshold)."""
    return f"{value:.4f}"


def percent(fraction: float) -> str:
    """A signed relative change: ``+3.1%``."""
    return f"{fraction * 100:+.1f}%"


def when(stamp: str | None) -> str:
    """An ISO time stamp as ``2026-11-24 09:09 UTC``; ``–`` for none, the text for a bad one."""
    if not stamp:
        return "–"
    try:
        moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return stamp
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


# --------------------------------------------------------------------------- order


def version_key(text: str | None) -> tuple:
    """Sort key of a torch version: PEP 440 order, anything else after it by its text."""
    from packaging.version import InvalidVersion, Version

    try:
        return (0, Version(text or ""), "")
    except InvalidVersion:
        return (1, None, text or "")


def axes_key(torch: str | None, mode: str, device: str) -> tuple:
    """Sort key of a table column: torch version, then cold before warm, then device."""
    return (version_key(torch), MODE_ORDER.get(mode, len(MODE_ORDER)), mode, device)


# --------------------------------------------------------------------------- text


def short_ids(ids: list[str]) -> dict[str, str]:
    """Each cell id shortened to the parts that differ between ``ids`` (the axis values:
    ``torch2.14.1-warm`` for ``all-MiniLM-L6-v2-torch2.14.1-warm-cpu`` beside other cells of
    that model and device); an id whose parts do not line up with the others' is kept whole."""
    unique = list(dict.fromkeys(ids))
    parts = [cell_id.split("-") for cell_id in unique]
    if len(unique) < 2 or len({len(p) for p in parts}) != 1:
        return {cell_id: cell_id for cell_id in unique}
    differ = [i for i in range(len(parts[0])) if len({p[i] for p in parts}) > 1]
    return {cell_id: "-".join(p[i] for i in differ) for cell_id, p in zip(unique, parts)}


def one_line(text: object, limit: int = 160) -> str:
    """``text`` on one line (every run of whitespace, newlines included, one space), cut at ``limit``."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def shortened(text: object, limit: int, where: str | None) -> str:
    """``text`` on one line; when cut at ``limit``, followed by where the whole of it is
    (``where``: a file, else the merged report)."""
    short = one_line(text, limit)
    if short == " ".join(str(text).split()):
        return short
    return f"{short} (full reason in {where or 'the merged report'})"


# The characters that mean something inside a Markdown line (links, HTML, entities, emphasis,
# code, GitHub's table columns, strike-through and math); each is backslash-escaped, which
# every CommonMark renderer shows as the character itself. What means something only at a
# line's start (#, -, +, 1.) cannot get there: the text is made one line first.
_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|~&$])")


def md_text(text: object, limit: int = 160) -> str:
    """Text from a report or a user, safe anywhere in a Markdown line: a table cell, a
    heading, a list item. One line (a newline would end a table row or start a heading),
    and no character that could make a link, HTML, emphasis or a new table column."""
    return _MD_SPECIAL.sub(r"\\\1", one_line(text, limit))


def md_code(text: object, limit: int = 200) -> str:
    """Text as Markdown inline code: one line, fenced by more backticks than it holds.
    Not for table cells: GitHub splits a row at ``|`` even inside code; use md_text there."""
    text = one_line(text, limit)
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"
