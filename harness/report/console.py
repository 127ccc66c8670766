"""The console exporter: a cell report as a person reads it at a glance.

The layout follows the older in-house script (summary, timing breakdown as mean ± stdev
with range, memory, targets, recommendations, comparison with a baseline), with the median
and its 95% interval added, since that is the figure the harness compares.
"""

from __future__ import annotations

from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.rule import Rule
from rich.table import Table

from harness.analysis.compare import MetricChange
from harness.result import METRICS

TIMING_ROWS = [
    ("total_s", "Total Load Time", ""),
    ("import_s", "Import Time", "├─ "),
    ("import_torch_s", "torch", "│  ├─ "),
    ("import_st_s", "sentence-transformers", "│  └─ "),
    ("cuda_init_s", "CUDA Init", "├─ "),
    ("init_s", "Model Init Time", "├─ "),
    ("to_device_s", "Model To Device", "├─ "),
    ("first_encode_s", "First Encode Time", "└─ "),
]
OTHER_ROWS = [("encode_s", "Steady-state Encode"), ("startup_s", "Interpreter Start-up"),
              ("process_wall_s", "Process Wall Time")]
MEMORY_ROWS = [("memory_mb", "Memory Delta"), ("peak_rss_mb", "Peak RSS"), ("uss_mb", "USS at End"),
               ("cuda_max_allocated_mb", "CUDA Max Allocated")]
TARGET_LABELS = {"total_s": "Total Load", "import_s": "Import", "init_s": "Model Init",
                 "first_encode_s": "First Encode", "memory_mb": "Memory Usage"}
MARK = {"ok": "[green]✓[/]", "warn": "[yellow]⚠[/]", "info": "[cyan]ℹ[/]"}


def fmt(metric: str, value: float | None) -> str:
    if value is None:
        return "–"
    if METRICS[metric].unit == "MB":
        return f"{value:.0f}MB"
    if metric in ("first_encode_s", "encode_s", "cuda_init_s", "to_device_s", "startup_s") and value < 1:
        return f"{value * 1000:.0f}ms"
    return f"{value:.2f}s"


def _stat_row(label: str, metric: str, s: dict) -> list[str]:
    stdev = f" ± {fmt(metric, s['stdev'])}" if s.get("stdev") is not None else ""
    ci = f"[{fmt(metric, s['ci95'][0])}–{fmt(metric, s['ci95'][1])}]" if s.get("ci95") else ""
    return [label, f"{fmt(metric, s['mean'])}{stdev}", f"{fmt(metric, s['min'])}–{fmt(metric, s['max'])}",
            fmt(metric, s["median"]), ci]


def _stat_table(rows: list[tuple[str, str]], stats: dict) -> Table:
    table = Table(box=None, padding=(0, 1), pad_edge=False, show_edge=False, header_style="dim")
    for name, justify in [("", "left"), ("mean ± stdev", "right"), ("range", "right"),
                          ("median", "right"), ("95% CI", "right")]:
        table.add_column(name, justify=justify, no_wrap=True)
    for label, metric in rows:
        if metric in stats:
            table.add_row(*_stat_row("   " + label, metric, stats[metric]))
    return table


def print_report(report: dict, console: Console | None = None) -> None:
    console = console or Console()
    cell, stats = report["cell"], report.get("stats") or {}
    counted = [s for s in report["samples"] if not s["warmup"]]
    ok = sum(s["ok"] for s in counted)

    console.print(Rule("[bold]PROFILING RESULTS"))
    console.print(f"\n📋 [bold]Summary ({cell['mode'].upper()} START)[/]")
    console.print(f"   Model: {cell['model']}  [dim]({cell['source']})[/]")
    env = report.get("environment") or {}
    pkgs = env.get("packages") or {}
    console.print(f"   torch {pkgs.get('torch')} · sentence-transformers {pkgs.get('sentence-transformers')} · "
                  f"transformers {pkgs.get('transformers')} · Python {env.get('python')} · device {cell['device']}")
    style = "green" if ok == len(counted) else ("yellow" if ok else "red")
    console.print(f"   Runs: {len(counted)} ([{style}]{ok} successful[/]), warm-ups: "
                  f"{sum(s['warmup'] for s in report['samples'])}")
    _print_cold(report, console)
    _print_failures(report, console)

    if stats:
        console.print("\n⏱️  [bold]Timing Breakdown[/]")
        console.print(Rule(style="dim"))
        console.print(_stat_table([(prefix + label, metric) for metric, label, prefix in TIMING_ROWS]
                                  + [(label, metric) for metric, label in OTHER_ROWS], stats))
        console.print("\n💾 [bold]Memory Usage[/]")
        console.print(Rule(style="dim"))
        console.print(_stat_table([(label, metric) for metric, label in MEMORY_ROWS], stats))
        _print_imports(report, console)
        _print_targets(report, console)

    if report.get("recommendations"):
        console.print("\n💡 [bold]Recommendations[/]")
        console.print(Rule(style="dim"))
        for rec in report["recommendations"]:
            console.print(f"   {MARK[rec['level']]} {rec['text']}")


def _print_cold(report: dict, console: Console) -> None:
    cold = report.get("cold_cache")
    if not cold:
        return
    counted = [s for s in report["samples"] if not s["warmup"] and "cache_residency" in s]
    worst = max((s["cache_residency"] for s in counted if s.get("cache_residency") is not None), default=None)
    if cold.get("verified"):
        console.print(f"   Cold cache: [green]verified[/] — {cold['evicted_files']} files evicted before each sample; "
                      f"worst residency {worst:.1%} (limit {cold['threshold']:.0%})")
    else:
        console.print(f"   [bold red]COLD NUMBERS UNVERIFIED:[/] [red]{cold.get('note') or 'residency could not be checked'}[/]")


def _print_failures(report: dict, console: Console) -> None:
    failed = [s for s in report["samples"] if not s["ok"]]
    for s in failed:
        console.print(f"   [red]✗ sample {s['index']}{' (warm-up)' if s['warmup'] else ''}: {s['error']}[/]")
    if report.get("failure"):
        f = report["failure"]
        console.print(f"   [red]Cell {report['status']}: {f['reason']}{' — ' + f['detail'] if f.get('detail') else ''}[/]")


def _print_imports(report: dict, console: Console) -> None:
    attribution = report.get("import_attribution") or {}
    packages = attribution.get("packages") or []
    if not packages:
        return
    console.print("\n📦 [bold]Import Time by Package[/] (self time, python -X importtime, separate run)")
    console.print(Rule(style="dim"))
    table = Table(box=None, show_header=False, padding=(0, 1), pad_edge=False)
    width = 30
    biggest = packages[0]["self_s"] or 1
    for p in packages[:8]:
        bar = "█" * max(1, round(width * p["self_s"] / biggest))
        table.add_row(f"   {p['package']}", f"{p['self_s']:.2f}s", f"{p['share']:>4.0%}", f"[blue]{bar}[/]")
    console.print(table)


def _print_targets(report: dict, console: Console) -> None:
    results = report.get("target_results") or {}
    if not results:
        return
    console.print("\n🎯 [bold]Performance vs Targets[/] (median)")
    console.print(Rule(style="dim"))
    for metric, r in results.items():
        mark = "[green]✓[/]" if r["met"] else "[yellow]⚠[/]"
        console.print(f"   {mark} {TARGET_LABELS.get(metric, metric):<20} {fmt(metric, r['value'])} / "
                      f"{fmt(metric, r['target'])} target")


def print_baseline_changes(changes: list[MetricChange], baseline_label: str, console: Console | None = None) -> None:
    console = console or Console()
    console.print()
    console.print(Rule(f"[bold]COMPARISON WITH BASELINE[/] [dim]{baseline_label}[/]"))
    arrows = {"faster": ("[green]✓[/]", "↓"), "slower": ("[yellow]⚠[/]", "↑"), "same": ("[green]✓[/]", "≈")}
    for c in changes:
        mark, arrow = arrows[c.direction]
        console.print(f"   {mark} {METRICS[c.metric].label:<22} {fmt(c.metric, c.current)} {arrow} "
                      f"({c.change:+.1%} vs baseline {fmt(c.metric, c.baseline)})")
    console.print("   [dim]Median against median; `python -m harness compare` says whether a change is significant.[/]")


@contextmanager
def sample_progress(total: int, description: str, console: Console | None = None):
    """A progress bar over the samples; yields the runner's on_sample callback."""
    progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("{task.fields[last]}"), TimeElapsedColumn(),
                        console=console or Console(stderr=True), transient=False)
    task = progress.add_task(description, total=total, last="")
    with progress:
        def on_sample(sample: dict, done: int, _total: int) -> None:
            if sample["ok"]:
                m = sample["metrics"]
                last = f"total {m.get('total_s', 0):.2f}s wall {m.get('process_wall_s', 0):.2f}s"
                if sample.get("cache_residency") is not None:
                    last += f" resident {sample['cache_residency']:.1%}"
            else:
                last = f"[red]failed: {sample['error'][:60]}[/]"
            if sample["warmup"]:
                last = "(warm-up) " + last
            progress.update(task, completed=done, last=last)
        yield on_sample
