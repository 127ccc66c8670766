"""``python -m harness compare BASELINE CURRENT``: the statistical verdict, cell by cell; and
``python -m harness compare REPORT --within torch``: within one run, each cell against the
cell that differs from it in that axis only, round by round (:mod:`harness.analysis.paired`).

Exit status: 0, or 1 when a cell is slower on a gated metric (``--fail-on``), so a CI job
fails on a real regression and only on one; 2 for unusable input (one line), two reports with no cell in
common among it: a gate that compared nothing does not pass.
"""

from __future__ import annotations

import argparse

from harness.commands.argtypes import DEFAULT_BASELINES, add_verdict_options
from harness.errors import UserError


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "reports",
        nargs="+",
        metavar="REPORT",
        help="BASELINE CURRENT (cell or matrix reports); BASELINE may be 'auto', the stored "
        "baseline of CURRENT's machine; a single REPORT means 'auto REPORT'",
    )
    parser.add_argument(
        "--baseline", help="the baseline (a report path or 'auto'), instead of the first REPORT"
    )
    add_verdict_options(parser)
    parser.add_argument(
        "--format", choices=["text", "md", "json"], default="text", help="output (default: text)"
    )
    parser.add_argument(
        "--wide",
        action="store_true",
        help="text: every column (p, rounds, detects ≥, the reference cell) and full cell ids, prose "
        "unwrapped (default: fits 100 columns)",
    )
    parser.add_argument(
        "--allow-cross-machine",
        action="store_true",
        help="compare reports of different machines (the heading says so)",
    )
    parser.add_argument(
        "--within",
        metavar="AXIS",
        help="compare within one REPORT (a merged report or a run folder): each cell against the "
        "cell that differs in AXIS only (torch, model, mode, device, backend, dtype, or a packages: name "
        "such as transformers), paired round by round",
    )
    parser.add_argument(
        "--baselines-dir",
        default=DEFAULT_BASELINES,
        help="where stored baselines live (default: %(default)s)",
    )


def run(args: argparse.Namespace) -> int:
    from harness.analysis import baseline as baselines
    from harness.analysis.compare import compare_files
    from harness.report.comparison import render

    reports = list(args.reports)
    if args.within is not None:
        return _within(args, reports)
    if args.baseline is not None:
        if len(reports) != 1:
            raise UserError("with --baseline give one report, the current one")
        reports.insert(0, args.baseline)
    elif len(reports) == 1:
        reports.insert(0, "auto")
    if len(reports) != 2:
        raise UserError(f"give BASELINE and CURRENT, not {len(reports)} reports")
    spec, current = reports
    if not current:
        raise UserError("no current report given (no reports/matrix-*.json yet? pass CURRENT=...)")
    baseline = baselines.resolve(spec, current, args.baselines_dir)
    comparison = compare_files(
        baseline,
        current,
        threshold=args.threshold,
        alpha=args.alpha,
        fail_on=args.fail_on,
        allow_cross_machine=args.allow_cross_machine,
    ).require_common_cells()
    print(render(comparison, args.format, wide=args.wide), end="")
    return comparison.exit_code()


def _within(args: argparse.Namespace, reports: list[str]) -> int:
    """The paired comparison within one run."""
    from harness.analysis.paired import compare_within
    from harness.report.comparison import render
    from harness.report.facts import load_input

    if len(reports) != 1 or args.baseline is not None:
        raise UserError("with --within give one report (a merged report or a run folder), and no baseline")
    report, _source = load_input(reports[0])
    comparison = compare_within(
        report, args.within, threshold=args.threshold, alpha=args.alpha, fail_on=args.fail_on
    )
    print(render(comparison, args.format, wide=args.wide), end="")
    return comparison.exit_code()
