"""``python -m harness summary INPUT [--baseline FILE|auto]``: the lines a CI job summary needs.

Verdict first (✅ / ❌), then one line per compared pair, the facts and the total-load table
(:mod:`harness.report.summary` writes them). Appends Markdown to ``$GITHUB_STEP_SUMMARY``
when that is set, else prints plain text (``--format md``: Markdown). Exit 0
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
    parser.add_argument(
        "--format",
        choices=["text", "md"],
        help="plain text or GitHub Markdown (default: md when $GITHUB_STEP_SUMMARY is set, else text)",
    )


def run(args: argparse.Namespace) -> int:
    from harness.report import facts, summary

    report, _source = facts.load_input(args.input)
    baseline_path, note = facts.baseline_for(args.baseline, report, args.baselines_dir)
    comparison = facts.compare_with(baseline_path, report) if baseline_path else None
    target = os.environ.get("GITHUB_STEP_SUMMARY")
    fmt = args.format or ("md" if target else "text")
    text = summary.render(report, comparison, baseline_path, note, fmt=fmt)
    if target:
        summary.append(text, target)
    else:
        print(text, end="")
    return 0
