"""``python -m harness report INPUT --html reports/<name>.html``: the self-contained HTML page.

INPUT is a merged matrix report, a run folder, or one cell report. With ``--baseline``
the page adds the statistical comparison; a reference run (``REFERENCE=baseline``) adds each
cell's paired verdict against its rebuilt baseline environment, with the packages that
differ (stored baselines from ``--baselines-dir``); the history (``reports/history``), when
it holds runs of these cells, adds the trend. Prints the page's path.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.commands.argtypes import add_baseline_options


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "input",
        type=Path,
        metavar="INPUT",
        help="a merged report (reports/matrix-<run id>.json), a run folder (reports/runs/<run id>) "
        "or a cell report",
    )
    parser.add_argument(
        "--html",
        type=Path,
        metavar="FILE",
        help="the page to write (default: INPUT's name with .html, under reports/)",
    )
    add_baseline_options(parser)
    parser.add_argument(
        "--history",
        type=Path,
        default=Path("reports/history"),
        help="history folder for the trend (default: %(default)s)",
    )


def default_html(input_path: Path) -> Path:
    name = input_path.name if input_path.is_dir() else input_path.stem
    return Path("reports") / f"{name}.html"


def run(args: argparse.Namespace) -> int:
    from harness.analysis import history
    from harness.analysis.reference import has_reference, judge_against_stored
    from harness.report import facts
    from harness.report import html as htmlreport

    report, source = facts.load_input(args.input)
    baseline_path, baseline_note = facts.baseline_for(args.baseline, report, args.baselines_dir)
    comparison = facts.compare_with(baseline_path, report) if baseline_path else None
    reference = judge_against_stored(report, args.baselines_dir) if has_reference(report) else None
    problems: list[str] = []
    entries = history.load(args.history, problems)
    for problem in problems:
        print(f"harness report: warning: {problem}", file=sys.stderr)
    trends = history.trends(entries) if entries else None
    history_note = None if entries else f"No runs recorded under {args.history} yet (merge records each run)."
    page = htmlreport.render_page(
        report,
        source,
        comparison=comparison,
        baseline_path=baseline_path,
        baseline_note=baseline_note,
        trends=trends,
        history_note=history_note,
        reference=reference,
    )
    output = htmlreport.write_page(args.html or default_html(args.input), page)
    print(output)
    return 0
