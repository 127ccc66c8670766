"""``python -m harness run-cells``: measure the matrix cells of one or more torch versions
whose environments nox built, in interleaved rounds (or cell by cell), then compute their
statistics (see harness/measure/manager.py for the order, harness/measure/rounds.py for
the measuring process).

Each cell's samples run in its own environment's Python: ``--python ENV=PYTHON`` names it
per environment (``torch-2.13.0=.nox/.../bin/python``); an environment not named is this
Python's, whose torch must then be the cell's.

Exit status: 0 when every cell completed, 1 when any failed (its report says why), 2 for
bad input, 130 on Ctrl-C (finished samples are kept; ``--resume`` goes on).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.commands.argtypes import non_negative_int, positive_int, timeout_seconds
from harness.errors import UserError
from harness.result import MODES


def _modes(text: str) -> list[str]:
    modes = [m.strip() for m in text.split(",") if m.strip()]
    for mode in modes:
        if mode not in MODES:
            raise argparse.ArgumentTypeError(f"mode {mode!r} is not cold or warm")
    if not modes:
        raise argparse.ArgumentTypeError("give cold, warm or cold,warm")
    return modes


def _envs(text: str) -> list[str]:
    envs = [v.strip() for v in text.split(",") if v.strip()]
    if not envs:
        raise argparse.ArgumentTypeError(
            "give an environment id or a torch version, or several separated by commas"
        )
    return envs


def order(text: str) -> str:
    """--order's value (nox's ``-- --order`` reads it here too)."""
    from harness.matrix.model import ORDERS

    if text not in ORDERS:
        raise argparse.ArgumentTypeError(f"{text!r} is not {' or '.join(ORDERS)}")
    return text


def _ids(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _python(text: str) -> tuple[str, str]:
    env, sep, python = text.partition("=")
    if not sep or not env or not python:
        raise argparse.ArgumentTypeError(f"{text!r}: write ENV=PYTHON, e.g. torch-2.13.0=.nox/x/bin/python")
    if not Path(python).is_file():
        raise argparse.ArgumentTypeError(f"{text!r}: {python} is not a file")
    return env, python


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--matrix", type=Path, default=Path("matrix.yaml"), help="the matrix file (default: %(default)s)"
    )
    # --torch is its first name, kept: it takes environment ids as well as torch versions.
    parser.add_argument(
        "--env",
        "--torch",
        dest="envs",
        required=True,
        type=_envs,
        metavar="ENVS",
        help="the environments whose cells to measure, comma-separated: environment ids "
        "(torch-2.13.0-transformers-5.17.0) or torch versions (every environment of that "
        "version); --torch is the same option",
    )
    parser.add_argument(
        "--cells",
        type=_ids,
        metavar="IDS",
        help="only these cells (comma-separated ids) of those environments and modes",
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
    parser.add_argument(
        "--python",
        type=_python,
        action="append",
        default=[],
        metavar="ENV=PYTHON",
        help="the Python of an environment (ENV: its id, torch-2.13.0; the one of its other "
        "backends beside it: torch-2.13.0+onnx+openvino), repeatable; default: this one",
    )
    parser.add_argument(
        "--reference-python",
        type=_python,
        action="append",
        default=[],
        metavar="ENV=PYTHON",
        help="a reference run: the Python of the baseline's environment ENV rebuilt from its lock; "
        "every cell of ENV is also measured there as <cell id>@baseline, in the same rounds "
        "(repeatable)",
    )
    parser.add_argument(
        "--order",
        type=order,
        help="interleaved: rounds, each cell once per round in a shuffled order; sequential: "
        "cell by cell (default: the matrix's order:)",
    )
    parser.add_argument(
        "--seed", type=non_negative_int, help="the seed of the rounds' shuffles (default: a random one)"
    )
    parser.add_argument("--runs", type=positive_int, help="counted samples per cell (default: the matrix's)")
    parser.add_argument(
        "--warmups", type=non_negative_int, help="warm-up samples per cell (default: the matrix's)"
    )
    parser.add_argument("--timeout", type=timeout_seconds, help="seconds per sample (default: the matrix's)")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="measure only the samples the reports in --run-dir lack, each in its recorded round",
    )
    parser.add_argument(
        "--inherit-env",
        action="store_true",
        help="pass the caller's whole environment to the probes (default: minus a deny-list)",
    )
    parser.add_argument("--any-torch", action="store_true", help=argparse.SUPPRESS)


def run(args: argparse.Namespace) -> int:
    from harness.matrix import load_matrix
    from harness.measure import manager

    matrix = load_matrix(args.matrix).with_overrides(
        runs=args.runs, warmups=args.warmups, timeout_s=args.timeout
    )
    cells = list({cell.id: cell for key in args.envs for cell in matrix.cells_for(key, args.modes)}.values())
    if args.cells is not None:
        unknown = sorted(set(args.cells) - {cell.id for cell in cells})
        if unknown:
            where = ", ".join(args.envs)
            raise UserError(f"--cells: {unknown[0]} is not a cell of {where} in {args.matrix}")
        cells = [cell for cell in cells if cell.id in args.cells]
    if not cells:
        modes = "/".join(args.modes or matrix.modes)
        print(f"run-cells: the matrix has no {modes} cells for {', '.join(args.envs)}")
        return 0
    given = dict(args.python)

    def named(cell) -> str | None:
        """The Python named for the cell: the one of its environment with its backend's
        extra (<id>+onnx+openvino) for a backend besides torch, else its environment's."""
        if cell.backend != "torch":
            for env, python in given.items():
                base, _, extras = env.partition("+")
                if base == cell.env.id and cell.backend in extras.split("+"):
                    return python
        return given.get(cell.env.id)

    known = {cell.env.id for cell in cells}
    for env in given:
        base, _, extras = env.partition("+")
        if env not in known and not any(
            cell.env.id == base and cell.backend in extras.split("+") for cell in cells
        ):
            raise UserError(f"--python {env}=...: no cell to run is in {env} ({', '.join(sorted(known))})")

    if not args.any_torch:
        for spec in {cell.torch for cell in cells if named(cell) is None}:
            manager.check_installed_torch(spec.version)
    pythons = {cell.id: named(cell) or sys.executable for cell in cells}
    references = dict(args.reference_python)
    for env in references:
        if env not in known:
            raise UserError(
                f"--reference-python {env}=...: no cell to run is in {env} ({', '.join(sorted(known))})"
            )
    # Each reference cell right after its current cell: the rounds shuffle them anyway. The
    # baseline's environment is rebuilt for torch's cells; another backend's cells, loading
    # in an environment of their own, are compared with the stored numbers.
    cells = [
        twin
        for cell in cells
        for twin in (
            [cell, cell.as_reference()] if cell.env.id in references and cell.backend == "torch" else [cell]
        )
    ]
    pythons.update({cell.id: references[cell.env.id] for cell in cells if cell.stack})

    manager.record_plan(args.run_dir, matrix, cells)
    order = args.order or matrix.order
    slots = manager.schedule(args.run_dir, cells, order, resume=args.resume, seed=args.seed)
    rounds = len({slot.round for slot in slots if slot.round is not None})
    shape = f"in {rounds} round(s)" if order == "interleaved" else "cell by cell"
    count = len({slot.cell for slot in slots})
    print(f"run-cells: {len(slots)} sample(s) of {count} cell(s) {shape} -> {args.run_dir}", flush=True)
    with_slots = {slot.cell for slot in slots}
    # Under --resume a cell whose report holds every sample it needs but is not complete
    # (its measuring process died after the last sample, before finishing the cell) has no
    # slot left: it is finished from what is on disk, not left failed.
    settle = {
        cell.id
        for cell in cells
        if args.resume and cell.id not in with_slots and manager.cell_status(args.run_dir, cell) != "complete"
    }
    measured = [cell for cell in cells if cell.id in with_slots or cell.id in settle]
    if measured:
        manager.run_measuring_process(
            measured, pythons, slots, args.run_dir, resume=args.resume, inherit_env=args.inherit_env
        )
    summarize(args.run_dir, measured)

    outcomes = manager.outcomes(args.run_dir, cells)
    for outcome in outcomes:
        note = f": {outcome.note}" if outcome.note else ""
        print(f"  {outcome.cell_id}: {outcome.status}{note}", flush=True)
    failed = [o for o in outcomes if o.status != "complete"]
    complete = len(outcomes) - len(failed)
    print(f"run-cells: {complete} of {len(outcomes)} cells complete; reports in {args.run_dir}")
    return 1 if failed else 0


def summarize(run_dir: Path, cells: list) -> None:
    """Statistics, targets and recommendations of every measured cell's report: only now,
    with the measuring process gone, may numpy and scipy be mapped."""
    from harness.analysis import judge
    from harness.measure.manager import cell_file
    from harness.result import ReportError, read_report

    for cell in cells:
        path = cell_file(run_dir, cell)
        try:
            report = read_report(path)
        except ReportError:
            continue
        if report.samples:
            judge.conclude(report).write(path)
