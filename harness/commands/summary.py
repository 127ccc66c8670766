"""``python -m harness summary INPUT [--baseline FILE|auto]``: the lines a CI job summary needs.

Verdict first (✅ / ❌), then the facts and the total-load table (:mod:`harness.report.summary`
writes them). Appends to ``$GITHUB_STEP_SUMMARY`` when that is set, else prints. Exit 0
even with a regression: the gate is ``compare``; a summary only tells. A summary file that
cannot be written is one line, exit 3.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from harness.commands.argtypes import add_baseline_options


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "input", type=Path, metavar="INPUT", help="a merged report, a run folder or a cell report"
    )
    add_baseline_options(parser)


def run(args: argparse.Namespace) -> int:
    from harness.report import facts, summary

    report, _source = facts.load_input(args.input)
    baseline_path, note = facts.baseline_for(args.baseline, report, args.baselines_dir)
    comparison = facts.compare_with(baseline_path, report) if baseline_path else None
    text = summary.markdown(report, comparison, baseline_path, note)
    target = os.environ.get("GITHUB_STEP_SUMMARY")
    if target:
        summary.append(text, target)
    else:
        print(text, end="")
    return 0
