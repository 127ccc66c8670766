"""The answer first: one verdict line per compared pair of cells, in words and figures, with
what differs between the two environments beside it.

    torch 2.14.1 vs 2.13.0, warm, same run, 5 paired rounds: total load time 8.13 s → 8.37 s,
    +8.9% [+1.5, +16.8] slower; ...; memory 479 MB → 840 MB, +75% [...] larger.
    Builds differ: 2.14.1 is a CUDA build (nvidia-*, triton), 2.13.0 is +cpu.

:func:`verdict_lines` builds the lines from the analysed comparisons (a paired comparison
within the run, a reference run's, a comparison against stored numbers) and the report
they came from; the HTML page, the Markdown summary and the console (merge) each render the
same lines (:func:`banner_text` for text and Markdown; the page's template for HTML), so the
three never word a verdict differently. A dashboard may call :func:`verdict_lines` as well.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from harness.analysis.compare import Comparison, MetricVerdict
from harness.analysis.environments import CPU_INDEX_HOST, EnvironmentDiff, environment_diff
from harness.analysis.paired import UNPAIRED, PairedComparison, PairedVerdict
from harness.report.format import md_text, one_line, percent, quantity
from harness.result import METRICS, MatrixReport, PackageChange

# The metrics a verdict line names, in this order: what a user feels, then the footprint.
BANNER_METRICS = ("total_s", "process_wall_s", "memory_mb")
# Package changes named in full before the rest are counted.
SHOWN_CHANGES = 6


@dataclass(frozen=True)
class VerdictLine:
    """One compared pair: its verdict sentence, and what differs between its environments.

    ``level``: ``bad`` (a gated metric slower), ``warn`` (another metric slower or larger,
    or a gated one inconclusive), ``good``. ``section``: the page section with its table."""

    level: str
    title: str  # torch 2.14.1 vs 2.13.0, warm
    text: str  # the whole sentence, plain text
    packages: str | None = None  # Packages differ: ...
    build: str | None = None  # Builds differ: ...
    advice: str | None = None  # the remedy, with the run's figures
    section: str = "within"
    verdicts: Sequence[MetricVerdict] = field(default_factory=list)

    @property
    def details(self) -> list[str]:
        return [x for x in (self.build, self.packages, self.advice) if x]


def changes_text(changes: list[PackageChange], limit: int = SHOWN_CHANGES) -> str:
    """The packages that differ, the CUDA libraries counted as one group: ``torch 2.13.0+cpu
    -> 2.14.1, nvidia-* (15 added), triton (none) -> 3.5.1``."""
    nvidia = [c for c in changes if c.name.startswith("nvidia-")]
    rest = [c for c in changes if not c.name.startswith("nvidia-")]
    parts = [c.text for c in rest[:limit]]
    if len(rest) > limit:
        parts.append(f"{len(rest) - limit} more")
    if nvidia:
        added = sum(1 for c in nvidia if c.reference is None)
        removed = sum(1 for c in nvidia if c.current is None)
        counts = ((added, "added"), (removed, "removed"), (len(nvidia) - added - removed, "changed"))
        how = ", ".join(f"{n} {word}" for n, word in counts if n)
        parts.insert(1 if rest else 0, f"nvidia-* ({how})")
    return ", ".join(parts)


def _figures(v: MetricVerdict) -> str:
    label = METRICS[v.metric].label if v.metric in METRICS else v.metric
    label = label[:1].lower() + label[1:]
    text = f"{label} {quantity(v.metric, v.baseline_median)} → {quantity(v.metric, v.current_median)}"
    if math.isnan(v.ratio):
        return f"{text}, {v.word}"
    interval = f"[{percent(v.ci_low - 1)[:-1]}, {percent(v.ci_high - 1)[:-1]}]"
    return f"{text}, {percent(v.change)} {interval} {v.word}"


def _level(verdicts: Sequence[MetricVerdict], gated: tuple[str, ...]) -> str:
    if any(v.verdict == "slower" and v.metric in gated for v in verdicts):
        return "bad"
    if any(v.verdict == "slower" or (v.metric in gated and v.verdict == "inconclusive") for v in verdicts):
        return "warn"
    return "good"


def _build_line(diff: EnvironmentDiff, ref_name: str, cur_name: str) -> str | None:
    if not diff.builds_differ or diff.current is None or diff.reference is None:
        return None
    current, reference = diff.current.describe(), diff.reference.describe()
    return f"Builds differ: {cur_name} is {current}, {ref_name} is {reference}."


def _advice(diff: EnvironmentDiff, verdicts: Sequence[MetricVerdict], device: str) -> str | None:
    """The remedy when the CUDA build's libraries cost memory on a CPU-only run, with the
    run's figures; None when they did not (or the cells ran on a GPU)."""
    cuda = diff.cuda_against_cpu()
    memory = next((v for v in verdicts if v.metric == "memory_mb"), None)
    if cuda is None or memory is None or not device.startswith("cpu") or math.isnan(memory.ratio):
        return None
    side, version = cuda
    cuda_mb, cpu_mb = (
        (memory.current_median, memory.baseline_median)
        if side == "current"
        else (memory.baseline_median, memory.current_median)
    )
    if not cuda_mb > cpu_mb:
        return None
    return (
        "Remedy: the CUDA build's libraries cost memory on this CPU-only run "
        f"({quantity('memory_mb', cuda_mb)} against {quantity('memory_mb', cpu_mb)} with the CPU build, "
        f"in this run): install torch {version} from PyTorch's CPU wheel index, {CPU_INDEX_HOST} "
        f"(pip install 'torch=={version}' --index-url with that index; in matrix.yaml a torch entry "
        f'version: "{version}+cpu" with that index in extra_index_urls).'
    )


def _rest_label(axes: dict, axis: str, varying: set[str]) -> str:
    return ", ".join(str(axes[k]) for k in axes if k != axis and k in varying)


def verdict_lines(report: MatrixReport, comparisons: Iterable[object]) -> list[VerdictLine]:
    """One line per compared pair of cells, for every comparison given: a PairedComparison
    (within the run, or a reference run's ``.paired``), a ReferenceComparison (its pairs
    whose stack changed) or a Comparison against stored numbers. ``report`` is the run they
    were made from (its cells and environments say what differs)."""
    from harness.analysis.reference import ReferenceComparison

    lines: list[VerdictLine] = []
    for comparison in comparisons:
        if comparison is None:
            continue
        if isinstance(comparison, ReferenceComparison):
            lines += _paired_lines(report, comparison.paired, section="reference", reference=comparison)
        elif isinstance(comparison, PairedComparison):
            lines += _paired_lines(report, comparison, section="within")
        elif isinstance(comparison, Comparison):
            lines += _stored_lines(comparison)
    return lines


def _paired_lines(
    report: MatrixReport, comparison: PairedComparison, *, section: str, reference=None
) -> list[VerdictLine]:
    by_pair: dict[tuple[str, str], list[PairedVerdict]] = {}
    for v in comparison.paired_verdicts:
        by_pair.setdefault((v.reference_id, v.cell_id), []).append(v)
    cells = report.cells
    varying = {
        key
        for key in {k for ids in by_pair for cid in ids if cid in cells for k in cells[cid].cell.axes}
        if len({str(cells[cid].cell.axes.get(key)) for ids in by_pair for cid in ids if cid in cells}) > 1
    }
    out = []
    for (ref_id, cell_id), verdicts in by_pair.items():
        ref_cell, cell = cells.get(ref_id), cells.get(cell_id)
        if ref_cell is None or cell is None:
            continue
        axis = comparison.axis
        if section == "reference":
            title = f"{cell.cell.env_id}, {cell.cell.mode}: against its baseline environment rebuilt"
            ref_name, cur_name = "the baseline environment", "this run's"
        else:
            ref_name = str(ref_cell.cell.axes.get(axis))
            cur_name = str(cell.cell.axes.get(axis))
            rest = _rest_label(cell.cell.axes, axis, varying) or cell.cell.mode
            title = f"{axis} {cur_name} vs {ref_name}, {rest}"
        shown = [v for metric in BANNER_METRICS for v in verdicts if v.metric == metric]
        first = shown[0] if shown else verdicts[0]
        rounds = (
            f"same run, {first.n_current} samples each, UNPAIRED (measured sequentially)"
            if first.pairing == UNPAIRED
            else f"same run, {first.n_current} paired rounds"
        )
        text = f"{title}, {rounds}: " + "; ".join(_figures(v) for v in shown) + "."
        diff = environment_diff(report, ref_cell, cell)
        changes = reference.suspects(cell_id) if reference is not None else diff.changes
        out.append(
            VerdictLine(
                level=_level(verdicts, comparison.gated_metrics),
                title=title,
                text=text,
                packages=f"Packages differ: {changes_text(changes)}." if changes else None,
                build=_build_line(diff, ref_name, cur_name),
                advice=_advice(diff, verdicts, cell.cell.device),
                section=section,
                verdicts=verdicts,
            )
        )
    return out


def _stored_lines(comparison: Comparison) -> list[VerdictLine]:
    by_cell: dict[str, list[MetricVerdict]] = {}
    for v in comparison.verdicts:
        by_cell.setdefault(v.cell_id, []).append(v)
    out = []
    for cell_id, verdicts in by_cell.items():
        shown = [v for metric in BANNER_METRICS for v in verdicts if v.metric == metric]
        title = f"{cell_id} against the stored baseline"
        text = (
            f"{title}, two sessions ({shown[0].n_baseline if shown else '?'} and "
            f"{shown[0].n_current if shown else '?'} samples): " + "; ".join(_figures(v) for v in shown) + "."
        )
        out.append(
            VerdictLine(
                level=_level(verdicts, comparison.gated_metrics),
                title=title,
                text=text,
                section="comparison",
                verdicts=verdicts,
            )
        )
    return out


MARKS = {"bad": "✗", "warn": "⚠", "good": "✓"}


# A terminal's width for the text form (the same as compare's default).
TEXT_WIDTH = 100


def banner_text(lines: list[VerdictLine], fmt: str = "text") -> str:
    """The lines as plain text (a terminal: folded at TEXT_WIDTH) or Markdown (a job
    summary: escaped, a nested list, one line each)."""
    if not lines:
        return ""
    if fmt == "md":
        out = ["**Verdicts**", ""]
        for line in lines:
            out.append(f"- {MARKS[line.level]} {md_text(line.text, 1000)}")
            out.extend(f"  - {md_text(detail, 1000)}" for detail in line.details)
        return "\n".join(out) + "\n"
    out = ["Verdicts", ""]
    for line in lines:
        out += textwrap.wrap(
            one_line(line.text, 1000),
            TEXT_WIDTH,
            initial_indent=f"{MARKS[line.level]} ",
            subsequent_indent="  ",
            break_on_hyphens=False,
        )
        for detail in line.details:
            out += textwrap.wrap(
                one_line(detail, 1000),
                TEXT_WIDTH,
                initial_indent="  · ",
                subsequent_indent="    ",
                break_on_hyphens=False,
            )
    return "\n".join(out) + "\n"
