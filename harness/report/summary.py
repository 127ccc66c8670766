"""The summary of a run, for a CI job's summary page (Markdown) or a terminal (plain text):
verdict first.

A verdict line (✅ / ❌), one banner line per compared pair (:mod:`harness.report.banner`),
then the run's facts (:mod:`harness.report.facts`, the ones the
HTML page opens with), the console's total-load table and, folded, every headline table
(:func:`harness.report.tables.render`, ``md``). Every text from a report (a cell id, a
model's name, a reason, a path) is escaped for Markdown (:mod:`harness.report.format`), so
it can add no link, HTML, heading or table column to the job's page.
"""

from __future__ import annotations

import os

from harness.analysis.paired import describe
from harness.report import tables
from harness.report.banner import banner_text, verdict_lines
from harness.report.comparison import STORED_NOTE
from harness.report.facts import headline, machine_text, within_run
from harness.report.format import md_code, md_text, one_line, percent
from harness.result import MatrixReport, TargetError, WriteError, append_bytes


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"


def verdict_counts(comparison, text=md_text) -> str:
    """``12 verdicts (6 metrics of 2 cells): 4 slower, 2 larger, 6 no change; the 4 slower on
    gated metrics (total_s, process_wall_s) fail the check``: each verdict in its display
    word, and which of them are the gate's, so that "8 slower" beside "4 gated metrics" reads
    as what it is."""
    counts: dict[str, int] = {}
    for v in comparison.verdicts:
        counts[v.word] = counts.get(v.word, 0) + 1
    cells = len({v.cell_id for v in comparison.verdicts})
    metrics = len({v.metric for v in comparison.verdicts})
    gated = comparison.regressions()
    line = (
        f"{_plural(len(comparison.verdicts), 'verdict')} ({_plural(metrics, 'metric')} of "
        f"{_plural(cells, 'cell')}): " + ", ".join(f"{n} {text(k)}" for k, n in sorted(counts.items()))
    )
    names = ", ".join(comparison.gated_metrics) or "none"
    if gated:
        line += f"; {len(gated)} of the slower are on gated metrics ({text(names)}) and fail the check"
    else:
        line += f"; none slower on the gated metrics ({text(names)})"
    return line


def markdown(
    report: MatrixReport, comparison=None, baseline_path=None, baseline_note: str | None = None
) -> str:
    """The summary's Markdown; ``comparison`` (harness.analysis.compare.Comparison) adds its verdicts."""
    return render(report, comparison, baseline_path, baseline_note, fmt="md")


def render(
    report: MatrixReport,
    comparison=None,
    baseline_path=None,
    baseline_note: str | None = None,
    *,
    fmt: str = "md",
) -> str:
    """The summary as Markdown (``md``: a job summary) or plain text (``text``: a terminal,
    no Markdown escapes, headings or folds)."""
    md = fmt == "md"
    text = md_text if md else one_line
    code = md_code if md else one_line
    facts = headline(report)
    failed, cold = facts.failed, facts.cold
    within = within_run(report)
    problems = []
    if within is not None and within.regressions():
        slower = within.regressions()
        problems.append(
            f"{_plural(len(slower), 'gated metric')} slower than torch {text(within.reference)} "
            "in this run: "
            + ", ".join(f"{text(v.cell_id)} {text(v.metric)} {percent(v.change)}" for v in slower)
        )
    if comparison is not None and comparison.regressions():
        regressions = comparison.regressions()
        problems.append(
            f"{_plural(len(regressions), 'regression')}: "
            + ", ".join(f"{text(v.cell_id)} {text(v.metric)} {percent(v.change)}" for v in regressions)
        )
    if failed:
        problems.append(f"{_plural(len(failed), 'failed cell')}: " + ", ".join(text(f.cell) for f in failed))
    if problems:
        verdict = "❌ " + "; ".join(problems)
    elif comparison is not None:
        verdict = f"✅ no regression against the baseline ({len(comparison.verdicts)} metrics compared)"
    else:
        verdict = f"✅ all {facts.cells} cells complete"
    lines = [f"### {verdict}" if md else verdict, ""]
    # The answer first: one line per compared pair, with what differs between its environments.
    banner = banner_text(verdict_lines(report, [within, comparison]), fmt)
    if banner:
        lines += [banner.rstrip("\n"), ""]
    if cold.cells:
        cold_text = (
            f"all {cold.samples} cold samples verified cold"
            if cold.verified
            else f"⚠ cold NOT verified ({cold.flagged} of {cold.samples} samples started cached)"
        )
    else:
        cold_text = "no cold cells"
    lines.append(
        f"Run {code(facts.run_id)}: {facts.complete}/{facts.cells} cells complete, "
        f"{facts.samples} samples, {cold_text}."
    )
    if facts.contended:
        said = ", ".join(f"{code(cid)} {n} of {of}" for cid, n, of in facts.contended)
        lines.append(f"⚠ samples taken under contention (they waited for a CPU): {said}.")
    missed = facts.total_target_missed
    if missed:
        lines.append(f"⚠ {len(missed)} cell{'s' if len(missed) > 1 else ''} miss the total-load target.")
    if comparison is not None:
        lines.append(
            f"Against {code(baseline_path)}: {verdict_counts(comparison, text)} ({text(STORED_NOTE, 400)})."
        )
    elif baseline_note:
        lines.append(f"Baseline: {text(baseline_note, 300)}.")
    if within is not None:
        lines.append(
            f"Within the run, against torch {text(within.reference)}: {verdict_counts(within, text)} "
            f"({text(describe(within), 400)})."
        )
    for machine in facts.machines.values():
        lines.append(f"Machine: {text(machine_text(machine), 300)}.")
    lines.append("")
    if report.cells:
        # Visible: the total load time; folded: every headline table, environments and
        # failures, as `merge --format md` prints them (one source: harness.report.tables).
        total = tables.render(report, fmt, metrics=["total_s"]).strip()
        if md:
            lines.append(total.split("\n", 1)[1].strip() if total.startswith("## ") else total)
            lines += [
                "",
                "<details><summary>All headline tables</summary>",
                "",
                tables.render(report, "md").strip(),
                "",
                "</details>",
            ]
        else:
            lines.append(total)
            lines += ["", "Every headline table: python -m harness merge RUN_DIR, or the HTML report."]
    return "\n".join(lines) + "\n"


def append(text: str, path: str | os.PathLike) -> None:
    """Add ``text`` to a job summary file (``$GITHUB_STEP_SUMMARY``), after what earlier steps
    wrote. A path that cannot be written is one line naming the variable: WriteError's exit
    status (3), or TargetError's (2) for a device or a folder."""
    try:
        append_bytes(path, (text + "\n").encode("utf-8"))
    except (WriteError, TargetError) as exc:
        raise type(exc)(f"GITHUB_STEP_SUMMARY={exc}") from None
