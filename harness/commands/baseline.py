"""``python -m harness baseline save REPORT``: keep a report as this machine's baseline."""

from __future__ import annotations

import argparse

from harness.commands.argtypes import DEFAULT_BASELINES


def configure(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    save = actions.add_parser("save", help="store REPORT as the baseline of the machine that measured it")
    save.add_argument("report", metavar="REPORT", help="a cell or matrix report")
    show = actions.add_parser("list", help="list the stored baselines")
    for sub in (save, show):
        sub.add_argument("--root", default=DEFAULT_BASELINES, help="baseline folder (default: %(default)s)")


def run(args: argparse.Namespace) -> int:
    from harness.analysis import baseline
    from harness.errors import UserError

    if args.action == "save":
        if not args.report:
            raise UserError("no report given (no reports/matrix-*.json yet? pass REPORT=...)")
        path = baseline.save(args.report, args.root)
        print(f"baseline for machine {path.stem}: {path} (from {args.report})")
        return 0
    stored = baseline.stored(args.root)
    if not stored:
        print(f"no baselines under {args.root}")
    for path in stored:
        print(f"{path.stem}  {path}")
    return 0
