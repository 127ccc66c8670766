"""The HTML report: one self-contained page per run, for people who would rather look.

Reads what the earlier stages wrote (a merged matrix report, a run folder, or one cell
report), the comparison against a baseline (:mod:`harness.analysis.compare`) and the history
(:mod:`harness.analysis.history`), and assembles one HTML file: inline CSS, inline SVG plots from
:mod:`harness.report.plots`, no script and no URL, so it opens offline, mails as one attachment and
prints. The tables are those of the console (:func:`harness.tables.render`, ``html``), so
the page and the terminal never disagree. What goes on the page, and why, is decided here;
how a plot is drawn is :mod:`harness.report.plots`'s job.

:func:`load_input` and :func:`headline` are shared with the ``summary`` verb, which writes
the same facts as a few Markdown lines.
"""

from __future__ import annotations

import html
import math
import os
from datetime import datetime, timezone
from pathlib import Path

from harness.errors import UserError
from harness.result import DEFAULT_TARGETS, METRICS, read_any, successful_samples

LEVEL_MARK = {"ok": "✓", "warn": "⚠", "info": "ℹ"}
MODE_ORDER = {"cold": 0, "warm": 1}
TOP_PACKAGES = 8

# Load stages in the order the probe times them; a stage shows only when some cell has it.
STAGES = [
    ("import torch", "import_torch_s"),
    ("import sentence-transformers", "import_st_s"),
    ("CUDA init", "cuda_init_s"),
    ("model init", "init_s"),
    ("model to device", "to_device_s"),
    ("first encode", "first_encode_s"),
]


# --------------------------------------------------------------------------- input

def load_input(path: str | os.PathLike) -> tuple[dict, str]:
    """A report to show, in the merged (matrix) shape, and what it was read from.

    ``path`` is a merged matrix report, a run folder (merged in memory, nothing written),
    or a single cell report (shown as a one-cell run).
    """
    path = Path(path)
    if path.is_dir():
        from harness.analysis.merge import merge_run

        report, _warnings = merge_run(path)
        return report, f"run folder {path}"
    if not path.exists():
        raise UserError(f"{path}: no such file or folder; give a merged report (reports/matrix-<run id>.json), "
                        f"a run folder (reports/runs/<run id>) or a cell report")
    data = read_any(path)  # refuses anything but a matrix or a cell report
    if data["kind"] == "matrix":
        return data, f"merged report {path}"
    cell_id = data["cell"]["id"]
    report = {"kind": "matrix", "run_id": cell_id, "created": data.get("finished") or data["started"],
              "harness": data.get("harness") or {}, "environments": {}, "cells": {cell_id: data}, "missing": []}
    return report, f"cell report {path}"


def baseline_for(spec: str | None, report: dict, root: str | os.PathLike) -> tuple[Path | None, str | None]:
    """The baseline file to compare with, and a note when there is none to use.

    ``auto`` with no baseline stored for this machine is not an error (a first CI run has
    none): the page and the summary say so. A named file that is missing is an error.
    """
    from harness.analysis import baseline as baselines

    if not spec:
        return None, None
    if spec != "auto":
        path = Path(spec)
        if not path.is_file():
            raise UserError(f"--baseline {spec}: no such report file")
        return path, None
    prints = machines(report)
    if len(prints) != 1:
        return None, (f"no baseline: the cells come from {len(prints)} machines; "
                      f"compare each machine with `python -m harness ci compare`")
    fingerprint = next(iter(prints))
    found = baselines.find_for(fingerprint, root)
    if found is None:
        return None, f"no baseline stored for this machine ({fingerprint}) under {root}"
    return found, None


def compare_with(baseline_path: Path, report: dict):
    """The statistical comparison of the report's cells with the baseline's."""
    from harness.analysis.compare import compare_cells
    from harness.result import read_cells

    return compare_cells(read_cells(baseline_path), report["cells"], allow_cross_machine=True,
                         baseline_label=str(baseline_path), current_label=str(report.get("run_id")))


# --------------------------------------------------------------------------- facts

def machines(report: dict) -> dict[str, dict]:
    """Machine description by fingerprint, over every cell that recorded one."""
    out: dict[str, dict] = {}
    for cell in report["cells"].values():
        machine = cell.get("machine") or {}
        if machine.get("fingerprint"):
            out.setdefault(machine["fingerprint"], machine)
    return out


def machine_text(machine: dict) -> str:
    parts = [machine.get("cpu") or "unknown CPU"]
    if machine.get("cores"):
        parts.append(f"{machine['cores']} cores")
    if machine.get("memory_gb"):
        parts.append(f"{machine['memory_gb']:g} GB")
    parts.append(machine.get("os_release") or machine.get("os") or "")
    return ", ".join(p for p in parts if p) + f" (fingerprint {machine.get('fingerprint')})"


def _version_key(text: str | None):
    from packaging.version import InvalidVersion, Version

    try:
        return (0, Version(text or ""))
    except InvalidVersion:
        return (1, text or "")


def ordered_cells(report: dict) -> list[tuple[str, dict]]:
    """Cells grouped by model, then mode, then torch version: within a group the torch
    versions sit next to each other, which is the comparison a reader wants first."""
    def key(item):
        block = item[1]["cell"]
        return (block["model"], MODE_ORDER.get(block["mode"], 9), _version_key(block.get("torch")), block["device"])
    return sorted(report["cells"].items(), key=key)


def labels_for(cells: list[dict]) -> list[str]:
    """Short labels that name only what differs between the cells shown."""
    blocks = [c["cell"] for c in cells]
    vary = {key: len({b.get(key) for b in blocks}) > 1 for key in ("model", "torch", "mode", "device")}
    out = []
    for b in blocks:
        parts = []
        if vary["model"]:
            parts.append(b["model"])
        parts.append(f"torch {b.get('torch') or '?'}")
        parts.append(b["mode"])
        if vary["device"]:
            parts.append(b["device"])
        out.append(" · ".join(parts))
    return out


def _median(cell: dict, metric: str) -> float | None:
    entry = (cell.get("stats") or {}).get(metric)
    return entry["median"] if entry else None


def _target(cells: list[dict], metric: str) -> float | None:
    """The target shown as a line: the cells' own, when they share one."""
    values = {(c.get("targets") or {}).get(metric) for c in cells} - {None}
    if len(values) == 1:
        return values.pop()
    return None if values else DEFAULT_TARGETS.get(metric)


def cold_status(report: dict) -> dict:
    """Whether every counted cold sample started from a verified-cold page cache."""
    cold = [c for c in report["cells"].values() if c["cell"]["mode"] == "cold" and c.get("status") != "failed"]
    samples = [s for c in cold for s in successful_samples(c)]
    flagged = [s for s in samples if s.get("cache_flagged")]
    unverified = [c for c in cold if not (c.get("cold_cache") or {}).get("verified")]
    notes = sorted({(c.get("cold_cache") or {}).get("note") or "residency not checked" for c in unverified})
    return {"cells": len(cold), "samples": len(samples), "flagged": len(flagged),
            "verified": bool(cold) and not flagged and not unverified, "notes": notes}


def headline(report: dict) -> dict:
    """The facts at the top of the page and of the CI summary."""
    cells = report["cells"]
    complete = [c for c in cells.values() if c.get("status") == "complete"]
    failed = [{"cell": cid, "reason": (c.get("failure") or {}).get("reason") or c.get("status")}
              for cid, c in cells.items() if c.get("status") != "complete"]
    failed += [{"cell": m.get("id"), "reason": "not run: the run stopped before this cell"}
               for m in report.get("missing") or []]
    starts = sorted(c["started"] for c in cells.values() if c.get("started"))
    ends = sorted(c["finished"] for c in cells.values() if c.get("finished"))
    missed = [cid for cid, c in cells.items()
              if ((c.get("target_results") or {}).get("total_s") or {}).get("met") is False]
    return {
        "run_id": report.get("run_id"),
        "created": report.get("created"),
        "started": starts[0] if starts else None,
        "finished": ends[-1] if ends else None,
        "machines": machines(report),
        "cells": len(cells) + len(report.get("missing") or []),
        "complete": len(complete),
        "samples": sum(len(successful_samples(c)) for c in cells.values()),
        "failed_samples": sum(1 for c in cells.values() for s in c.get("samples", []) if not s.get("ok")),
        "failed": failed,
        "cold": cold_status(report),
        "total_target_missed": missed,
    }


def _when(stamp: str | None) -> str:
    if not stamp:
        return "–"
    try:
        moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return stamp
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


# --------------------------------------------------------------------------- page parts

def _e(text) -> str:
    return html.escape(str(text), quote=True)


def _figure(svg: str, caption: str) -> str:
    return f'<figure>{svg}<figcaption>{caption}</figcaption></figure>'


def _headline_html(facts: dict, source: str) -> str:
    machines_ = facts["machines"]
    machine = ("<br>".join(_e(machine_text(m)) for m in machines_.values()) if machines_ else "not recorded")
    cold = facts["cold"]
    if not cold["cells"]:
        cold_html, cold_class = "no cold cells in this run", "neutral"
    elif cold["verified"]:
        cold_html, cold_class = f"✓ yes: all {cold['samples']} cold samples verified cold", "good"
    else:
        why = "; ".join(cold["notes"])
        cold_html = (f"✗ NO: {cold['flagged']} of {cold['samples']} cold samples started with files cached. "
                     f"<span class=\"small\">{_e(why)}</span>")
        cold_class = "bad"
    failed = facts["failed"]
    failed_html = "none" if not failed else "<br>".join(
        f"<b>{_e(f['cell'])}</b>: {_e(_one_line(f['reason']))}" for f in failed)
    missed = facts["total_target_missed"]
    target_html = ("every cell meets its total-load target" if not missed else
                   f"{len(missed)} of {facts['complete']} cells miss the total-load target")
    dates = _when(facts["started"])
    end = _when(facts["finished"]) if facts["finished"] else dates
    if end != dates:
        # Same day: the end's time only ("2026-11-24 09:09–09:41 UTC").
        same_day = end[:10] == dates[:10]
        dates = (dates[:-4] + "–" + end[11:]) if same_day else f"{dates} → {end}"
    boxes = [
        ("Machine", machine, "neutral"),
        ("Date", _e(dates), "neutral"),
        ("Cells", f"{facts['complete']} of {facts['cells']} complete", "good" if not failed else "bad"),
        ("Samples", f"{facts['samples']} counted" + (f", {facts['failed_samples']} failed" if facts["failed_samples"]
                                                    else ""), "neutral"),
        ("Failed cells", failed_html, "good" if not failed else "bad"),
        ("Cold cache", cold_html, cold_class),
        ("Targets", target_html, "good" if not missed else "warn"),
    ]
    items = "".join(f'<div class="fact {cls}"><div class="key">{key}</div><div class="val">{val}</div></div>'
                    for key, val, cls in boxes)
    return (f'<section id="headline"><div class="facts">{items}</div>'
            f'<p class="small">Read from {_e(source)}.</p></section>')


def _stages_section(cells: list[dict], labels: list[str]) -> str:
    from harness.report import plots

    stages: dict[str, list[float | None]] = {}
    for name, metric in STAGES:
        values = [_median(c, metric) for c in cells]
        if any(v is not None for v in values):
            stages[name] = values
    totals = [_median(c, "total_s") for c in cells]
    target = _target(cells, "total_s")
    svg = plots.stage_bars(labels, stages, target, totals)
    caption = ("Each bar is one cell; its segments are the median of each stage, in the order they run, and the "
               "figure at its end is the median total load time (import + init + first encode; medians of parts "
               "need not add up exactly to the median of the whole). The dashed line is the total-load target. "
               "Cells of one model and mode sit together, so torch versions compare bar against bar.")
    return f'<section id="stages"><h2>Where the load time goes</h2>{_figure(svg, caption)}</section>'


def _spread_section(cells: list[dict], labels: list[str]) -> str:
    from harness.report import plots
    from harness.result import metric_values

    panels, targets = {}, {}
    for metric in ("total_s", "process_wall_s"):
        title = f"{METRICS[metric].label} ({metric})"
        panels[title] = [metric_values(c, metric) for c in cells]
        targets[title] = _target(cells, metric) if metric in DEFAULT_TARGETS else None
    svg = plots.spread(labels, panels, targets)
    caption = ("Every counted sample is a dot (a fresh process each); the box spans the middle half of the "
               "samples, its thick line is the median and its whiskers reach the furthest sample within 1.5 box "
               "lengths. Left: the total load time the probe measures; right: the process wall time the parent "
               "measures, from spawn to exit, interpreter start-up and shutdown included. A wide box or a lone "
               "far dot means a noisy machine: add runs before trusting a small difference.")
    return f'<section id="spread"><h2>Spread: every sample</h2>{_figure(svg, caption)}</section>'


def _imports_section(cells: list[dict]) -> str:
    from harness.report import plots

    by_torch: dict[str, list[dict]] = {}
    for c in cells:
        if (c.get("import_attribution") or {}).get("packages"):
            by_torch.setdefault(c["cell"].get("torch") or "?", []).append(c)
    if not by_torch:
        return ('<section id="imports"><h2>Import time by package</h2><p class="note">No cell carries an import '
                'attribution (profiled with --no-import-attribution).</p></section>')
    groups = {}
    for torch in sorted(by_torch, key=_version_key):
        chosen = [c for c in by_torch[torch] if c["cell"]["mode"] == "warm"] or by_torch[torch]
        # The same packages load for every model; average over the cells to steady the figure.
        totals: dict[str, float] = {}
        for c in chosen:
            for p in c["import_attribution"]["packages"]:
                totals[p["package"]] = totals.get(p["package"], 0.0) + p["self_s"] / len(chosen)
        top = sorted(totals.items(), key=lambda kv: -kv[1])[:TOP_PACKAGES]
        modes = sorted({c["cell"]["mode"] for c in chosen})
        groups[f"torch {torch} ({'/'.join(modes)}, {len(chosen)} cell{'s' if len(chosen) > 1 else ''})"] = top
    svg = plots.import_attribution(groups)
    caption = (f"The {TOP_PACKAGES} packages that cost most import time, per torch version: self time from one "
               "extra, untimed run under <code>python -X importtime</code>, grouped by top-level package (warm "
               "cells where there are any; averaged over the cells of that version). A package you never call "
               "(scipy, sympy, sklearn) is a candidate for a lazy import.")
    return f'<section id="imports"><h2>Import time by package</h2>{_figure(svg, caption)}</section>'


def _memory_section(cells: list[dict], labels: list[str]) -> str:
    from harness.report import plots

    svg = plots.memory(labels, [_median(c, "memory_mb") for c in cells], [_median(c, "peak_rss_mb") for c in cells],
                       _target(cells, "memory_mb"))
    caption = ("Median growth of the resident set from the probe's start to the first embedding (what the memory "
               "target is about, dashed), and median peak RSS of the process (getrusage).")
    return f'<section id="memory"><h2>Memory</h2>{_figure(svg, caption)}</section>'


def _comparison_section(comparison, baseline_path, note: str | None, short: dict[str, str]) -> str:
    if comparison is None:
        text = note or "No baseline given (<code>--baseline FILE|auto</code>)."
        return f'<section id="comparison"><h2>Against a baseline</h2><p class="note">{_e(text) if note else text}</p></section>'
    from tabulate import tabulate

    from harness.report import plots
    from harness.analysis.compare import table_rows

    c = comparison
    regressions = c.regressions()
    if regressions:
        banner = (f'<p class="banner bad">✗ {len(regressions)} regression{"s" if len(regressions) > 1 else ""} on '
                  f'the gated metrics: ' + ", ".join(f"{_e(v.cell_id)} {_e(v.metric)} {v.change * 100:+.1f}%"
                                                     for v in regressions) + "</p>")
    else:
        banner = (f'<p class="banner good">✓ no regression on the gated metrics '
                  f'({_e(", ".join(c.gated_metrics) or "none")})</p>')
    if c.cross_machine:
        banner += ('<p class="banner warn">⚠ The baseline comes from another machine: differences may be the '
                   'machines\', not the code\'s.</p>')
    # The rows the console's comparison table prints, verdicts coloured here.
    headers = ["cell", "metric", "baseline", "current", "change", "95% CI", "p", "n b/c", "detects ≥", "verdict"]
    rows = []
    for verdict, row in zip(c.verdicts, table_rows(c, "text", False)):
        cells = [_e(v) for v in row]
        cells[-1] = f'<span class="verdict {verdict.verdict.replace(" ", "-")}">{cells[-1]}</span>'
        rows.append(cells)
    table = tabulate(rows, headers=headers, tablefmt="unsafehtml", disable_numparse=True) if rows else \
        '<p class="note">No cell is present in both reports with samples to compare.</p>'
    extra = []
    for title, ids in (("Missing in this run", c.missing_in_current), ("Not in the baseline", c.missing_in_baseline)):
        if ids:
            extra.append(f"<p><b>{title}:</b> {_e(', '.join(ids))}</p>")
    if c.failed:
        extra.append("<p><b>Failed cells, not compared:</b> " +
                     "; ".join(f"{_e(k)}: {_e(v)}" for k, v in sorted(c.failed.items())) + "</p>")
    drawable = [v for v in c.verdicts if all(math.isfinite(x) for x in (v.ratio, v.ci_low, v.ci_high))]
    figure = ""
    if drawable:
        labels = [f"{short.get(v.cell_id, v.cell_id)} · {v.metric}" for v in drawable]
        svg = plots.ratio_intervals(labels, [v.ratio for v in drawable], [v.ci_low for v in drawable],
                                    [v.ci_high for v in drawable], [v.verdict for v in drawable], c.threshold)
        figure = _figure(svg, "Each row is one metric of one cell: the bar runs from no change to the change of the "
                              "median, the whiskers are its bootstrap 95% interval, the grey band is the threshold. "
                              "A row is called slower or faster only when the interval clears no change, the change "
                              "exceeds the threshold and the rank test agrees; a wide interval says: add runs.")
    why = [v for v in c.verdicts if v.verdict != "no change"]
    why_html = ""
    if why:
        why_html = ("<details><summary>Why each verdict that is not “no change”</summary><ul>" +
                    "".join(f"<li><b>{_e(v.cell_id)} {_e(v.metric)}</b>: {_e(v.verdict)}: {_e(v.reason)}</li>"
                            for v in why) + "</ul></details>")
    legend = (f"<p class=\"small\">Baseline {_e(baseline_path)}; threshold ±{c.threshold * 100:g}%, alpha "
              f"{c.alpha:g}; * gated metrics ({_e(', '.join(c.gated_metrics) or 'none')}): slower there fails "
              f"<code>compare</code>.</p>")
    return (f'<section id="comparison"><h2>Against the baseline</h2>{banner}{legend}'
            f'<div class="scroll">{table}</div>{"".join(extra)}{figure}{why_html}</section>')


def _trend_section(trends: dict | None, cell_ids: list[str], note: str | None) -> str:
    shown = {cid: t for cid, t in (trends or {}).items() if cid in cell_ids and len(t["points"]) >= 2}
    if not shown:
        text = note or "Fewer than two recorded runs of these cells: a trend needs two."
        return f'<section id="trend"><h2>Trend over runs</h2><p class="note">{_e(text)}</p></section>'
    from harness.report import plots

    series = {cid: ([p[0] for p in t["points"]], [p[2] for p in t["points"]], list(t["steps"]))
              for cid, t in sorted(shown.items(), key=lambda kv: cell_ids.index(kv[0]))}
    svg = plots.trends(series)
    steps = sum(len(t["steps"]) for t in shown.values())
    caption = ("Median total load time of each merged run, oldest to newest, per cell. A red ring and dotted line "
               "mark a step change: the first run of a new level, found by a robust piecewise fit; a step needs "
               "two runs on the new level, so one wild run is never a step. "
               + (f"{steps} step{'s' if steps != 1 else ''} detected." if steps else "No step detected."))
    return f'<section id="trend"><h2>Trend over runs</h2>{_figure(svg, caption)}</section>'


def _recommendations_section(ordered: list[tuple[str, dict]]) -> str:
    cards = []
    for cell_id, cell in ordered:
        recs = cell.get("recommendations") or []
        if not recs:
            continue
        items = "".join(f'<li class="{_e(r["level"])}"><span class="mark">{LEVEL_MARK.get(r["level"], "•")}</span>'
                        f'{_e(r["text"])}</li>' for r in recs)
        cards.append(f'<div class="card"><h3>{_e(cell_id)}</h3><ul class="recs">{items}</ul></div>')
    body = "".join(cards) or '<p class="note">No recommendations (no cell has figures).</p>'
    return f'<section id="recommendations"><h2>Recommendations</h2>{body}</section>'


def _environment_section(report: dict, ordered: list[tuple[str, dict]]) -> str:
    # Packages per torch version: the environment as built (merge records it), else as
    # each cell's probe saw it; cells of one torch version share one environment.
    packages: dict[str, dict] = {}
    python: dict[str, str] = {}
    for torch, env in (report.get("environments") or {}).items():
        if env.get("packages"):
            packages[torch] = dict(env["packages"])
    for _, cell in ordered:
        torch = cell["cell"].get("torch") or "?"
        env = cell.get("environment") or {}
        for name, version in (env.get("packages") or {}).items():
            packages.setdefault(torch, {}).setdefault(name, version)
        if env.get("python"):
            python.setdefault(torch, env["python"])
    versions = sorted(packages, key=_version_key)
    names = sorted({n for p in packages.values() for n in p}, key=str.lower)
    from tabulate import tabulate

    rows = [[_e(n)] + [_e(packages[v].get(n) or "–") for v in versions] for n in names]
    if python:
        rows.insert(0, ["<i>python</i>"] + [_e(python.get(v, "–")) for v in versions])
    env_table = (tabulate(rows, headers=["package"] + [f"torch {_e(v)}" for v in versions], tablefmt="unsafehtml")
                 if versions else '<p class="note">No environment recorded.</p>')
    machine_tables = []
    for fingerprint, machine in machines(report).items():
        rows = [[_e(k), _e(v)] for k, v in machine.items()]
        machine_tables.append(f"<h3>Machine {_e(fingerprint)}</h3>" +
                              tabulate(rows, tablefmt="unsafehtml"))
    return ('<section id="environment"><details><summary>Environment and machine</summary>'
            f'<h3>Resolved packages per torch version</h3><div class="scroll">{env_table}</div>'
            f'{"".join(machine_tables)}</details></section>')


def _console_tables(report: dict) -> str:
    """The console's tables (one source: harness.report.tables), less their title: the page has one."""
    import re

    from harness.report import tables

    return re.sub(r"<h2>.*?</h2>", "", tables.render(report, "html"), count=1, flags=re.S)


def _one_line(text: str, limit: int = 180) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --------------------------------------------------------------------------- page

CSS = """
:root { --good:#2E8B57; --bad:#C0392B; --warn:#B8860B; --muted:#666; --line:#e3e3e3; --tint:#f6f8fb; }
* { box-sizing: border-box; }
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", "Helvetica Neue", Arial,
       sans-serif; color:#1d1d1f; margin:0; background:#fff; }
main { max-width: 1240px; margin: 0 auto; padding: 24px 28px 48px; }
h1 { font-size: 26px; margin: 0 0 2px; }
h2 { font-size: 20px; margin: 36px 0 10px; padding-bottom: 4px; border-bottom: 2px solid var(--line); }
h3 { font-size: 16px; margin: 20px 0 8px; }
.sub { color: var(--muted); margin: 0 0 18px; }
.small { font-size: 13px; color: var(--muted); }
.note { color: var(--muted); font-style: italic; }
code { font-size: 13px; background: var(--tint); padding: 1px 4px; border-radius: 3px; }
.facts { display: grid; grid-template-columns: repeat(auto-fit, minmax(260px, 1fr)); gap: 10px; }
.fact { border: 1px solid var(--line); border-left: 5px solid #9aa7b8; border-radius: 6px; padding: 8px 12px;
        background: var(--tint); }
.fact .key { font-size: 12px; text-transform: uppercase; letter-spacing: .05em; color: var(--muted); }
.fact .val { font-size: 15px; }
.fact.good { border-left-color: var(--good); } .fact.bad { border-left-color: var(--bad); }
.fact.warn { border-left-color: var(--warn); }
.fact.bad .val b { color: var(--bad); }
figure { margin: 8px 0 18px; }
figcaption { font-size: 13.5px; color: #444; max-width: 980px; margin-top: 4px; }
svg.plot { display: block; width: 100%; height: auto; }
table { border-collapse: collapse; margin: 6px 0 14px; font-size: 14px; font-variant-numeric: tabular-nums; }
th, td { padding: 4px 10px; border-bottom: 1px solid var(--line); text-align: left; white-space: nowrap; }
th { background: var(--tint); font-weight: 600; }
tbody tr:nth-child(even) { background: #fbfbfc; }
.scroll { overflow-x: auto; }
.verdict { font-weight: 600; padding: 1px 6px; border-radius: 4px; }
.verdict.slower { color: #fff; background: #C0392B; } .verdict.faster { color: #fff; background: #2E8B57; }
.verdict.no-change { color: #444; background: #e6e8ea; } .verdict.inconclusive { color: #3d2f00; background: #F4D35E; }
.banner { padding: 8px 12px; border-radius: 6px; font-weight: 600; }
.banner.good { background: #e7f4ec; color: #1e5e3a; } .banner.bad { background: #fbe9e7; color: #8e2a1f; }
.banner.warn { background: #fdf5dc; color: #6b4f00; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 4px 14px 8px; margin-bottom: 10px; }
.card h3 { margin: 8px 0 4px; font-size: 15px; }
ul.recs { list-style: none; padding: 0; margin: 0; }
ul.recs li { padding: 3px 0 3px 24px; position: relative; }
ul.recs .mark { position: absolute; left: 2px; font-weight: 700; }
ul.recs li.ok .mark { color: var(--good); } ul.recs li.warn .mark { color: var(--warn); }
ul.recs li.info .mark { color: #2c6fbb; }
details > summary { cursor: pointer; font-weight: 600; font-size: 16px; margin: 6px 0; }
#tables h2 { font-size: 17px; border: 0; margin: 10px 0 4px; }
#tables h3 { font-size: 15px; }
footer { margin-top: 40px; font-size: 12.5px; color: var(--muted); }
@page { margin: 12mm; }
@media print {
  body { font-size: 10pt; }
  main { max-width: none; padding: 0; }
  h2 { break-after: avoid; margin-top: 20px; }
  figure, .card, .fact, tr { break-inside: avoid; }
  .scroll { overflow: visible; }
  table { font-size: 8pt; }
  th, td { padding: 2px 5px; }
  td:first-child { white-space: normal; overflow-wrap: anywhere; }
  .verdict, .banner, .fact { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
}
"""


def render_page(report: dict, source: str, *, comparison=None, baseline_path=None, baseline_note: str | None = None,
                trends: dict | None = None, history_note: str | None = None) -> str:
    """The whole page as one HTML string."""
    from harness import __version__

    facts = headline(report)
    ordered = ordered_cells(report)
    measured = [c for _, c in ordered if c.get("stats")]
    labels = labels_for(measured)
    parts = [_headline_html(facts, source)]
    if measured:
        parts += [_stages_section(measured, labels), _spread_section(measured, labels), _imports_section(measured),
                  _memory_section(measured, labels)]
    else:
        parts.append('<section id="stages"><h2>Where the load time goes</h2><p class="note">No cell produced '
                     'figures: nothing to plot. The failed cells above say why.</p></section>')
    short = {c["cell"]["id"]: label for c, label in zip(measured, labels)}
    parts.append(_comparison_section(comparison, baseline_path, baseline_note, short))
    parts.append(_trend_section(trends, [cid for cid, _ in ordered], history_note))
    parts.append(f'<section id="tables"><h2>Medians and their 95% intervals</h2>'
                 f'<div class="scroll">{_console_tables(report)}</div></section>')
    parts.append(_recommendations_section(ordered))
    parts.append(_environment_section(report, ordered))
    title = f"Load-time report: {report.get('run_id')}"
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    commit = (report.get("harness") or {}).get("commit")
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>{_e(title)}</title><style>{CSS}</style></head><body><main>"
        f"<h1>{_e(title)}</h1><p class=\"sub\">embedding-load-harness · how long the model takes to load, where the "
        f"time goes, and whether it changed</p>"
        + "".join(parts) +
        f"<footer>Generated {generated} by embedding-load-harness {_e(__version__)}"
        f"{' (commit ' + _e(commit[:12]) + ')' if commit else ''}. Self-contained: no scripts, fonts or "
        "images are fetched.</footer></main></body></html>\n"
    )


def write_page(path: str | os.PathLike, text: str) -> Path:
    """Write the page whole or not at all."""
    import tempfile

    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would hide the page from a web server
        os.replace(tmp, path)
    except OSError as exc:
        raise UserError(f"{path}: cannot write the HTML report ({exc.strerror or exc})") from None
    return path
