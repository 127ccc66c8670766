"""The comparison tables of a merged matrix report, for a console, GitHub or a web page.

One function, :func:`render`, writes every format from one structure (:func:`table_data`):
``text`` (tabulate's plain layout), ``md`` (GitHub markdown, for a job summary) and
``html`` (for the HTML report). Per headline metric there is one table: rows are models,
columns are torch version x mode (x device, when the matrix has more than one), and a
cell reads ``median [95% interval]``, marked ``⚠`` where its target is missed. A cell
without figures says why in a word (``install failed``, ``load failed``, ``crashed``,
``timeout``, ``interrupted``, ``not run``).

Reads the merged report only; it computes no statistics of its own (the cell reports
carry them), so the tables show exactly the figures the JSON holds.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable

from harness.errors import UserError
from harness.result import HEADLINE_METRICS, METRICS

# html: cells are escaped here (below), so tabulate must not escape them again.
FORMATS = {"text": "simple", "md": "github", "html": "unsafehtml"}
MISSED = "⚠"
MODE_ORDER = {"cold": 0, "warm": 1}

# (cell id, metric) -> a short change against a baseline, such as "+3.1% slower".
Changes = dict[tuple[str, str], str]


# --------------------------------------------------------------------------- figures

def decimals(value: float) -> int:
    """Three significant figures, at most four decimals: 3.74, 0.0123, 12.3, 412."""
    if value == 0 or not math.isfinite(value):
        return 2
    return max(0, min(4, 2 - math.floor(math.log10(abs(value)))))


def figure(value: float, places: int) -> str:
    return f"{value:.{places}f}"


def failure_word(cell: dict) -> str:
    """Why a cell has no figures, in a word or two."""
    status = cell.get("status")
    failure = cell.get("failure") or {}
    reason = str(failure.get("reason") or "")
    detail = str(failure.get("detail") or "")
    if status == "partial" or reason == "interrupted":
        return "interrupted"
    if "could not be installed" in reason or "could not be built" in reason:
        return "install failed"
    if reason.startswith("could not start"):
        return "load failed"
    if reason == "timeout" or "timed out" in detail or "timed out" in reason:
        return "timeout"
    return "crashed"


def _columns(cells: dict[str, dict], missing: list[dict]) -> list[tuple[str, str, str]]:
    from packaging.version import InvalidVersion, Version

    def key(col):
        torch, mode, device = col
        try:
            version = (0, Version(torch))
        except InvalidVersion:
            version = (1, torch)
        return (version, MODE_ORDER.get(mode, 9), mode, device)

    seen = {(c["cell"].get("torch") or "none", c["cell"]["mode"], c["cell"]["device"]) for c in cells.values()}
    seen |= {(m.get("torch") or "none", m["mode"], m["device"]) for m in missing}
    return sorted(seen, key=key)


def _models(cells: dict[str, dict], missing: list[dict]) -> list[str]:
    names: list[str] = []
    for block in [c["cell"] for c in cells.values()] + list(missing):
        if block["model"] not in names:
            names.append(block["model"])
    return names


def _entry(cell: dict | None, metric: str, change: str | None) -> dict:
    """One table cell: the figures and the text shown."""
    if cell is None:
        return {"status": "missing", "text": "not run"}
    stats = (cell.get("stats") or {}).get(metric)
    if cell.get("status") != "complete" or stats is None:
        if cell.get("status") == "complete":
            return {"status": "complete", "text": "–"}  # not measured here (a CUDA figure on a CPU cell)
        word = failure_word(cell)
        counted = [s for s in cell.get("samples", []) if not s.get("warmup")]
        if word == "interrupted" and counted:
            word += f" ({sum(1 for s in counted if s.get('ok'))}/{cell['settings']['runs']})"
        return {"status": cell.get("status"), "text": word, "word": word,
                "reason": (cell.get("failure") or {}).get("reason")}
    median, ci = stats["median"], stats.get("ci95")
    places = decimals(median)
    text = figure(median, places)
    if ci:
        text += f" [{figure(ci[0], places)}–{figure(ci[1], places)}]"
    result = (cell.get("target_results") or {}).get(metric) or {}
    missed = result.get("met") is False
    if missed:
        text += f" {MISSED}"
    if change:
        text += f" {change}"
    return {"status": "complete", "text": text, "median": median, "ci95": ci, "n": stats.get("n"),
            "target": result.get("target"), "missed": missed, "change": change}


def table_data(report: dict, metrics: list[str] = HEADLINE_METRICS, changes: Changes | None = None) -> dict:
    """Everything the tables show, as plain data (what --format json prints)."""
    cells = report["cells"]
    missing = list(report.get("missing") or [])
    columns = _columns(cells, missing)
    devices = {device for _, _, device in columns}
    by_coords = {(c["cell"]["model"], c["cell"].get("torch") or "none", c["cell"]["mode"], c["cell"]["device"]): c
                 for c in cells.values()}
    headers = ["model"] + [f"{torch} {mode}" + (f" {device}" if len(devices) > 1 else "")
                           for torch, mode, device in columns]
    tables = []
    for metric in metrics:
        info = METRICS[metric]
        rows = []
        for model in _models(cells, missing):
            entries = []
            for torch, mode, device in columns:
                cell = by_coords.get((model, torch, mode, device))
                change = (changes or {}).get((cell["cell"]["id"], metric)) if cell else None
                entries.append(_entry(cell, metric, change))
            rows.append({"model": model, "cells": entries})
        targets = {e.get("target") for row in rows for e in row["cells"] if e.get("target") is not None}
        tables.append({"metric": metric, "label": info.label, "unit": info.unit, "headers": headers,
                       "target": targets.pop() if len(targets) == 1 else None, "rows": rows})
    environments = []
    for torch, env in sorted((report.get("environments") or {}).items(), key=lambda kv: _version_key(kv[0])):
        packages = env.get("packages") or {}
        environments.append({
            "torch": torch, "status": env.get("status"), "build_s": env.get("build_s"),
            "python": env.get("python"), "torch_installed": packages.get("torch"),
            "sentence_transformers": packages.get("sentence-transformers"), "error": env.get("error"),
        })
    failed = [{"cell": cid, "word": failure_word(c), "reason": (c.get("failure") or {}).get("reason") or c["status"]}
              for cid, c in cells.items() if c.get("status") != "complete"]
    failed += [{"cell": m["id"], "word": "not run", "reason": "no report: the run stopped before this cell"}
               for m in missing]
    return {"run_id": report.get("run_id"), "tables": tables, "environments": environments, "failed": failed}


def _version_key(text: str):
    from packaging.version import InvalidVersion, Version

    try:
        return (0, Version(text))
    except InvalidVersion:
        return (1, text)


# --------------------------------------------------------------------------- output

def render(report: dict, fmt: str = "text", *, metrics: list[str] = HEADLINE_METRICS,
           changes: Changes | None = None, baseline_label: str | None = None,
           where: dict[str, str] | None = None) -> str:
    """The tables of a merged report as ``text``, ``md`` (GitHub) or ``html``.

    ``changes`` adds each cell's change against a baseline; ``where`` adds a closing list
    of report locations (label -> path).
    """
    from tabulate import tabulate

    if fmt not in FORMATS:
        raise UserError(f"format {fmt!r}: use {', '.join(FORMATS)}")
    data = table_data(report, metrics, changes)
    tablefmt = FORMATS[fmt]
    out: list[str] = []

    def heading(text: str, level: int = 3) -> None:
        if fmt == "md":
            out.append(f"{'#' * level} {text}\n")
        elif fmt == "html":
            out.append(f"<h{level}>{html.escape(text)}</h{level}>")
        else:
            out.append(text)
            out.append("-" * len(text))

    def para(text: str) -> None:
        out.append(f"<p>{html.escape(text)}</p>" if fmt == "html" else text + "\n")

    def table(headers: list[str], rows: list[list[str]], figures: bool = False) -> None:
        if fmt == "html":
            rows = [[html.escape(str(v)) for v in row] for row in rows]
            headers = [html.escape(h) for h in headers]
        # Figures align right so that their decimals line up; words and paths align left.
        align = ["left"] + ["right" if figures else "left"] * (len(headers) - 1)
        out.append(tabulate(rows, headers=headers, tablefmt=tablefmt, disable_numparse=True, colalign=align))
        out.append("")

    heading(f"Matrix run {data['run_id']}", 2)
    legend = f"median [95% interval] per cell; {MISSED} target missed"
    if changes is not None:
        legend += f"; change of the median against {baseline_label or 'the baseline'} (slower / faster / "
        legend += "no change / inconclusive, by the statistical comparison)"
    para(legend + ".")
    for tab in data["tables"]:
        unit = "MB" if tab["unit"] == "MB" else "s"
        target = f", target ≤ {tab['target']:g} {unit}" if tab["target"] is not None else ""
        heading(f"{tab['label']} ({tab['metric']}, {unit}{target})")
        table(tab["headers"], [[row["model"]] + [e["text"] for e in row["cells"]] for row in tab["rows"]], figures=True)

    if data["environments"]:
        heading("Environments (one fresh environment per torch version)")
        rows = []
        for env in data["environments"]:
            build = f"{env['build_s']:.1f} s" if env.get("build_s") is not None else "–"
            rows.append([env["torch"], env.get("status") or "–", build, env.get("python") or "–",
                         env.get("torch_installed") or "–", env.get("sentence_transformers") or "–",
                         _one_line(env.get("error") or "", 100)])
        table(["torch", "status", "build", "python", "torch installed", "sentence-transformers", "error"], rows)

    if data["failed"]:
        heading("Cells without figures")
        table(["cell", "why", "reason"], [[f["cell"], f["word"], _one_line(f["reason"], 100)] for f in data["failed"]])

    if where:
        heading("Reports")
        table(["", "path"], [[label, path] for label, path in where.items()])
    return "\n".join(out).rstrip() + "\n"


def _one_line(text: str, limit: int = 160) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --------------------------------------------------------------------------- baselines

def changes_against(baseline_cells: dict[str, dict], current_cells: dict[str, dict],
                    compare: Callable | None = None) -> tuple[Changes, bool]:
    """Each cell's change against the baseline's same cell, as short text; and whether
    the two come from different machines.

    ``compare`` is the comparison to use, ``harness.compare.compare_cells`` by default (the
    statistical verdict); any callable with its signature and result fits.
    """
    if compare is None:
        from harness.analysis.compare import compare_cells as compare
    comparison = compare(baseline_cells, current_cells, allow_cross_machine=True, fail_on=())
    changes: Changes = {}
    for verdict in comparison.verdicts:
        ratio = verdict.ratio
        if ratio is None or math.isnan(ratio):
            # Too few samples for the test: still show how far the medians moved.
            base, cur = verdict.baseline_median, verdict.current_median
            if base is None or cur is None or math.isnan(base) or math.isnan(cur) or not base:
                continue
            ratio = cur / base
        changes[(verdict.cell_id, verdict.metric)] = f"{(ratio - 1) * 100:+.1f}% {verdict.verdict}"
    return changes, bool(comparison.cross_machine)


def percent_changes_against(baseline_cells: dict[str, dict], current_cells: dict[str, dict]) -> Changes:
    """The plain change of medians, for reports that carry no samples to test."""
    from harness.analysis.compare import percent_changes

    changes: Changes = {}
    for cell_id, current in current_cells.items():
        base = baseline_cells.get(cell_id)
        if base is None:
            continue
        for change in percent_changes(current, base):
            changes[(cell_id, change.metric)] = f"{change.change * 100:+.1f}%"
    return changes
