"""``python -m harness run-cells``: the matrix cells of one torch version, in the environment
nox built for it, each in its own ``harness profile`` process (see harness/measure/manager.py).

Exit status: 0 when every cell completed, 1 when any failed (its report says why), 2 for
bad input, 130 on Ctrl-C (finished cells and samples are kept; ``--resume`` goes on).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.commands.argtypes import non_negative_int, positive_int, timeout_seconds
from harness.result import MODES


def _modes(text: str) -> list[str]:
    modes = [m.strip() for m in text.split(",") if m.strip()]
    for mode in modes:
        if mode not in MODES:
            raise argparse.ArgumentTypeError(f"mode {mode!r} is not cold or warm")
    if not modes:
        raise argparse.ArgumentTypeError("give cold, warm or cold,warm")
    return modes


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--matrix", type=Path, default=Path("matrix.yaml"), help="the matrix file (default: %(default)s)"
    )
    parser.add_argument(
        "--torch",
        required=True,
        metavar="VERSION",
        help="this environment: its id (torch-2.13.0-transformers-5.17.0) or torch version",
    )
    parser.add_argument(
        "--modes",
        type=_modes,
        default=None,
        metavar="MODES",
        help="comma-separated modes to run (default: every mode of the matrix)",
    )
    parser.add_argument(
        "--run-dir", type=Path, required=True, help="where cell reports go: reports/runs/<run id>"
    )
    parser.add_argument("--runs", type=positive_int, help="counted samples per cell (default: the matrix's)")
    parser.add_argument(
        "--warmups", type=non_negative_int, help="warm-up samples per cell (default: the matrix's)"
    )
    parser.add_argument("--timeout", type=timeout_seconds, help="seconds per sample (default: the matrix's)")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="run only the cells whose report in --run-dir is missing or not complete",
    )
    parser.add_argument("--any-torch", action="store_true", help=argparse.SUPPRESS)


def run(args: argparse.Namespace) -> int:
    from harness.matrix import load_matrix
    from harness.measure import manager

    matrix = load_matrix(args.matrix).with_overrides(
        runs=args.runs, warmups=args.warmups, timeout_s=args.timeout
    )
    cells = matrix.cells_for(args.torch, args.modes)
    if not cells:
        modes = "/".join(args.modes or matrix.modes)
        print(f"run-cells: the matrix has no {modes} cells for torch {args.torch}")
        return 0
    if not args.any_torch:
        manager.check_installed_torch(cells[0].torch.version)
    manager.record_plan(args.run_dir, matrix, cells)
    outcomes = manager.run_cells(
        cells, args.run_dir, resume=args.resume, log=lambda line: print(line, flush=True)
    )
    failed = [o for o in outcomes if o.status not in ("complete", "skipped")]
    complete = len(outcomes) - len(failed)
    print(f"run-cells: {complete} of {len(outcomes)} cells complete; reports in {args.run_dir}")
    return 1 if failed else 0
