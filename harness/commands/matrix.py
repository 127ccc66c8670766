"""``python -m harness matrix``: check matrix.yaml and show the cells it expands to.

A person reads the table; a CI job reads ``--json`` (the cells) or ``--github`` (a job
matrix for ``fromJSON``: one job per mode holding every environment, interleaved there; or,
with ``order: sequential``, one per nox session, i.e. per environment and mode).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--matrix",
        type=Path,
        default=Path("matrix.yaml"),
        metavar="FILE",
        help="the matrix file (default: %(default)s)",
    )
    output = parser.add_mutually_exclusive_group()
    output.add_argument(
        "--resolve",
        action="store_true",
        help="resolve every environment a run would build with uv (uv pip compile, nothing "
        "installed) and list each that cannot resolve, with uv's reason; exit 2 if any cannot",
    )
    output.add_argument("--json", action="store_true", help="print the cells as JSON")
    output.add_argument(
        "--github",
        action="store_true",
        help="print a GitHub Actions job matrix (for fromJSON): one job per mode (interleaved) "
        "or per nox session (order: sequential)",
    )


def github_matrix(matrix) -> dict:
    """``{"include": [...]}``: in an interleaved matrix one entry per mode, holding every
    environment (the cells a paired comparison needs measure side by side on one runner:
    ``nox -s cold_start`` interleaves them); in a sequential one, one per (environment, mode)."""
    if matrix.order == "interleaved":
        modes: dict[str, list] = {}
        for _, mode, cells in matrix.sessions():
            modes.setdefault(mode, []).extend(cells)
        return {
            "include": [
                {
                    "name": f"{mode} {' '.join(dict.fromkeys(cell.env.id for cell in cells))}",
                    "session": cells[0].session.split("(")[0],
                    "torch": " ".join(dict.fromkeys(cell.torch.version for cell in cells)),
                    "mode": mode,
                    "cells": [cell.id for cell in cells],
                }
                for mode, cells in modes.items()
            ]
        }
    return {
        "include": [
            {
                "name": f"{mode} {env.id.replace('-', ' ', 1)}",
                "session": cells[0].session,
                "torch": env.torch.version,
                "mode": mode,
                "cells": [cell.id for cell in cells],
            }
            for env, mode, cells in matrix.sessions()
        ]
    }


def run(args: argparse.Namespace) -> int:
    from harness.matrix import load_matrix

    matrix = load_matrix(args.matrix)
    if args.resolve:
        from harness.envs import resolve

        text, status = resolve.report(args.matrix, resolve.resolve_matrix(matrix))
        print(text, file=sys.stderr if status else sys.stdout)
        return status
    if args.json:
        print(json.dumps([cell.to_dict() for cell in matrix.cells], indent=2))
        return 0
    if args.github:
        # One line: a GitHub step writes it to $GITHUB_OUTPUT as `cells=<json>`.
        print(json.dumps(github_matrix(matrix), separators=(",", ":")))
        return 0

    from tabulate import tabulate

    # backend and dtype columns only when some cell is not torch float32.
    variants = any((cell.backend, cell.dtype) != ("torch", "float32") for cell in matrix.cells)
    rows = [
        [cell.id, cell.model.name, cell.model.source, cell.torch.version, cell.mode, cell.device]
        + ([cell.backend, cell.dtype] if variants else [])
        + [cell.runs]
        for cell in matrix.cells
    ]
    headers = ["id", "model", "source", "torch", "mode", "device"]
    print(tabulate(rows, headers=headers + (["backend", "dtype"] if variants else []) + ["runs"]))
    # What `make profile-matrix` runs: nox -s profile_matrix, one session per environment
    # (building it), then `measure`, which measures every cell built (interleaved rounds
    # across environments unless order: sequential). cold_start / warm_start build for one
    # mode alone.
    envs = list(dict.fromkeys(env.id for env, _, _ in matrix.sessions()))
    count = len(matrix.cells)
    modes = list(dict.fromkeys(mode for _, mode, _ in matrix.sessions()))
    print(
        f"\n{args.matrix}: {count} cell{'s' if count != 1 else ''} in {len(envs)} "
        f"environment{'s' if len(envs) != 1 else ''}; python {matrix.python}\n"
        f"make profile-matrix runs nox -s profile_matrix: "
        f"{', '.join(f'profile_matrix({env})' for env in envs)} build the environments, then "
        f"measure runs every cell ({matrix.order}); one mode alone: "
        + " or ".join(f"nox -s {mode}_start" for mode in modes)
    )
    return 0
