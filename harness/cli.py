"""``python -m harness``: the command line.

Each verb lives in ``harness/commands/<verb>.py`` with two functions, ``configure(parser)``
and ``run(args) -> int``, imported only when that verb is used so that ``profile`` does not
pay for ``report``'s matplotlib. Errors a user must fix (UserError) become one line on
stderr and exit status 2; Ctrl-C exits 130 after the verb has saved what finished.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import NoReturn

from harness import __version__
from harness.errors import UserError

# verb -> one-line help. The order is the order of the data flow.
COMMANDS = {
    "profile": "profile one model in this environment, cold or warm, over fresh processes",
    "matrix": "validate matrix.yaml and list the cells it expands to",
    "run-cells": "measure the matrix cells of the environments nox built (nox sessions call this)",
    "merge": "merge a run folder's cell reports into tables and reports/matrix-<run id>.json",
    "compare": "compare two reports cell by cell: slower, faster, no change or inconclusive",
    "baseline": "store a report as this machine's baseline",
    "reference": "judge a reference run: each cell against <cell id>@baseline, the baseline's lock rebuilt",
    "history": "show the trend of each cell over merged runs, with step changes",
    "report": "write a self-contained HTML report with plots",
    "summary": "write the few lines a CI job summary needs",
    "dashboard": "write a static site across runs: regressions first, a page per cell, two-run comparisons",
    "ci": "CI matrix glue: gather runner folders, compare and store baselines per machine",
}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, exit 2, as for every other bad input
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="harness", description="Embedding-model load-time harness.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for verb, help_text in COMMANDS.items():
        module = _command_module(verb)
        if module is None:
            continue
        verb_parser = sub.add_parser(verb, help=help_text, description=help_text)
        module.configure(verb_parser)
        verb_parser.set_defaults(_run=module.run)
    return parser


def _command_module(verb: str):
    try:
        return importlib.import_module(f"harness.commands.{verb.replace('-', '_')}")
    except ModuleNotFoundError as exc:
        if exc.name == f"harness.commands.{verb.replace('-', '_')}":
            return None
        raise


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except UserError as exc:
        print(f"harness {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:
        # `python -m harness matrix --json | head`: the reader left; that is not an error.
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print(f"harness {args.command}: interrupted; finished results are kept", file=sys.stderr)
        return 130
