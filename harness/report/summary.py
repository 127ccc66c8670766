"""The Markdown summary of a run, for a CI job's summary page: verdict first.

A verdict line (✅ / ❌), then the run's facts (:mod:`harness.report.facts`, the ones the
HTML page opens with), the console's total-load table and, folded, every headline table
(:func:`harness.report.tables.render`, ``md``). Every text from a report (a cell id, a
model's name, a reason, a path) is escaped for Markdown (:mod:`harness.report.format`), so
it can add no link, HTML, heading or table column to the job's page.
"""

from __future__ import annotations

import os

from harness.analysis.paired import describe
from harness.report import tables
from harness.report.comparison import STORED_NOTE
from harness.report.facts import headline, machine_text, within_run
from harness.report.format import md_code, md_text, percent
from harness.result import MatrixReport, TargetError, WriteError, append_bytes


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"


def markdown(
    report: MatrixReport, comparison=None, baseline_path=None, baseline_note: str | None = None
) -> str:
    """The summary's Markdown; ``comparison`` (harness.analysis.compare.Comparison) adds its verdicts."""
    facts = headline(report)
    failed, cold = facts.failed, facts.cold
    within = within_run(report)
    problems = []
    if within is not None and within.regressions():
        slower = within.regressions()
        problems.append(
            f"{_plural(len(slower), 'gated metric')} slower than torch {md_text(within.reference)} "
            "in this run: "
            + ", ".join(f"{md_text(v.cell_id)} {md_text(v.metric)} {percent(v.change)}" for v in slower)
        )
    if comparison is not None and comparison.regressions():
        regressions = comparison.regressions()
        problems.append(
            f"{_plural(len(regressions), 'regression')}: "
            + ", ".join(f"{md_text(v.cell_id)} {md_text(v.metric)} {percent(v.change)}" for v in regressions)
        )
    if failed:
        problems.append(
            f"{_plural(len(failed), 'failed cell')}: " + ", ".join(md_text(f.cell) for f in failed)
        )
    if problems:
        verdict = "❌ " + "; ".join(problems)
    elif comparison is not None:
        verdict = f"✅ no regression against the baseline ({len(comparison.verdicts)} metrics compared)"
    else:
        verdict = f"✅ all {facts.cells} cells complete"
    lines = [f"### {verdict}", ""]
    if cold.cells:
        cold_text = (
            f"all {cold.samples} cold samples verified cold"
            if cold.verified
            else f"⚠ cold NOT verified ({cold.flagged} of {cold.samples} samples started cached)"
        )
    else:
        cold_text = "no cold cells"
    lines.append(
        f"Run {md_code(facts.run_id)}: {facts.complete}/{facts.cells} cells complete, "
        f"{facts.samples} samples, {cold_text}."
    )
    missed = facts.total_target_missed
    if missed:
        lines.append(f"⚠ {len(missed)} cell{'s' if len(missed) > 1 else ''} miss the total-load target.")
    if comparison is not None:
        counts: dict[str, int] = {}
        for v in comparison.verdicts:
            counts[v.verdict] = counts.get(v.verdict, 0) + 1
        lines.append(
            f"Against {md_code(baseline_path)}: "
            + ", ".join(f"{n} {md_text(k)}" for k, n in sorted(counts.items()))
            + f" ({md_text(STORED_NOTE, 400)})."
        )
    elif baseline_note:
        lines.append(f"Baseline: {md_text(baseline_note, 300)}.")
    if within is not None:
        counts = {}
        for v in within.verdicts:
            counts[v.verdict] = counts.get(v.verdict, 0) + 1
        lines.append(
            f"Within the run, against torch {md_text(within.reference)}: "
            + ", ".join(f"{n} {md_text(k)}" for k, n in sorted(counts.items()))
            + f" ({md_text(describe(within), 400)})."
        )
    for machine in facts.machines.values():
        lines.append(f"Machine: {md_text(machine_text(machine), 300)}.")
    lines.append("")
    if report.cells:
        # Visible: the total load time; folded: every headline table, environments and
        # failures, as `merge --format md` prints them (one source: harness.report.tables).
        total = tables.render(report, "md", metrics=["total_s"]).strip()
        lines.append(total.split("\n", 1)[1].strip() if total.startswith("## ") else total)
        lines += [
            "",
            "<details><summary>All headline tables</summary>",
            "",
            tables.render(report, "md").strip(),
            "",
            "</details>",
        ]
    return "\n".join(lines) + "\n"


def append(text: str, path: str | os.PathLike) -> None:
    """Add ``text`` to a job summary file (``$GITHUB_STEP_SUMMARY``), after what earlier steps
    wrote. A path that cannot be written is one line naming the variable: WriteError's exit
    status (3), or TargetError's (2) for a device or a folder."""
    try:
        append_bytes(path, (text + "\n").encode("utf-8"))
    except (WriteError, TargetError) as exc:
        raise type(exc)(f"GITHUB_STEP_SUMMARY={exc}") from None
