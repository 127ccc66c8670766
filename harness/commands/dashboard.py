"""``python -m harness dashboard --history DIR --runs DIR --out SITE``: a static site across runs.

Reads the history index (``reports/history``) and whatever merged reports
(``matrix-<run id>.json``) are under ``--runs``, and writes under ``--out`` a site that
needs no server and no network: a front page that opens on regressions, a page per cell
with its trend and steps (and the packages that moved at each), the environments per run,
and two-run comparisons at stable URLs (``compare/A__B.html``; ``--compare A B`` builds one
more). Prints the front page's path.

Exit status: 0; 2 for a history or a run that cannot be used (one line); 3 when the site
cannot be written.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from harness.commands.argtypes import add_verdict_options


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--history",
        type=Path,
        default=Path("reports/history"),
        help="history folder (its index.jsonl; default: %(default)s)",
    )
    parser.add_argument(
        "--runs",
        type=Path,
        default=Path("reports"),
        help="folder of the merged reports, matrix-<run id>.json (default: %(default)s)",
    )
    parser.add_argument(
        "--out", type=Path, default=Path("reports/dashboard"), help="the site's folder (default: %(default)s)"
    )
    parser.add_argument(
        "--compare",
        nargs=2,
        action="append",
        default=[],
        metavar=("BASELINE", "CURRENT"),
        help="also build the comparison of these two runs (run ids; repeatable)",
    )
    add_verdict_options(parser)


def run(args: argparse.Namespace) -> int:
    from harness.dashboard import model, site

    dashboard = model.build(
        args.history, args.runs, gated=tuple(args.fail_on), threshold=args.threshold, alpha=args.alpha
    )
    for warning in dashboard.warnings:
        print(f"harness dashboard: warning: {warning}", file=sys.stderr)
    pairs = [tuple(pair) for pair in args.compare]
    for baseline, current in pairs:
        for run_id in (baseline, current):
            found = dashboard.run(run_id)
            if found is None:
                raise model.DashboardError(
                    f"--compare {baseline} {current}: run {run_id!r} is not in the history"
                )
            if found.report is None:
                raise model.DashboardError(
                    f"--compare {baseline} {current}: no merged report of run {run_id} under {args.runs} "
                    f"(matrix-{run_id}.json)"
                )
    command = " ".join(
        ["python -m harness dashboard"]
        + [f"--{name} {shlex.quote(str(getattr(args, name)))}" for name in ("history", "runs", "out")]
    )
    site.build_site(dashboard, args.out, extra_pairs=pairs, command=command)
    print(args.out / "index.html")
    return 0
