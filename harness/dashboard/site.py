"""The dashboard's files: the front page, a page per cell, per run and per comparison, and
the environments' inventory, rendered with jinja2 (autoescape) from :mod:`.model`.

Layout of SITE (every link relative, so it opens from the disk and from any web path)::

    index.html                    regressions first: latest verdicts, steps, runs, the picker
    cells/<cell id>.html          trend of each gated metric, its steps and what moved at each
    runs/<run id>.html            a run's resolved package sets and what moved since the run before
    environments.html             the inventory: per run, newest first, what moved
    compare/<A>__<B>.html         run B against run A (stable: link it from an issue)
    assets/dashboard.css, .js     the style and the script, written from the package

A cell's data is on its own page only: the front page carries one row per cell and metric.
The plots' SVG is inserted with ``|safe``: :mod:`.svg` escapes every text it draws.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from urllib.parse import quote

import jinja2

from harness.dashboard import svg
from harness.dashboard.model import Dashboard, move_text
from harness.dashboard.pairs import RunComparison, compare_many
from harness.report.comparison import headers_of, table_rows
from harness.report.format import one_line, percent, quantity, when
from harness.result import METRICS, TargetError, is_safe_name, write_atomic

RECENT_RUNS = 30  # runs listed on the front page; every run is on environments.html
TABLE_RUNS = 60  # runs in a cell page's table of medians; its plot has every run
PAIR_SEPARATOR = "__"

_ENVIRONMENT = jinja2.Environment(
    loader=jinja2.PackageLoader("harness.dashboard", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_ENVIRONMENT.filters.update(percent=percent, one_line=one_line, when=when, quantity=quantity, url=quote)


def compare_name(baseline: str, current: str) -> str:
    return f"{baseline}{PAIR_SEPARATOR}{current}"


def default_pairs(dashboard: Dashboard) -> list[tuple[str, str]]:
    """The comparisons built by default: each run with a report against the one before it
    that has one, and each against the newest."""
    kept = [r.run_id for r in dashboard.with_reports]
    pairs = list(zip(kept, kept[1:]))
    if kept:
        pairs += [(run_id, kept[-1]) for run_id in kept[:-1]]
    return list(dict.fromkeys(pairs))


def _asset(name: str) -> str:
    return (
        resources.files("harness.dashboard").joinpath("templates").joinpath(name).read_text(encoding="utf-8")
    )


def _css() -> str:
    report_css = (
        resources.files("harness.report")
        .joinpath("templates")
        .joinpath("report.css")
        .read_text(encoding="utf-8")
    )
    return report_css + "\n" + _asset("dashboard.css")


class Writer:
    """Writes the site's files under ``out``, only there, each whole or not at all."""

    def __init__(self, out: Path):
        self.out = out
        self.written = 0
        self.bytes: dict[str, int] = {}

    def write(self, relative: str, text: str) -> Path:
        data = text.encode("utf-8")
        path = write_atomic(self.out / relative, data)
        self.written += 1
        self.bytes[relative] = len(data)
        return path


def _render(template: str, **values) -> str:
    return _ENVIRONMENT.get_template(template).render(**values)


def _cell_page(dashboard: Dashboard, cell) -> str:
    plots = []
    for metric, trend in cell.trends.items():
        if not trend.points:
            continue
        plots.append(
            svg.trend(
                f"trend-{metric}",
                f"{METRICS[metric].label} ({metric}): median per run, 95% interval",
                [p.run_id for p in trend.points],
                [p.median for p in trend.points],
                [p.low for p in trend.points],
                [p.high for p in trend.points],
                [(s.index, s.change) for s in trend.steps],
                METRICS[metric].unit,
            )
        )
    return _render(
        "cell.html.j2",
        root="../",
        title=f"Cell {cell.cell_id}",
        cell=cell,
        plots=plots,
        dashboard=dashboard,
        move_text=move_text,
        table_runs=TABLE_RUNS,
    )


def _compare_page(dashboard: Dashboard, result: RunComparison) -> str:
    tables = [
        (title, headers_of(c), [(v.verdict, row) for v, row in zip(c.verdicts, table_rows(c, "text", False))])
        for title, c in result.sections
    ]
    notes = [v for _title, c in result.sections for v in c.verdicts if v.verdict != "no change"]
    return _render(
        "compare.html.j2",
        root="../",
        title=f"Run {result.current} against run {result.baseline}",
        result=result,
        tables=tables,
        notes=notes,
        sections=result.sections,
    )


def _script_json(data) -> str:
    """JSON for a ``<script type="application/json">`` (inserted with ``|safe``): no ``<``,
    ``>`` or ``&`` in it, so no run id can end the script or open a tag."""
    text = json.dumps(data)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _picker(dashboard: Dashboard, built: set[str], command: str) -> dict:
    return {
        "runs": [r.run_id for r in reversed(dashboard.with_reports)],
        "built": sorted(built),
        "command": command,
    }


def build_site(
    dashboard: Dashboard,
    out: str | os.PathLike,
    *,
    extra_pairs: Sequence[tuple[str, str]] = (),
    command: str = "python -m harness dashboard",
) -> Writer:
    """Write the whole site under ``out``; returns the writer (what it wrote)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise TargetError(f"{out}: is not a folder; name a folder for the site (--out)")
    writer = Writer(out)
    writer.write("assets/dashboard.css", _css())
    writer.write("assets/dashboard.js", _asset("dashboard.js"))

    pairs = [
        (baseline, current)
        for baseline, current in dict.fromkeys([*default_pairs(dashboard), *extra_pairs])
        if is_safe_name(baseline) and is_safe_name(current)
    ]
    comparisons: dict[str, RunComparison] = {}
    for (baseline, current), result in compare_many(dashboard, pairs).items():
        name = compare_name(baseline, current)
        comparisons[name] = result
        writer.write(f"compare/{name}.html", _compare_page(dashboard, result))
    # Pages an earlier build made (an explicit --compare) stay reachable from the picker.
    built = set(comparisons)
    known = set(dashboard.run_ids)
    for page in (out / "compare").glob(f"*{PAIR_SEPARATOR}*.html"):
        baseline, _sep, current = page.stem.partition(PAIR_SEPARATOR)
        if baseline in known and current in known:
            built.add(page.stem)

    for cell in dashboard.cells.values():
        writer.write(f"cells/{cell.cell_id}.html", _cell_page(dashboard, cell))
    previous = {}
    for before, run in zip([None, *dashboard.runs], dashboard.runs):
        previous[run.run_id] = before.run_id if before else None
    for run in dashboard.runs:
        if is_safe_name(run.run_id):
            writer.write(
                f"runs/{run.run_id}.html",
                _render(
                    "run.html.j2",
                    root="../",
                    title=f"Run {run.run_id}",
                    run=run,
                    previous=previous[run.run_id],
                    move_text=move_text,
                    built=built,
                    pair=compare_name,
                ),
            )
    writer.write(
        "environments.html",
        _render(
            "environments.html.j2",
            root="",
            title="Environments per run",
            runs=list(reversed(dashboard.runs)),
            move_text=move_text,
            safe=is_safe_name,
        ),
    )
    cells = sorted(
        dashboard.cells.values(),
        key=lambda c: (
            -dashboard.run_ids.index(c.latest_run),
            not c.regressed,
            c.cell_id,
        ),
    )
    regressed = [c for c in cells if c.regressed]
    latest = comparisons.get(compare_name(*dashboard.latest_pair)) if dashboard.latest_pair else None
    writer.write(
        "index.html",
        _render(
            "index.html.j2",
            root="",
            title="Load-time dashboard",
            dashboard=dashboard,
            cells=cells,
            regressed=regressed,
            steps=dashboard.steps,
            recent=list(reversed(dashboard.runs))[:RECENT_RUNS],
            latest=latest,
            latest_name=compare_name(*dashboard.latest_pair) if dashboard.latest_pair else None,
            picker=_script_json(_picker(dashboard, built, command)),
            built=built,
            pair=compare_name,
            metrics=METRICS,
            safe=is_safe_name,
        ),
    )
    return writer
