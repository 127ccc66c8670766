"""The comparison renderer: a Comparison as a console table, GitHub Markdown or JSON.

Every text a report supplies (cell ids, labels, reasons) is escaped for Markdown with
``format.md_text``; the same rows serve the HTML page, where jinja2 escapes them.
"""

from __future__ import annotations

import json
import math
import os
import sys
import textwrap

from tabulate import tabulate

from harness.analysis.compare import Comparison, MetricVerdict
from harness.analysis.paired import PairedComparison, PairedVerdict, describe
from harness.errors import UserError
from harness.report.format import (
    CHANGE_NOTE,
    COMPARISON_HEADERS,
    NARROW_COMPARISON_HEADERS,
    NARROW_PAIRED_HEADERS,
    PAIRED_HEADERS,
    md_text,
    one_line,
    percent,
    quantity,
    short_ids,
)

_COLOURS = {"slower": "\033[31m", "faster": "\033[32m", "no change": "\033[2m", "inconclusive": "\033[33m"}
_MD_MARK = {"slower": "🔴", "faster": "🟢", "no change": "⚪", "inconclusive": "🟡"}
FORMATS = ("text", "md", "json")
# compare's text output fits a terminal this wide unless --wide.
TEXT_WIDTH = 100
# What a comparison against a stored baseline is, said wherever one is shown.
STORED_NOTE = (
    "against stored numbers: the two reports were measured in two sessions of the machine, so "
    "whatever changed on it in between is part of every change; measure both sides in one "
    "interleaved run and compare within it (compare REPORT --within torch) to cancel that drift"
)


def headers_of(comparison: Comparison, wide: bool = True) -> list[str]:
    paired = isinstance(comparison, PairedComparison)
    if wide:
        return PAIRED_HEADERS if paired else COMPARISON_HEADERS
    return NARROW_PAIRED_HEADERS if paired else NARROW_COMPARISON_HEADERS


def cell_labels(comparison: Comparison) -> dict[str, str]:
    """Each cell id of the comparison (its cells and their references) shortened to the axis
    values that differ between them (format.short_ids)."""
    ids = [v.cell_id for v in comparison.verdicts]
    ids += [getattr(v, "reference_id", "") for v in comparison.verdicts if getattr(v, "reference_id", "")]
    return short_ids(ids)


def change_note(comparison: Comparison) -> str:
    """What the change columns of this comparison's table are."""
    return "; ".join(CHANGE_NOTE[h] for h in headers_of(comparison) if h in CHANGE_NOTE)


def _interval(v: MetricVerdict) -> str:
    return f"[{percent(v.ci_low - 1)[:-1]}, {percent(v.ci_high - 1)[:-1]}]"


def table_rows(comparison: Comparison, fmt: str, colour: bool, *, wide: bool = True) -> list[list[str]]:
    """One row per verdict, shared by the console/markdown table and the HTML page; narrow
    (``wide=False``): cells by the axis values that differ, and the columns of headers_of's."""
    text = md_text if fmt == "md" else one_line
    labels = {} if wide else cell_labels(comparison)
    rows = []
    for v in comparison.verdicts:
        gated = v.metric in comparison.gated_metrics
        verdict = v.word + (" (gate)" if wide and gated and v.verdict == "slower" else "")
        if fmt == "md":
            verdict = f"{_MD_MARK[v.verdict]} {verdict}"
        elif colour:
            verdict = f"{_COLOURS[v.verdict]}{verdict}\033[0m"
        has_ratio = not math.isnan(v.ratio)
        pv = v if isinstance(v, PairedVerdict) else None  # a paired comparison's verdicts all are
        cells = {
            "cell": text(labels.get(v.cell_id, v.cell_id)),
            "against": text(pv.reference_id) if pv else "",
            "metric": v.metric + (" *" if gated else ""),
            "baseline": quantity(v.metric, v.baseline_median),
            "reference": quantity(v.metric, v.baseline_median),
            "ref.": quantity(v.metric, v.baseline_median),
            "current": quantity(v.metric, v.current_median),
            "cur.": quantity(v.metric, v.current_median),
            "Δ medians": percent(v.change) if has_ratio else "–",
            "Δ geo-mean": percent(v.change) if has_ratio else "–",
            "Δ median": percent(pv.median_ratio - 1) if pv and not math.isnan(pv.median_ratio) else "–",
            "95% CI": f"{percent(v.ci_low - 1)} … {percent(v.ci_high - 1)}" if has_ratio else "–",
            "Δ medians [95% CI]": f"{percent(v.change)} {_interval(v)}" if has_ratio else "–",
            "Δ geo-mean [95% CI]": f"{percent(v.change)} {_interval(v)}" if has_ratio else "–",
            "p": f"{v.p_value:.3f}" if v.p_value is not None else "–",
            "n b/c": f"{v.n_baseline}/{v.n_current}",
            "rounds": f"{pv.n_current} {pv.pairing}" if pv else "",
            "detects ≥": f"{v.min_detectable * 100:.0f}%" if v.min_detectable is not None else "–",
            "verdict": verdict,
        }
        rows.append([cells[h] for h in headers_of(comparison, wide)])
    return rows


def _wrapped(lines: list[str], width: int | None) -> list[str]:
    """Prose lines folded at ``width`` columns (a list item's continuation indented)."""
    if width is None:
        return lines
    out = []
    for line in lines:
        if len(line) <= width:
            out.append(line)
            continue
        indent = "  " if line.startswith("- ") else ""
        out.extend(textwrap.wrap(line, width, subsequent_indent=indent, break_on_hyphens=False))
    return out


def render(
    comparison: Comparison, fmt: str = "text", *, colour: bool | None = None, wide: bool = False
) -> str:
    """The comparison as a text table (colours on a terminal), GitHub markdown, or JSON.

    Text fits ``TEXT_WIDTH`` columns unless ``wide`` (every column, full cell ids, prose on
    one line each); Markdown is for a page, which wraps, and always has every column."""
    if fmt == "json":
        return json.dumps(_nan_to_none(comparison.to_dict()), indent=2, allow_nan=False)
    if fmt not in FORMATS:
        raise UserError(f"format {fmt!r}: use text, md or json")
    if colour is None:
        colour = fmt == "text" and sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    md = fmt == "md"
    wide = wide or md
    text = md_text if md else one_line
    c = comparison
    lines = []
    if isinstance(c, PairedComparison):
        title = f"Paired comparison within run {text(c.run_id)}: each cell against {text(c.baseline_label)}"
    else:
        title = f"Comparison: {text(c.current_label)} against baseline {text(c.baseline_label)}"
    if c.cross_machine:
        machines = " vs ".join(", ".join(c.fingerprints.get(side, [])) for side in ("baseline", "current"))
        title = (
            f"CROSS-MACHINE {title} — the reports come from different machines ({text(machines)}); "
            "differences may be the machines'"
        )
    lines += [f"## {title}" if md else title, ""]
    lines.append(text(describe(c), 400) if isinstance(c, PairedComparison) else f"Baseline {STORED_NOTE}.")
    lines.append(
        f"threshold ±{c.threshold * 100:g}%, alpha {c.alpha:g}; * gated metrics "
        f"({', '.join(c.gated_metrics) or 'none'}): slower there fails the check"
    )
    lines.append(change_note(c) + ("" if wide else "; --wide: every column, full cell ids") + ".")
    if isinstance(c, PairedComparison) and not wide and c.verdicts:
        # The rounds column is --wide's: how many rounds, and how paired, said once here.
        counts = sorted(
            {f"{v.n_current} {v.pairing}" for v in c.paired_verdicts}, key=lambda t: int(t.split()[0])
        )
        lines.append(f"rounds per pair: {', '.join(counts)}.")
    lines.append("")
    table = []
    if c.verdicts:
        rows = table_rows(c, fmt, bool(colour), wide=wide)
        headers = headers_of(c, wide)
        tablefmt = "github" if md else "simple"
        if not wide and len({row[0] for row in rows}) == 1:
            # One cell: named once above its table rather than in a column on every row.
            table.append(f"cell {rows[0][0]}:")
            headers, rows = headers[1:], [row[1:] for row in rows]
        table.append(tabulate(rows, headers=headers, tablefmt=tablefmt, disable_numparse=True))
        excess = max(len(line) for line in table[-1].splitlines()) - TEXT_WIDTH
        if not wide and not colour and excess > 0:
            # Cell labels longer than the room left (many axes differ): wrapped in their column.
            room = max(12, max(len(r[0]) for r in rows) - excess)
            table[-1] = tabulate(
                rows,
                headers=headers,
                tablefmt=tablefmt,
                disable_numparse=True,
                maxcolwidths=[room] + [None] * (len(rows[0]) - 1),
            )
    elif isinstance(c, PairedComparison):
        table.append("No pair of cells has samples to compare.")
    else:
        table.append("No cell is present in both reports with samples to compare.")
    tail = []
    notes = [v for v in c.verdicts if v.verdict != "no change"]
    labels = {} if wide else cell_labels(c)
    if notes:
        tail += ["", "**Why:**" if md else "Why:"]
        tail.extend(
            f"- {text(labels.get(v.cell_id, v.cell_id))} {v.metric}: {v.word}: {text(v.reason, 400)}"
            for v in notes
        )
    for heading, cells in (
        ("Missing in current", c.missing_in_current),
        ("Missing in baseline", c.missing_in_baseline),
    ):
        if cells:
            tail += ["", f"{heading}: " + ", ".join(text(cell) for cell in cells)]
    for heading, reasons in (
        ("Busy machine (slowdowns on that side are not called):", c.busy),
        ("Failed cells (not compared):", c.failed),
    ):
        if reasons:
            tail += ["", heading]
            tail.extend(f"- {text(cell)}: {text(why, 400)}" for cell, why in sorted(reasons.items()))
    tail.append("")
    regressions = c.regressions()
    if regressions:
        tail.append(
            f"REGRESSION: {len(regressions)} gated metric(s) slower: "
            + ", ".join(
                f"{text(labels.get(v.cell_id, v.cell_id))} {v.metric} {percent(v.change)}"
                for v in regressions
            )
        )
    else:
        tail.append(f"No regression on the gated metrics ({', '.join(c.gated_metrics) or 'none'}).")
    width = None if wide else TEXT_WIDTH
    return "\n".join(_wrapped(lines, width) + table + _wrapped(tail, width)) + "\n"


def _nan_to_none(data):
    if isinstance(data, float) and math.isnan(data):
        return None
    if isinstance(data, dict):
        return {k: _nan_to_none(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_nan_to_none(v) for v in data]
    return data
