"""``python -m harness summary INPUT [--baseline FILE|auto]``: the lines a CI job summary needs.

Verdict first (✅ / ❌), then the facts (cells, samples, cold cache, machine) and the total
load time table of the console (:func:`harness.tables.render`, markdown). Appends to
``$GITHUB_STEP_SUMMARY`` when that is set, else prints. Exit 0 even with a regression: the
gate is ``compare``; a summary only tells.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from harness.commands.argtypes import add_baseline_options


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", type=Path, metavar="INPUT",
                        help="a merged report, a run folder or a cell report")
    add_baseline_options(parser)


def markdown(report: dict, comparison=None, baseline_path=None, baseline_note: str | None = None) -> str:
    from harness.report import html as htmlreport
    from harness.report import tables

    facts = htmlreport.headline(report)
    failed, cold = facts["failed"], facts["cold"]
    problems = []
    if comparison is not None and comparison.regressions():
        regressions = comparison.regressions()
        problems.append(f"{len(regressions)} regression{'s' if len(regressions) > 1 else ''}: " + ", ".join(
            f"{v.cell_id} {v.metric} {v.change * 100:+.1f}%" for v in regressions))
    if failed:
        problems.append(f"{len(failed)} failed cell{'s' if len(failed) > 1 else ''}: " +
                        ", ".join(f["cell"] for f in failed))
    if problems:
        verdict = "❌ " + "; ".join(problems)
    elif comparison is not None:
        verdict = f"✅ no regression against the baseline ({len(comparison.verdicts)} metrics compared)"
    else:
        verdict = f"✅ all {facts['cells']} cells complete"
    lines = [f"### {verdict}", ""]
    if cold["cells"]:
        cold_text = (f"all {cold['samples']} cold samples verified cold" if cold["verified"] else
                     f"⚠ cold NOT verified ({cold['flagged']} of {cold['samples']} samples started cached)")
    else:
        cold_text = "no cold cells"
    lines.append(f"Run `{facts['run_id']}`: {facts['complete']}/{facts['cells']} cells complete, "
                 f"{facts['samples']} samples, {cold_text}.")
    missed = facts["total_target_missed"]
    if missed:
        lines.append(f"⚠ {len(missed)} cell{'s' if len(missed) > 1 else ''} miss the total-load target.")
    if comparison is not None:
        counts = {}
        for v in comparison.verdicts:
            counts[v.verdict] = counts.get(v.verdict, 0) + 1
        lines.append(f"Against `{baseline_path}`: " + ", ".join(f"{n} {k}" for k, n in sorted(counts.items())) + ".")
    elif baseline_note:
        lines.append(f"Baseline: {baseline_note}.")
    for machine in facts["machines"].values():
        lines.append(f"Machine: {htmlreport.machine_text(machine)}.")
    lines.append("")
    if report["cells"]:
        # Visible: the total load time; folded: every headline table, environments and
        # failures, as `merge --format md` prints them (one source: harness.report.tables).
        total = tables.render(report, "md", metrics=["total_s"]).strip()
        lines.append(total.split("\n", 1)[1].strip() if total.startswith("## ") else total)
        lines += ["", "<details><summary>All headline tables</summary>", "",
                  tables.render(report, "md").strip(), "", "</details>"]
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    from harness.report import html as htmlreport
    from harness.errors import UserError

    report, _source = htmlreport.load_input(args.input)
    baseline_path, note = htmlreport.baseline_for(args.baseline, report, args.baselines_dir)
    comparison = htmlreport.compare_with(baseline_path, report) if baseline_path else None
    text = markdown(report, comparison, baseline_path, note)
    target = os.environ.get("GITHUB_STEP_SUMMARY")
    if target:
        try:
            with open(target, "a", encoding="utf-8") as fh:
                fh.write(text + "\n")
        except OSError as exc:
            raise UserError(f"GITHUB_STEP_SUMMARY={target}: cannot append ({exc.strerror or exc})") from None
    else:
        print(text, end="")
    return 0
