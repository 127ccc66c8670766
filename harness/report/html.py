"""The HTML report: one self-contained page per run, for people who would rather look.

Reads a matrix report (:mod:`harness.report.facts` turns a run folder or a cell report into
one), the comparison against a baseline (:mod:`harness.analysis.compare`) and the history
(:mod:`harness.analysis.history`), decides what goes on the page, and renders it with
jinja2 from ``templates/page.html.j2``: inline CSS (``templates/report.css``), inline SVG
plots from :mod:`harness.report.plots`, no script and no URL, so it opens offline, mails as
one attachment and prints. The tables are the console's (:func:`harness.report.tables.tables_of`),
so the page and the terminal never disagree.

Escaping is jinja2's autoescape, for every value the template writes. The one exception is
the plots' SVG, inserted with ``|safe`` on purpose: it is markup matplotlib wrote from plain
data (its SVG writer escapes every label it draws) and :mod:`harness.report.plots` only
strips its prologue, so escaping it again would show the SVG source instead of the plot.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import jinja2

from harness.analysis.paired import describe
from harness.report import tables
from harness.report.banner import MARKS, verdict_lines
from harness.report.comparison import STORED_NOTE
from harness.report.facts import (
    Headline,
    headline,
    machine_fields,
    machine_text,
    ordered_cells,
    within_run,
)
from harness.report.format import duration, one_line, percent, version_key, when
from harness.result import DEFAULT_TARGETS, METRICS, CellReport, MatrixReport, write_atomic

LEVEL_MARK = {"ok": "✓", "warn": "⚠", "info": "ℹ"}
TOP_PACKAGES = 8

# Load stages in the order the probe times them; a stage shows only when some cell has it.
STAGES = [
    ("import torch", "import_torch_s"),
    ("import sentence-transformers", "import_st_s"),
    ("import the application", "import_app_s"),
    ("CUDA init", "cuda_init_s"),
    ("model init", "init_s"),
    ("model to device", "to_device_s"),
    ("first encode", "first_encode_s"),
]

_ENVIRONMENT = jinja2.Environment(
    loader=jinja2.PackageLoader("harness.report", "templates"),
    autoescape=True,  # every template value is text unless marked |safe (only the plots' SVG is)
    undefined=jinja2.StrictUndefined,  # a name the page does not pass is a bug, not an empty string
    trim_blocks=True,
    lstrip_blocks=True,
)
_ENVIRONMENT.filters.update(duration=duration, percent=percent, one_line=one_line, when=when)


# --------------------------------------------------------------------------- cells


def labels_for(cells: list[CellReport]) -> list[str]:
    """Short labels that name only what differs between the cells shown."""
    infos = [c.cell for c in cells]
    vary = {key: len({getattr(i, key) for i in infos}) > 1 for key in ("model", "torch", "mode", "device")}
    out = []
    for info in infos:
        parts = [info.model] if vary["model"] else []
        parts += [f"torch {info.torch or '?'}", info.mode]
        if vary["device"]:
            parts.append(info.device)
        out.append(one_line(" · ".join(parts), 80))
    return out


def _target(cells: list[CellReport], metric: str) -> float | None:
    """The target shown as a line: the cells' own, when they share one."""
    values = {c.targets.get(metric) for c in cells} - {None}
    if len(values) == 1:
        return values.pop()
    return None if values else DEFAULT_TARGETS.get(metric)


def date_range(facts: Headline) -> str:
    """When the cells ran: ``2026-11-24 09:09–09:41 UTC`` on one day."""
    start = when(facts.started)
    end = when(facts.finished) if facts.finished else start
    if end == start:
        return start
    return f"{start[:-4]}–{end[11:]}" if end[:10] == start[:10] else f"{start} → {end}"


# --------------------------------------------------------------------------- plots


def _plots(cells: list[CellReport], labels: list[str]) -> dict[str, str | None]:
    """The SVG of each plot of the measured cells (imports: None when no cell has them)."""
    from harness.report import plots

    stages = {}
    for name, metric in STAGES:
        values = [c.median(metric) for c in cells]
        if any(v is not None for v in values):
            stages[name] = values
    panels, targets = {}, {}
    for metric in ("total_s", "process_wall_s"):
        title = f"{METRICS[metric].label} ({metric})"
        panels[title] = [c.values(metric) for c in cells]
        targets[title] = _target(cells, metric) if metric in DEFAULT_TARGETS else None
    groups = _import_groups(cells)
    return {
        "stages": plots.stage_bars(
            labels, stages, _target(cells, "total_s"), [c.median("total_s") for c in cells]
        ),
        "spread": plots.spread(labels, panels, targets),
        "imports": plots.import_attribution(groups) if groups else None,
        "memory": plots.memory(
            labels,
            [c.median("memory_mb") for c in cells],
            [c.median("peak_rss_mb") for c in cells],
            _target(cells, "memory_mb"),
        ),
    }


def _import_groups(cells: list[CellReport]) -> dict[str, list[tuple[str, float]]]:
    """Per torch version and mode, the packages that cost most import time, averaged over
    the cells (the same packages load for every model). A cold cell's attribution comes
    from its warm-up, which ran cold: the cold import cost, shown beside the warm one."""
    by_group: dict[tuple[str, str], list[CellReport]] = {}
    for c in cells:
        if c.import_attribution and c.import_attribution.packages:
            by_group.setdefault((c.cell.torch or "?", c.cell.mode), []).append(c)
    groups = {}
    for torch, mode in sorted(by_group, key=lambda key: (version_key(key[0]), key[1])):
        chosen = by_group[torch, mode]
        totals: dict[str, float] = {}
        for c in chosen:
            for p in c.import_attribution.packages if c.import_attribution else ():
                totals[p.package] = totals.get(p.package, 0.0) + p.self_s / len(chosen)
        top = sorted(totals.items(), key=lambda kv: -kv[1])[:TOP_PACKAGES]
        label = f"torch {one_line(torch, 40)} {mode} ({len(chosen)} cell{'s' if len(chosen) > 1 else ''})"
        groups[label] = top
    return groups


# --------------------------------------------------------------------------- comparison


@dataclass(frozen=True)
class ComparisonView:
    """What the page shows of a comparison: its rows as the console prints them, and the plot."""

    comparison: object  # harness.analysis.compare.Comparison
    headers: list[str]
    rows: list[tuple[str, list[str]]]  # (verdict, cells of the row)
    svg: str | None
    note: str = ""  # what the change columns are


def _comparison(comparison, short: dict[str, str], **plot) -> ComparisonView | None:
    """The view of a comparison against a baseline, or (with the plot's ``plot_id``, ``xlabel``
    and ``title``) of the paired comparison within the run."""
    if comparison is None:
        return None
    from harness.report import plots
    from harness.report.comparison import change_note, headers_of, table_rows

    rows = [
        (v.verdict, row)
        for v, row in zip(comparison.verdicts, table_rows(comparison, "text", False, wide=False))
    ]
    drawable = [
        v for v in comparison.verdicts if all(math.isfinite(x) for x in (v.ratio, v.ci_low, v.ci_high))
    ]
    svg = None
    if drawable:
        labels = [one_line(f"{short.get(v.cell_id, v.cell_id)} · {v.metric}", 100) for v in drawable]
        svg = plots.ratio_intervals(
            labels,
            [v.ratio for v in drawable],
            [v.ci_low for v in drawable],
            [v.ci_high for v in drawable],
            [v.verdict for v in drawable],
            comparison.threshold,
            kinds=[METRICS[v.metric].kind if v.metric in METRICS else "time" for v in drawable],
            **plot,
        )
    return ComparisonView(
        comparison=comparison,
        headers=headers_of(comparison, wide=False),
        rows=rows,
        svg=svg,
        note=change_note(comparison),
    )


@dataclass(frozen=True)
class ReferenceView:
    """A reference run on the page: per environment what it was compared against, each
    current cell's paired verdict against its rebuilt baseline environment (with the
    packages that differ beside a slower one), and the A/A check where nothing changed."""

    result: object  # harness.analysis.reference.ReferenceComparison
    environments: list[str]
    paired: ComparisonView | None
    aa: ComparisonView | None
    suspects: list[tuple[str, str]]  # (cell and metric, the versions that differ)


def _reference(result, short: dict[str, str]) -> ReferenceView | None:
    if result is None:
        return None
    from harness.report.reference import environment_line

    plot = {
        "xlabel": "change against the same cell in the baseline environment, same rounds (95% t-interval)",
        "title": "Paired change against the rebuilt baseline environment",
    }
    return ReferenceView(
        result=result,
        environments=[environment_line(env) for env in result.envs],
        paired=_comparison(result.paired, short, plot_id="plot-reference", **plot)
        if result.paired.verdicts
        else None,
        aa=_comparison(result.aa, short, plot_id="plot-reference-aa", **plot) if result.aa.verdicts else None,
        suspects=[
            (f"{v.cell_id} {v.metric} {v.word}", ", ".join(c.text for c in changes))
            for v, changes in result.slower_suspects()
        ],
    )


# --------------------------------------------------------------------------- trend


@dataclass(frozen=True)
class TrendView:
    svg: str
    steps: int


def _trend(trends: dict | None, cell_ids: list[str]) -> TrendView | None:
    """The trend plot of the cells shown, from :func:`harness.analysis.history.trends`."""
    shown = {cid: t for cid, t in (trends or {}).items() if cid in cell_ids and len(t["points"]) >= 2}
    if not shown:
        return None
    from harness.report import plots

    series = {
        one_line(cid, 100): ([p[0] for p in t["points"]], [p[2] for p in t["points"]], list(t["steps"]))
        for cid, t in sorted(shown.items(), key=lambda kv: cell_ids.index(kv[0]))
    }
    return TrendView(svg=plots.trends(series), steps=sum(len(t["steps"]) for t in shown.values()))


# --------------------------------------------------------------------------- environment


@dataclass(frozen=True)
class EnvironmentView:
    versions: list[str]  # torch versions, in order
    packages: dict[str, dict[str, str | None]]  # torch version -> package -> version
    names: list[str]  # every package, sorted
    python: dict[str, str]  # torch version -> Python version
    # The probe's variables that can change a load (Environment.variables), one row per
    # distinct set: (the cells that ran with it, whether they inherited everything, the set).
    variables: list[tuple[list[str], bool, dict[str, str]]] = field(default_factory=list)


def _environment(report: MatrixReport, cells: list[CellReport]) -> EnvironmentView:
    # Packages per torch version: the environment as built (merge records it), else as
    # each cell's probe saw it; cells of one torch version share one environment.
    packages: dict[str, dict[str, str | None]] = {}
    python: dict[str, str] = {}
    variables: dict[tuple, tuple[list[str], bool, dict[str, str]]] = {}
    for cell in cells:
        if cell.environment is not None and cell.environment.inherit_env is not None:
            found = cell.environment.variables
            key = (bool(cell.environment.inherit_env), tuple(sorted(found.items())))
            variables.setdefault(key, ([], key[0], dict(found)))[0].append(cell.id)
    for torch, env in report.environments.items():
        if env.packages:
            packages[torch] = dict(env.packages)
    for cell in cells:
        torch = cell.cell.torch or "?"
        environment = cell.environment
        if environment is None:
            continue
        for name, version in environment.packages.items():
            packages.setdefault(torch, {}).setdefault(name, version)
        python.setdefault(torch, environment.python)
    return EnvironmentView(
        versions=sorted(packages, key=version_key),
        packages=packages,
        names=sorted({n for p in packages.values() for n in p}, key=str.lower),
        python=python,
        variables=list(variables.values()),
    )


# --------------------------------------------------------------------------- page


def contents(*, within: bool, reference: bool, comparison: bool, plots: bool) -> list[tuple[str, str]]:
    """The page's sections in their order, (id, name): the verdicts and what they rest on
    first, then the descriptive charts, then the tables and the environment."""
    out = [("verdicts", "Verdicts"), ("headline", "The run")]
    out += [("within", "Within the run")] if within else []
    out += [("reference", "Against the baseline environment")] if reference else []
    out += [("comparison", "Against the baseline")] if comparison else []
    out += [("stages", "Where the load time goes")]
    out += (
        [("spread", "Spread"), ("imports", "Import time by package"), ("memory", "Memory")] if plots else []
    )
    out += [] if comparison else [("comparison", "Against a baseline")]
    out += [
        ("trend", "Trend"),
        ("tables", "Medians"),
        ("recommendations", "Recommendations"),
        ("environment", "Environment and machine"),
    ]
    return out


def render_page(
    report: MatrixReport,
    source: str,
    *,
    comparison=None,
    baseline_path=None,
    baseline_note: str | None = None,
    trends: dict | None = None,
    history_note: str | None = None,
    reference=None,
) -> str:
    """The whole page as one HTML string; ``reference``: a reference run's
    ReferenceComparison (harness.analysis.reference)."""
    from harness import __version__

    facts = headline(report)
    ordered = ordered_cells(report)
    measured = [c for c in ordered if c.stats]
    labels = labels_for(measured)
    short = {c.id: label for c, label in zip(measured, labels)}
    data = tables.tables_of(report)
    within = within_run(report)
    plots = _plots(measured, labels) if measured else None
    return _ENVIRONMENT.get_template("page.html.j2").render(
        verdicts=verdict_lines(report, [within, reference, comparison]),
        verdict_marks=MARKS,
        contents=contents(
            within=within is not None,
            reference=reference is not None,
            comparison=comparison is not None,
            plots=plots is not None,
        ),
        title=f"Load-time report: {report.run_id}",
        source=source,
        facts=facts,
        dates=date_range(facts),
        machine_texts=[machine_text(m) for m in facts.machines.values()],
        machine_fields={fp: machine_fields(m) for fp, m in facts.machines.items()},
        plots=plots,
        top_packages=TOP_PACKAGES,
        comparison=_comparison(comparison, short),
        within=_comparison(
            within,
            short,
            plot_id="plot-paired",
            xlabel="change against the reference cell in this run, geometric mean of the per-round "
            "ratios (whiskers: 95% t-interval)",
            title="Paired change against the reference torch version, with its interval",
        ),
        within_note=describe(within) if within else None,
        reference=_reference(reference, short),
        baseline_path=baseline_path,
        baseline_note=baseline_note,
        stored_note=STORED_NOTE,
        trend=_trend(trends, [c.id for c in ordered]),
        history_note=history_note,
        tables=data,
        legend=tables.legend(False, reference=data.reference),
        env_headers=tables.ENV_HEADERS,
        env_rows=[e.cells() for e in data.environments],
        failed_headers=tables.FAILED_HEADERS,
        failed_rows=[f.cells() for f in data.failed],
        cells=ordered,
        level_mark=LEVEL_MARK,
        environment=_environment(report, ordered),
        version=__version__,
        commit=report.harness.commit,
        generated=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    )


def write_page(path: str | os.PathLike, text: str) -> Path:
    """Write the page whole or not at all, with the mode a plain file gets (a web server
    may serve it), and never over a device or a folder."""
    return write_atomic(path, text.encode("utf-8"))
