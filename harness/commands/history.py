"""``python -m harness history``: per cell, the median total over merged runs, with steps."""

from __future__ import annotations

import argparse
import sys

SPARK = "▁▂▃▄▅▆▇█"


def configure(parser: argparse.ArgumentParser) -> None:
    # --history, as merge and report name the same folder; --root, its older name, still works.
    parser.add_argument(
        "--history",
        "--root",
        dest="root",
        default="reports/history",
        help="history folder (default: %(default)s; --root is the older name)",
    )
    parser.add_argument(
        "--format", choices=["text", "md", "json"], default="text", help="output (default: text)"
    )
    parser.add_argument(
        "--metric", default="total_s", help="the metric whose median to follow (default: %(default)s)"
    )


def _spark(values: list[float]) -> str:
    low, high = min(values), max(values)
    if high == low:
        return SPARK[0] * len(values)
    return "".join(SPARK[int((v - low) / (high - low) * (len(SPARK) - 1))] for v in values)


def run(args: argparse.Namespace) -> int:
    import json

    from tabulate import tabulate

    from harness.analysis import history
    from harness.errors import UserError
    from harness.result import METRICS

    if args.metric not in METRICS:
        raise UserError(f"unknown metric {args.metric!r}; known: {', '.join(METRICS)}")
    problems: list[str] = []
    entries = history.load(args.root, problems)
    for problem in problems:
        print(f"harness history: warning: {problem}", file=sys.stderr)
    trends = history.trends(entries, args.metric)
    if args.format == "json":
        print(
            json.dumps(
                {"runs": [e.run_id for e in entries], "metric": args.metric, "cells": trends}, indent=2
            )
        )
        return 0
    if not entries:
        print(f"no runs recorded under {args.root} (merge records each matrix run)")
        return 0
    rows = []
    for cell_id, trend in sorted(trends.items()):
        values = [p[2] for p in trend["points"]]
        flagged = []
        for i in trend["steps"]:
            before = values[i - 1]
            flagged.append(f"{trend['points'][i][0]} ({(values[i] - before) / before * 100:+.0f}%)")
        rows.append(
            [
                cell_id,
                len(values),
                f"{values[0]:.3f}",
                f"{values[-1]:.3f}",
                _spark(values),
                ", ".join(flagged) or "–",
            ]
        )
    unit = METRICS[args.metric].unit
    print(
        f"runs: {len(entries)}; median {args.metric} ({unit}) per run, oldest to newest; "
        "a step needs two runs on the new level"
    )
    print(
        tabulate(
            rows,
            headers=["cell", "runs", "first", "latest", "trend", "step at run"],
            tablefmt="github" if args.format == "md" else "simple",
            disable_numparse=True,
        )
    )
    return 0
