"""The comparison tables of a matrix report, for a console, GitHub or a web page.

One structure, :func:`tables_of`, holds what every format shows; :func:`render` writes it
as ``text`` (tabulate's plain layout) or ``md`` (GitHub markdown, for a job summary),
:func:`table_data` as the JSON ``merge --format json`` prints, and the HTML page renders the
same structure through its template. Per headline metric there is one table: rows are
models, columns are torch version x mode (x device, when the matrix has more than one), and
a cell reads ``median [95% interval]``, marked ``⚠`` where its target is missed. When the run
has cells of more than one torch version, each column of a version other than the reference
is followed by a ``vs <reference>`` column: the paired change of that cell against its
reference cell within the run, and its verdict (:mod:`harness.analysis.paired`; ``unpaired``
when the run was measured sequentially). A cell
without figures says why in a word (``install failed``, ``load failed``, ``crashed``,
``timeout``, ``interrupted``, ``not run``).

Reads the matrix report only; it computes no statistics of its own (the cell reports carry
them, and the paired changes come from :mod:`harness.analysis.paired`), so the tables show
exactly the figures the JSON holds.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import msgspec

from harness.errors import UserError
from harness.report.facts import (
    FAILURE_WORDS,
    BackendLine,
    FailedCell,
    backend_lines,
    failed_cells,
    failure_word,
    within_run,
)
from harness.report.format import (
    axes_key,
    decimals,
    duration,
    figure,
    md_text,
    one_line,
    percent,
    shortened,
    version_key,
)
from harness.result import (
    BACKENDS,
    DTYPES,
    HEADLINE_METRICS,
    METRICS,
    CellReport,
    FailureKind,
    MatrixReport,
    cosine_threshold,
)

__all__ = [
    "MISSED",
    "Changes",
    "Tables",
    "changes_against",
    "decimals",
    "paired_changes",
    "failure_word",
    "render",
    "table_data",
    "tables_of",
]

FORMATS = {"text": "simple", "md": "github"}
MISSED = "⚠"

# (cell id, metric) -> a short change against a baseline, such as "+3.1% slower".
Changes = dict[tuple[str, str], str]


# --------------------------------------------------------------------------- structure


class Entry(msgspec.Struct, omit_defaults=True):
    """One table cell: the text shown, and the figures behind it."""

    status: str  # a cell report's status, or "missing"
    text: str
    word: str | None = None
    reason: str | None = None
    median: float | None = None
    ci95: tuple[float, float] | None = None
    n: int | None = None
    target: float | None = None
    missed: bool | None = None
    change: str | None = None


class Row(msgspec.Struct):
    model: str
    cells: list[Entry]


class Table(msgspec.Struct):
    metric: str
    label: str
    unit: str
    headers: list[str]
    target: float | None
    rows: list[Row]

    @property
    def title(self) -> str:
        if self.metric == AGREEMENT:  # a floor, per dtype: the cell's lowest over its samples
            return f"{self.label} ({self.metric}: the lowest of any sample against torch float32)"
        target = f", target ≤ {self.target:g} {self.unit}" if self.target is not None else ""
        return f"{self.label} ({self.metric}, {self.unit}{target})"


class EnvRow(msgspec.Struct):
    torch: str
    status: str
    build_s: float | None
    python: str | None
    torch_installed: str | None
    sentence_transformers: str | None
    error: str | None
    reused_from: str | None = None  # an identical resolved set's environment whose packages it kept
    source: str | None = None  # its record in the run folder, where a shortened error is whole

    def cells(self) -> list[str]:
        """The row under ENV_HEADERS; a reused environment says so beside its build time."""
        build = duration(self.build_s) if self.build_s is not None else "–"
        if self.reused_from:
            build += f" (reused {one_line(self.reused_from, 60)})"
        return [
            self.torch,
            self.status,
            build,
            self.python or "–",
            self.torch_installed or "–",
            self.sentence_transformers or "–",
            shortened(self.error or "", 100, self.source and f"the environment record: {self.source}"),
        ]


class Tables(msgspec.Struct):
    run_id: str
    tables: list[Table]
    environments: list[EnvRow]
    failed: list[FailedCell]
    reference: str | None = None  # the torch version of the "vs" columns, when there are any
    backends: list[BackendLine] = []  # each backend or dtype against torch float32


ENV_HEADERS = ["torch", "status", "build", "python", "torch installed", "sentence-transformers", "error"]
FAILED_HEADERS = ["cell", "why", "reason"]


def _entry(cell: CellReport | None, metric: str, change: str | None) -> Entry:
    if cell is None:
        return Entry(status="missing", text=FAILURE_WORDS[FailureKind.NOT_RUN])
    stats = cell.stats.get(metric)
    if cell.status != "complete" or stats is None:
        if cell.status == "complete":
            return Entry(status="complete", text="–")  # not measured here (a CUDA figure on a CPU cell)
        word = failure_word(cell)
        attempts = cell.counted_attempts
        if word == FAILURE_WORDS[FailureKind.INTERRUPTED] and attempts:
            word += f" ({sum(1 for s in attempts if s.ok)}/{cell.settings.runs})"
        return Entry(
            status=cell.status, text=word, word=word, reason=cell.failure.reason if cell.failure else None
        )
    if metric == AGREEMENT and cell.embedding_cosine_min is not None:
        # The cell's lowest, not a median: one sentence that drifts is the finding.
        lowest = cell.embedding_cosine_min
        threshold = cell.cosine_threshold or cosine_threshold(cell.cell.dtype)
        missed = lowest < threshold
        text = f"≥ {math.floor(lowest * 1e4) / 1e4:.4f}" + (f" {MISSED}" if missed else "")
        return Entry(
            status="complete", text=text, median=stats.median, n=stats.n, target=threshold, missed=missed
        )
    places = decimals(stats.median)
    text = figure(stats.median, places)
    if stats.ci95:
        text += f" [{figure(stats.ci95[0], places)}–{figure(stats.ci95[1], places)}]"
    result = cell.target_results.get(metric)
    missed = result is not None and not result.met
    if missed:
        text += f" {MISSED}"
    if change:
        text += f" {change}"
    return Entry(
        status="complete",
        text=text,
        median=stats.median,
        ci95=stats.ci95,
        n=stats.n,
        target=result.target if result else None,
        missed=missed,
        change=change,
    )


def paired_changes(comparison) -> Changes:
    """Each paired verdict (harness.analysis.paired) as short text: ``+3.1% no change``."""
    changes: Changes = {}
    for v in comparison.verdicts if comparison is not None else []:
        if not math.isnan(v.ratio):
            unpaired = " (unpaired)" if v.pairing != "paired" else ""
            changes[(v.cell_id, v.metric)] = f"{percent(v.ratio - 1)} {v.word}{unpaired}"
    return changes


AGREEMENT = "embedding_cosine_min"


Column = tuple[str, str, str, tuple[tuple[str, str], ...], str]


def _column(info) -> Column:
    """A table column: torch, mode, device, the environment's other pins (matrix.yaml's
    packages:, by name; none when nothing else was pinned) and the backend and dtype off
    torch float32 ("" on it), so a matrix without packages: or backends: has the columns it
    always had."""
    variant = "" if (info.backend, info.dtype) == ("torch", "float32") else info.variant
    return (info.torch or "none", info.mode, info.device, tuple(sorted(info.packages.items())), variant)


def _column_key(column: Column) -> tuple:
    torch, mode, device, pins, variant = column
    # An environment's columns side by side: torch, then its pins, then mode and device.
    by_torch, *by_mode = axes_key(torch, mode, device)
    pin_key = [(name, version_key(version)) for name, version in pins]
    return (by_torch, pin_key, by_mode, _variant_key(variant))


def _variant_key(variant: str) -> tuple:
    backend, _, dtype = variant.partition(" ")
    return (
        BACKENDS.index(backend) if backend in BACKENDS else -1,
        DTYPES.index(dtype) if dtype in DTYPES else -1,
    )


def tables_of(
    report: MatrixReport, metrics: list[str] = HEADLINE_METRICS, changes: Changes | None = None
) -> Tables:
    """Everything the tables show, typed."""
    within = within_run(report, "torch")
    paired = paired_changes(within)
    # A "vs <reference>" column after each column of another torch version that has a pair.
    compared = {_column(c.cell) for c in report.cells.values() if any(cid == c.id for cid, _ in paired)}
    infos = [c.cell for c in report.cells.values()] + list(report.missing)
    columns = sorted({_column(i) for i in infos}, key=_column_key)
    devices = {column[2] for column in columns}
    models = list(dict.fromkeys(i.model for i in infos))
    # A reference run's <cell id>@baseline cells share their current cell's axes: the tables
    # show the current cells; `harness reference` judges the pairs.
    by_axes = {(c.cell.model, *_column(c.cell)): c for c in report.cells.values() if not c.cell.stack}
    headers = ["model"]
    for column in columns:
        torch, mode, device, pins, variant = column
        where = f" {device}" if len(devices) > 1 else ""
        pinned = " ".join(f"{name} {version}" for name, version in pins)
        label = " ".join(filter(None, [torch, pinned, f"{mode}{where}", variant]))
        headers.append(label)
        if column in compared:
            headers.append(f"vs {within.reference}")
    if any(column[4] for column in columns) and AGREEMENT not in metrics:
        # Backends and dtypes side by side: whether their embeddings agree, next to the speed.
        metrics = [*metrics, AGREEMENT]
    tables = []
    for metric in metrics:
        info = METRICS[metric]
        rows = []
        for model in models:
            entries = []
            for column in columns:
                cell = by_axes.get((model, *column))
                change = (changes or {}).get((cell.id, metric)) if cell else None
                entries.append(_entry(cell, metric, change))
                if column in compared:
                    versus = paired.get((cell.id, metric)) if cell else None
                    entries.append(Entry(status="paired" if versus else "missing", text=versus or "–"))
            rows.append(Row(model=model, cells=entries))
        targets = {e.target for row in rows for e in row.cells if e.target is not None}
        tables.append(
            Table(
                metric=metric,
                label=info.label,
                unit=info.unit,
                headers=headers,
                target=targets.pop() if len(targets) == 1 else None,
                rows=rows,
            )
        )
    environments = [
        EnvRow(
            torch=torch,
            status=env.status,
            build_s=env.build_s,
            python=env.python,
            torch_installed=env.packages.get("torch"),
            sentence_transformers=env.packages.get("sentence-transformers"),
            error=env.error,
            reused_from=env.reused_from,
            source=str(env.path_in(report.run_dir)) if report.run_dir else None,
        )
        for torch, env in sorted(report.environments.items(), key=lambda kv: version_key(kv[0]))
    ]
    return Tables(
        run_id=report.run_id,
        tables=tables,
        environments=environments,
        failed=failed_cells(report),
        reference=within.reference if compared else None,
        backends=backend_lines(report),
    )


def table_data(
    report: MatrixReport, metrics: list[str] = HEADLINE_METRICS, changes: Changes | None = None
) -> dict:
    """Everything the tables show, as plain data (what ``merge --format json`` prints)."""
    return msgspec.to_builtins(tables_of(report, metrics, changes))


# --------------------------------------------------------------------------- output


def legend(with_changes: bool, baseline_label: str | None = None, reference: str | None = None) -> str:
    text = f"median [95% interval] per cell; {MISSED} target missed"
    if reference:
        text += (
            f"; vs {reference}: the cell's change against torch {reference} in this run, paired round "
            "by round (geometric mean of the per-round ratios), and its verdict (larger / smaller for memory)"
        )
    if with_changes:
        text += (
            f"; change of the median against {baseline_label or 'the baseline'} (slower / faster, "
            "larger / smaller for memory, no change / inconclusive, by the statistical comparison)"
        )
    return text + "."


def render(
    report: MatrixReport,
    fmt: str = "text",
    *,
    metrics: list[str] = HEADLINE_METRICS,
    changes: Changes | None = None,
    baseline_label: str | None = None,
    where: dict[str, str] | None = None,
) -> str:
    """The tables of a matrix report as ``text`` or ``md`` (GitHub).

    ``changes`` adds each cell's change against a baseline; ``where`` adds a closing list
    of report locations (label -> path). Every text from the report is made one line, and
    in ``md`` escaped, so a name can neither split a row nor add a link, HTML or a heading.
    """
    from tabulate import tabulate

    if fmt not in FORMATS:
        raise UserError(f"format {fmt!r}: use {', '.join(FORMATS)}")
    data = tables_of(report, metrics, changes)
    md = fmt == "md"
    out: list[str] = []

    def text(value: object, limit: int = 160) -> str:
        return md_text(value, limit) if md else one_line(value, limit)

    def heading(title: str, level: int = 3) -> None:
        if md:
            out.append(f"{'#' * level} {title}\n")
        else:
            out.extend([title, "-" * len(title)])

    def table(headers: list[str], rows: list[list[str]], figures: bool = False) -> None:
        """A table whose every header and cell came through text() or is the harness's own."""
        # Figures align right so that their decimals line up; words and paths align left.
        align = ["left"] + ["right" if figures else "left"] * (len(headers) - 1)
        out.append(
            tabulate(rows, headers=headers, tablefmt=FORMATS[fmt], disable_numparse=True, colalign=align)
        )
        out.append("")

    heading(f"Matrix run {text(data.run_id)}", 2)
    out.append(
        legend(changes is not None, text(baseline_label) if baseline_label else None, data.reference) + "\n"
    )
    for tab in data.tables:
        heading(tab.title)
        # An entry's text is the harness's own (figures, a failure word, a verdict).
        table(
            [text(h) for h in tab.headers],
            [[text(row.model)] + [e.text for e in row.cells] for row in tab.rows],
            figures=True,
        )
    if data.backends:
        heading("Backends and dtypes against torch float32")
        marks = {"ok": "✓", "warn": "⚠"}
        out.extend(
            [f"{'-' if md else ' '} {marks.get(b.level, '•')} {text(b.text, 300)}" for b in data.backends]
        )
        out.append("")
    if data.environments:
        heading("Environments (one fresh environment per torch version)")
        # 400: a shortened error and where the whole of it is (EnvRow, FailedCell) stay whole.
        table(ENV_HEADERS, [[text(v, 400) for v in e.cells()] for e in data.environments])
    if data.failed:
        heading("Cells without figures")
        table(FAILED_HEADERS, [[text(v, 400) for v in f.cells()] for f in data.failed])
    if where:
        heading("Reports")
        table(["", "path"], [[text(label), text(path)] for label, path in where.items()])
    return "\n".join(out).rstrip() + "\n"


# --------------------------------------------------------------------------- baselines


def changes_against(
    baseline_cells: dict[str, CellReport],
    current_cells: dict[str, CellReport],
    compare: Callable | None = None,
) -> tuple[Changes, bool]:
    """Each cell's change against the baseline's same cell, as short text; and whether
    the two come from different machines.

    ``compare`` is the comparison to use, ``harness.analysis.compare.compare_cells`` by
    default (the statistical verdict); any callable with its signature and result fits.
    """
    if compare is None:
        from harness.analysis.compare import compare_cells

        compare = compare_cells
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
        changes[(verdict.cell_id, verdict.metric)] = f"{percent(ratio - 1)} {verdict.word}"
    return changes, bool(comparison.cross_machine)
