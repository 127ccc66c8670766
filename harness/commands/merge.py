"""``python -m harness merge reports/runs/<run id>``: the merged report and its tables.

Writes ``reports/matrix-<run id>.json`` (or ``--output``), adds the run to the history
(``reports/history``), and prints one table per headline metric: text, GitHub markdown
(``--format md``, for a job summary) or JSON. With ``--baseline FILE|auto`` each cell also
shows its change against the baseline's same cell.

Exit status: 0 when every planned cell is complete, 1 when some failed or never ran (the
tables say which and why), 2 for a run folder or baseline that cannot be used, 3 when the
merged report or the history cannot be written (one line; a merged report already written
is kept).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a run folder: reports/runs/<run id>")
    parser.add_argument(
        "--format",
        choices=["text", "md", "json"],
        default="text",
        help="tables as text, GitHub markdown or JSON (default: %(default)s)",
    )
    parser.add_argument(
        "--baseline",
        metavar="FILE|auto",
        help="show each cell's change against this report ('auto': this machine's stored baseline)",
    )
    parser.add_argument(
        "--output", "-o", type=Path, help="merged report (default: reports/matrix-<run id>.json)"
    )
    parser.add_argument(
        "--history",
        type=Path,
        default=Path("reports/history"),
        help="history folder the run is added to (default: %(default)s)",
    )
    parser.add_argument("--no-history", action="store_true", help="do not add the run to the history")
    parser.add_argument(
        "--cpu",
        action="store_true",
        help="add the CPU figures to the tables (CPU time per stage, waiting for a CPU, switches, faults)",
    )
    parser.add_argument(
        "--skip-bad",
        action="store_true",
        help="leave out unreadable cell files (named in a warning) instead of stopping",
    )


def run(args: argparse.Namespace) -> int:
    import json

    from harness.analysis.merge import default_output, merge_run
    from harness.report import tables
    from harness.result import CPU_METRICS, HEADLINE_METRICS, WriteError, read_cells

    report, warnings = merge_run(args.run_dir, skip_bad=args.skip_bad)
    output = args.output or default_output(args.run_dir)
    report.write(output)
    for warning in warnings:
        print(f"harness merge: warning: {warning}", file=sys.stderr)

    history_note = None
    if not args.no_history:
        from harness.analysis import history

        problems: list[str] = []
        try:
            history_note = str(history.record(report, root=args.history, path=output, warnings=problems))
        except WriteError as exc:
            raise WriteError(f"{exc}; the merged report is written: {output}") from None
        for problem in problems:
            print(f"harness merge: warning: {problem}", file=sys.stderr)

    changes, baseline_label = None, None
    if args.baseline:
        from harness.analysis import baseline as baselines

        base_path = baselines.resolve(args.baseline, output)
        baseline_label = str(base_path)
        changes, cross = tables.changes_against(read_cells(base_path), report.cells)
        if cross:
            print(
                f"harness merge: warning: {base_path} comes from another machine; "
                f"its differences may be the machines'",
                file=sys.stderr,
            )

    metrics = HEADLINE_METRICS + (CPU_METRICS if args.cpu else [])
    where = {"cell reports": str(args.run_dir), "merged report": str(output)}
    if history_note:
        where["history"] = history_note
    if args.format == "json":
        data = tables.table_data(report, metrics=metrics, changes=changes)
        data["report"] = str(output)
        data["where"] = where
        print(json.dumps(data, indent=2))
    else:
        from harness.report.banner import banner_text, verdict_lines
        from harness.report.facts import within_run

        print(
            tables.render(
                report,
                args.format,
                metrics=metrics,
                changes=changes,
                baseline_label=baseline_label,
                where=where,
            ),
            end="",
        )
        # The answer last on a console, where the run's output ends: one line per compared pair.
        banner = banner_text(verdict_lines(report, [within_run(report)]), args.format)
        if banner:
            print(f"\n{banner}", end="")
    incomplete = [c for c in report.cells.values() if c.status != "complete"] + report.missing
    return 1 if incomplete else 0
