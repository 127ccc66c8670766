"""``python -m harness reference REPORT``: the verdict of a reference run (issue 16), each
current cell against ``<cell id>@baseline``, the same cell measured in the same rounds in
the stored baseline's environment rebuilt from its lock (:mod:`harness.analysis.reference`).

``python -m harness reference --resolve SPEC`` checks what ``REFERENCE=SPEC`` names before a
run builds anything: ``baseline`` (the newest stored baseline; none yet is said, not an
error), ``numbers``, or a stored baseline file; prints the baseline it names.

Exit status: 0; 1 when a current cell is slower than its reference on a gated metric (a
slower verdict where the stack did not change is a failed A/A check, reported, not gated);
2 for unusable input (one line), such as a SPEC that is not a stored baseline, or a REPORT
none of whose cells met a reference cell or a stored cell (nothing was compared).
"""

from __future__ import annotations

import argparse

from harness.commands.argtypes import DEFAULT_BASELINES, add_verdict_options
from harness.errors import UserError


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "report",
        nargs="?",
        metavar="REPORT",
        help="a merged matrix report or a run folder of a reference run",
    )
    parser.add_argument(
        "--resolve",
        metavar="SPEC",
        help="only check REFERENCE=SPEC (baseline, numbers or a stored baseline file) and print "
        "the stored baseline it names",
    )
    parser.add_argument(
        "--baselines-dir", default=DEFAULT_BASELINES, help="stored baselines (default: %(default)s)"
    )
    add_verdict_options(parser)
    parser.add_argument("--format", choices=["text", "md"], default="text", help="output (default: text)")


def run(args: argparse.Namespace) -> int:
    from harness.analysis import baseline
    from harness.analysis.reference import judge_against_stored
    from harness.report.facts import load_input
    from harness.report.reference import render

    if (args.report is None) == (args.resolve is None):
        raise UserError("give a REPORT, or --resolve SPEC (not both)")
    if args.resolve is not None:
        path = baseline.reference_for(args.resolve, args.baselines_dir)
        if path is not None:
            print(f"REFERENCE={args.resolve}: {path}")
        elif args.resolve == baseline.REFERENCE_BASELINE:
            print(f"REFERENCE=baseline: no baseline stored under {args.baselines_dir} yet (the first run)")
        else:
            print("REFERENCE=numbers: compared with the stored numbers, nothing rebuilt")
        return 0
    report, _source = load_input(args.report)
    result = judge_against_stored(report, args.baselines_dir, args.threshold, args.alpha, args.fail_on)
    if result.compared_nothing:
        # A gate that compared nothing must not pass as "no regression".
        against = (
            f"and none is in the stored baseline {result.numbers.baseline_label}"
            if result.numbers is not None
            else f"and no baseline of its machine is stored under {args.baselines_dir}"
        )
        raise UserError(
            f"{args.report}: no cell has its reference cell (<cell id>@baseline) {against}: "
            "nothing was compared; judge a reference run (make profile-matrix REFERENCE=baseline)"
        )
    print(render(result, args.format), end="")
    return result.exit_code()
