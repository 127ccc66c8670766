"""The comparison renderer: a Comparison as a console table, GitHub Markdown or JSON.

Every text a report supplies (cell ids, labels, reasons) is escaped for Markdown with
``format.md_text``; the same rows serve the HTML page, where jinja2 escapes them.
"""

from __future__ import annotations

import json
import math
import os
import sys

from tabulate import tabulate

from harness.analysis.compare import Comparison
from harness.analysis.paired import PairedComparison, PairedVerdict, describe
from harness.errors import UserError
from harness.report.format import COMPARISON_HEADERS, PAIRED_HEADERS, md_text, one_line, percent, quantity

_COLOURS = {"slower": "\033[31m", "faster": "\033[32m", "no change": "\033[2m", "inconclusive": "\033[33m"}
_MD_MARK = {"slower": "🔴", "faster": "🟢", "no change": "⚪", "inconclusive": "🟡"}
FORMATS = ("text", "md", "json")
# What a comparison against a stored baseline is, said wherever one is shown.
STORED_NOTE = (
    "against stored numbers: the two reports were measured in two sessions of the machine, so "
    "whatever changed on it in between is part of every change; measure both sides in one "
    "interleaved run and compare within it (compare REPORT --within torch) to cancel that drift"
)


def headers_of(comparison: Comparison) -> list[str]:
    return PAIRED_HEADERS if isinstance(comparison, PairedComparison) else COMPARISON_HEADERS


def table_rows(comparison: Comparison, fmt: str, colour: bool) -> list[list[str]]:
    """One row per verdict, shared by the console/markdown table and the HTML page."""
    text = md_text if fmt == "md" else one_line
    rows = []
    for v in comparison.verdicts:
        gated = v.metric in comparison.gated_metrics
        verdict = v.verdict + (" (gate)" if gated and v.verdict == "slower" else "")
        if fmt == "md":
            verdict = f"{_MD_MARK[v.verdict]} {verdict}"
        elif colour:
            verdict = f"{_COLOURS[v.verdict]}{verdict}\033[0m"
        has_ratio = not math.isnan(v.ratio)
        row = [
            text(v.cell_id),
            v.metric + (" *" if gated else ""),
            quantity(v.metric, v.baseline_median),
            quantity(v.metric, v.current_median),
            percent(v.change) if has_ratio else "–",
            f"{percent(v.ci_low - 1)} … {percent(v.ci_high - 1)}" if has_ratio else "–",
            f"{v.p_value:.3f}" if v.p_value is not None else "–",
            f"{v.n_current} {v.pairing}" if isinstance(v, PairedVerdict) else f"{v.n_baseline}/{v.n_current}",
            f"{v.min_detectable * 100:.0f}%" if v.min_detectable is not None else "–",
            verdict,
        ]
        if isinstance(v, PairedVerdict):  # a paired comparison's verdicts all are
            row.insert(1, text(v.reference_id))
        rows.append(row)
    return rows


def render(comparison: Comparison, fmt: str = "text", *, colour: bool | None = None) -> str:
    """The comparison as a text table (colours on a terminal), GitHub markdown, or JSON."""
    if fmt == "json":
        return json.dumps(_nan_to_none(comparison.to_dict()), indent=2, allow_nan=False)
    if fmt not in FORMATS:
        raise UserError(f"format {fmt!r}: use text, md or json")
    if colour is None:
        colour = fmt == "text" and sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    md = fmt == "md"
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
    lines.append("")
    if c.verdicts:
        rows = table_rows(c, fmt, bool(colour))
        tablefmt = "github" if md else "simple"
        lines.append(tabulate(rows, headers=headers_of(c), tablefmt=tablefmt, disable_numparse=True))
    elif isinstance(c, PairedComparison):
        lines.append("No pair of cells has samples to compare.")
    else:
        lines.append("No cell is present in both reports with samples to compare.")
    notes = [v for v in c.verdicts if v.verdict != "no change"]
    if notes:
        lines += ["", "**Why:**" if md else "Why:"]
        lines.extend(f"- {text(v.cell_id)} {v.metric}: {v.verdict}: {text(v.reason, 400)}" for v in notes)
    for heading, cells in (
        ("Missing in current", c.missing_in_current),
        ("Missing in baseline", c.missing_in_baseline),
    ):
        if cells:
            lines += ["", f"{heading}: " + ", ".join(text(cell) for cell in cells)]
    for heading, reasons in (
        ("Busy machine (slowdowns on that side are not called):", c.busy),
        ("Failed cells (not compared):", c.failed),
    ):
        if reasons:
            lines += ["", heading]
            lines.extend(f"- {text(cell)}: {text(why, 400)}" for cell, why in sorted(reasons.items()))
    lines.append("")
    regressions = c.regressions()
    if regressions:
        lines.append(
            f"REGRESSION: {len(regressions)} gated metric(s) slower: "
            + ", ".join(f"{text(v.cell_id)} {v.metric} {percent(v.change)}" for v in regressions)
        )
    else:
        lines.append(f"No regression on the gated metrics ({', '.join(c.gated_metrics) or 'none'}).")
    return "\n".join(lines) + "\n"


def _nan_to_none(data):
    if isinstance(data, float) and math.isnan(data):
        return None
    if isinstance(data, dict):
        return {k: _nan_to_none(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_nan_to_none(v) for v in data]
    return data
