"""The console renderer: a cell report as a person reads it at a glance.

The layout follows the older in-house script (summary, timing breakdown as mean ± stdev
with range, memory, targets, recommendations, comparison with a baseline), with the median
and its 95% interval added, since that is the figure the harness compares.

Every text a report or a user supplies (a model name, an error, a path) reaches rich
escaped (``rich.markup.escape``) or as a ``Text``, never as markup: ``--name '[/x]'`` is a
name, not a closing tag.
"""

from __future__ import annotations

import math
from contextlib import contextmanager

from rich.console import Console, JustifyMethod
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

from harness.analysis.compare import MetricChange
from harness.report.format import duration, one_line, percent, quantity
from harness.result import METRICS, CellReport, Sample, Stats

TIMING_ROWS = [
    ("total_s", "Total Load Time", ""),
    ("import_s", "Import Time", "├─ "),
    ("import_torch_s", "torch", "│  ├─ "),
    ("import_st_s", "sentence-transformers", "│  └─ "),
    ("import_app_s", "the application (entry:)", "│  └─ "),
    ("cuda_init_s", "CUDA Init", "├─ "),
    ("init_s", "Model Init Time", "├─ "),
    ("to_device_s", "Model To Device", "├─ "),
    ("first_encode_s", "First Encode Time", "└─ "),
]
OTHER_ROWS = [
    ("startup_s", "Interpreter Start-up"),
    ("process_wall_s", "Process Wall Time"),
]
MEMORY_ROWS = [
    ("memory_mb", "Memory Delta"),
    ("peak_rss_mb", "Peak RSS"),
    ("uss_mb", "USS at End"),
    ("cuda_max_allocated_mb", "CUDA Max Allocated"),
]
TARGET_LABELS = {
    "total_s": "Total Load",
    "import_s": "Import",
    "init_s": "Model Init",
    "first_encode_s": "First Encode",
    "memory_mb": "Memory Usage",
}
MARK = {"ok": "[green]✓[/]", "warn": "[yellow]⚠[/]", "info": "[cyan]ℹ[/]"}


def _row(label: str, metric: str, s: Stats) -> list[str]:
    stdev = f" ± {quantity(metric, s.stdev)}" if s.stdev is not None else ""
    ci = f"[{quantity(metric, s.ci95[0])}–{quantity(metric, s.ci95[1])}]" if s.ci95 else ""
    return [
        label,
        f"{quantity(metric, s.mean)}{stdev}",
        f"{quantity(metric, s.min)}–{quantity(metric, s.max)}",
        quantity(metric, s.median),
        ci,
    ]


def _stat_table(rows: list[tuple[str, str]], stats: dict[str, Stats]) -> Table:
    table = Table(box=None, padding=(0, 1), pad_edge=False, show_edge=False, header_style="dim")
    columns: list[tuple[str, JustifyMethod]] = [
        ("", "left"),
        ("mean ± stdev", "right"),
        ("range", "right"),
        ("median", "right"),
        ("95% CI", "right"),
    ]
    for name, justify in columns:
        table.add_column(name, justify=justify, no_wrap=True)
    for label, metric in rows:
        if metric in stats:
            # Text cells: a "[" in a figure's interval must not be read as markup.
            table.add_row(*(Text(cell) for cell in _row("   " + label, metric, stats[metric])))
    return table


def _text(value: object, limit: int = 400) -> str:
    """A report's text for a line of markup: one line (a newline in a name must not fake a
    line of the report), with rich's markup escaped."""
    return escape(one_line(value, limit))


def _say(console: Console, markup: str) -> None:
    """One line of the harness's own markup; every value in it went through _text().
    Emoji codes are off, so ":x:" in a model name stays text."""
    console.print(markup, emoji=False, highlight=False)


def print_report(report: CellReport, console: Console | None = None) -> None:
    console = console or Console()
    cell = report.cell
    counted = report.counted_attempts
    ok = sum(s.ok for s in counted)

    console.print(Rule("[bold]PROFILING RESULTS"))
    _say(console, f"\n📋 [bold]Summary ({_text(cell.mode.upper())} START)[/]")
    _say(console, f"   Model: {_text(cell.model)}  [dim]({_text(cell.source)})[/]")
    env = report.environment
    packages = env.packages if env else {}
    versions = " · ".join(
        f"{name} {packages.get(name)}" for name in ("torch", "sentence-transformers", "transformers")
    )
    _say(
        console,
        f"   {_text(versions)} · Python {_text(str(env.python if env else None))} · "
        f"device {_text(cell.device)}",
    )
    if (cell.backend, cell.dtype) != ("torch", "float32"):
        export = f", exported once in {quantity('total_s', report.export_s)}" if report.export_s else ""
        cosine = report.embedding_cosine_min
        agreement = (
            f"; embedding cosine against torch float32 ≥ {math.floor(cosine * 1e4) / 1e4:.4f}"
            if cosine is not None
            else ""
        )
        _say(console, f"   Backend: {_text(cell.variant)}{_text(export)}{_text(agreement)}")
    style = "green" if ok == len(counted) else ("yellow" if ok else "red")
    _say(
        console,
        f"   Runs: {len(counted)} ([{style}]{ok} successful[/]), warm-ups: "
        f"{sum(s.warmup for s in report.samples)}",
    )
    if report.steady_encode_s is not None:
        _say(
            console,
            f"   Steady-state encode (in the warm-ups, after the load): "
            f"{quantity('encode_s', report.steady_encode_s)}",
        )
    if report.contended_samples:
        _say(
            console,
            f"   [yellow]{report.contended_samples} of {ok} samples were taken under contention[/] "
            "(they waited for a CPU: docs/measuring.md)",
        )
    _print_cold(report, console)
    _print_failures(report, console)

    if report.stats:
        _say(console, "\n⏱️  [bold]Timing Breakdown[/]")
        console.print(Rule(style="dim"))
        console.print(
            _stat_table(
                [(prefix + label, metric) for metric, label, prefix in TIMING_ROWS]
                + [(label, metric) for metric, label in OTHER_ROWS],
                report.stats,
            )
        )
        _say(console, "\n💾 [bold]Memory Usage[/]")
        console.print(Rule(style="dim"))
        console.print(_stat_table([(label, metric) for metric, label in MEMORY_ROWS], report.stats))
        _print_imports(report, console)
        _print_targets(report, console)

    if report.recommendations:
        _say(console, "\n💡 [bold]Recommendations[/]")
        console.print(Rule(style="dim"))
        for rec in report.recommendations:
            _say(console, f"   {MARK[rec.level]} {_text(rec.text)}")


def _print_cold(report: CellReport, console: Console) -> None:
    cold = report.cold_cache
    if cold is None:
        return
    residencies = [s.cache_residency for s in report.counted_attempts if s.cache_residency is not None]
    if cold.verified:
        worst = f"worst residency {max(residencies):.1%}" if residencies else "no residency recorded"
        _say(
            console,
            f"   Cold cache: [green]verified[/] — {cold.evicted_files} files evicted before each sample; "
            f"{worst} (limit {cold.threshold:.0%})",
        )
    else:
        note = _text(cold.note or "residency could not be checked")
        _say(console, f"   [bold red]COLD NUMBERS UNVERIFIED:[/] [red]{note}[/]")


def _print_failures(report: CellReport, console: Console) -> None:
    for s in report.samples:
        if not s.ok:
            what = f"sample {s.index}{' (warm-up)' if s.warmup else ''}: {s.error}"
            _say(console, f"   [red]✗ {_text(what)}[/]")
    if report.failure is not None:
        f = report.failure
        what = f"Cell {report.status}: {f.reason}{' — ' + f.detail if f.detail else ''}"
        _say(console, f"   [red]{_text(what)}[/]")


def _print_imports(report: CellReport, console: Console) -> None:
    attribution = report.import_attribution
    packages = attribution.packages if attribution else []
    if attribution is None or not packages:
        return
    run = "a separate run"
    if attribution.run == "warm-up":
        run = "the warm-up, cold" if attribution.cache == "cold" else "the warm-up"
    _say(console, f"\n📦 [bold]Import Time by Package[/] (self time, python -X importtime, {run})")
    console.print(Rule(style="dim"))
    table = Table(box=None, show_header=False, padding=(0, 1), pad_edge=False)
    width = 30
    biggest = packages[0].self_s or 1
    for p in packages[:8]:
        bar = "█" * max(1, round(width * p.self_s / biggest))
        table.add_row(
            Text(f"   {p.package}"), duration(p.self_s), f"{p.share:>4.0%}", Text(bar, style="blue")
        )
    console.print(table)


def _print_targets(report: CellReport, console: Console) -> None:
    if not report.target_results:
        return
    _say(console, "\n🎯 [bold]Performance vs Targets[/] (median)")
    console.print(Rule(style="dim"))
    for metric, r in report.target_results.items():
        mark = MARK["ok"] if r.met else MARK["warn"]
        label = f"{_text(TARGET_LABELS.get(metric, metric)):<20}"
        _say(console, f"   {mark} {label} {quantity(metric, r.value)} / {quantity(metric, r.target)} target")


def print_baseline_changes(
    changes: list[MetricChange], baseline_label: str, console: Console | None = None
) -> None:
    console = console or Console()
    console.print()
    console.print(
        Rule(Text.assemble(("COMPARISON WITH BASELINE", "bold"), " ", (one_line(baseline_label, 200), "dim")))
    )
    arrows = {"faster": (MARK["ok"], "↓"), "slower": (MARK["warn"], "↑"), "same": (MARK["ok"], "≈")}
    for c in changes:
        mark, arrow = arrows[c.direction]
        _say(
            console,
            f"   {mark} {METRICS[c.metric].label:<22} {quantity(c.metric, c.current)} {arrow} "
            f"({percent(c.change)} vs baseline {quantity(c.metric, c.baseline)})",
        )
    _say(
        console,
        "   [dim]Median against median; `python -m harness compare` says whether a change is significant.[/]",
    )


@contextmanager
def sample_progress(total: int, description: str, console: Console | None = None):
    """A progress bar over the samples; yields the runner's on_sample callback."""
    # markup=False: the description holds the model's name, which is text, not markup.
    progress = Progress(
        TextColumn("{task.description}", style="bold", markup=False),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[last]}"),
        TimeElapsedColumn(),
        console=console or Console(stderr=True),
        transient=False,
    )
    task = progress.add_task(description, total=total, last="")
    with progress:

        def on_sample(sample: Sample, done: int, _total: int) -> None:
            if sample.ok:
                m = sample.metrics
                last = f"total {duration(m.get('total_s', 0))} wall {duration(m.get('process_wall_s', 0))}"
                if sample.cache_residency is not None:
                    last += f" resident {sample.cache_residency:.1%}"
            else:
                last = f"[red]failed: {_text(sample.error or 'no error recorded', 60)}[/]"
            if sample.warmup:
                last = "(warm-up) " + last
            progress.update(task, completed=done, last=last)

        yield on_sample
