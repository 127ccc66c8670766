"""The glue a CI matrix needs between "each runner ran its cells" and "one verdict".

A scheduled run fans the matrix out over runners (.github/workflows/profile-matrix.yml):
each runner profiles one nox session into its own run folder and uploads it. This module
puts those folders back together and keeps the per-machine rules:

* :func:`gather` copies every runner's cell reports into one run folder that ``merge``
  reads, joins the runners' plans (``run.json``), and writes a failed record for each
  planned cell whose report never came back (a runner that died before its first sample),
  so the merged report still names every planned cell.
* :func:`by_machine` splits a merged report by machine fingerprint. Hosted runners of one
  label differ in CPU, and a load time only compares with one measured on the same kind of
  machine, so each group is compared with, and becomes, the baseline of its own
  fingerprint (see harness.analysis.baseline), never another's.

Nothing here measures or judges: verdicts come from harness.analysis.compare, storage from
harness.analysis.baseline; this module only moves and groups finished reports.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import UserError
from harness.result import ReportError, load_json, read_matrix, read_report, write_json_atomic

RUN_FILE = "run.json"  # harness.session.RUN_FILE; not imported: session pulls in the runner side
ENV_PREFIX = "env-torch-"
NO_MACHINE = "unknown"  # group of cells that never ran anywhere (their runner died first)


class GatherError(UserError):
    """Runner folders that cannot be put together into one run."""


@dataclass
class Gathered:
    run_dir: Path
    cells: dict[str, Path] = field(default_factory=dict)      # cell id -> source report
    missing: list[str] = field(default_factory=list)          # planned, no report came back
    skipped: list[str] = field(default_factory=list)          # unreadable files, with why


def _json_files(folder: Path) -> list[Path]:
    # A downloaded artifact may hold the files directly or one folder deeper (the run id):
    # take every JSON file below the folder.
    return sorted(p for p in folder.rglob("*.json") if p.is_file() and not p.name.startswith("."))


def gather(sources: list[str | os.PathLike], run_dir: str | os.PathLike, planned: list[dict] | None = None,
           matrix: dict | None = None) -> Gathered:
    """Copy the cell reports of several runner folders into ``run_dir``.

    ``planned`` (cell blocks with id, model, source, mode, device, torch, and runs, warmups,
    timeout_s) adds cells the plan expected; those without a report get a failed record. A
    cell reported by two folders is an error: two runners measured it, and which one counts
    is not ours to guess.
    """
    run_dir = Path(run_dir)
    folders = [Path(s) for s in sources]
    for folder in folders:
        if not folder.is_dir():
            raise GatherError(f"{folder}: no such folder (give the runner folders to merge)")
    result = Gathered(run_dir=run_dir)
    plan: dict[str, dict] = {}
    matrices: list[dict] = []
    environments: dict[str, tuple[Path, dict]] = {}
    for folder in folders:
        for path in _json_files(folder):
            try:
                data = load_json(path)
            except ReportError as exc:
                result.skipped.append(str(exc))
                continue
            if path.name == RUN_FILE:
                for entry in data.get("planned") or []:
                    if isinstance(entry, dict) and entry.get("id"):
                        plan.setdefault(entry["id"], entry)
                if isinstance(data.get("matrix"), dict):
                    matrices.append(data["matrix"])
            elif path.name.startswith(ENV_PREFIX):
                version = str(data.get("torch") or path.stem[len(ENV_PREFIX):])
                # Cold and warm sessions of one torch version each build (and record) an
                # environment; keep one that built.
                if version not in environments or (data.get("status") == "ok"
                                                   and environments[version][1].get("status") != "ok"):
                    environments[version] = (path, data)
            elif data.get("kind") == "cell":
                try:
                    report = read_report(path)
                except ReportError as exc:
                    result.skipped.append(str(exc))
                    continue
                cell_id = report["cell"]["id"]
                if cell_id in result.cells:
                    raise GatherError(f"cell {cell_id} is in two runner folders ({result.cells[cell_id]} and "
                                      f"{path}); give each cell's folder once")
                result.cells[cell_id] = path
    if not result.cells and not plan and not planned:
        raise GatherError(f"no cell reports under {', '.join(map(str, folders)) or '(no folders)'}; "
                          "nothing to merge")

    run_dir.mkdir(parents=True, exist_ok=True)
    for cell_id, path in result.cells.items():
        _copy(path, run_dir / f"{cell_id}.json")
    for version, (path, _) in environments.items():
        _copy(path, run_dir / f"{ENV_PREFIX}{version}.json")
    for entry in planned or []:
        plan.setdefault(entry["id"], entry)
    for cell_id, entry in sorted(plan.items()):
        if cell_id in result.cells:
            continue
        result.missing.append(cell_id)
        write_json_atomic(run_dir / f"{cell_id}.json", _never_reported(entry))
    write_json_atomic(run_dir / RUN_FILE, {
        "run_id": run_dir.name,
        "planned": [{k: v for k, v in e.items() if k in ("id", "model", "source", "mode", "device", "torch")}
                    for _, e in sorted(plan.items())],
        "matrix": matrix if matrix is not None else (matrices[0] if matrices else None),
        "gathered_from": [str(f) for f in folders],
    })
    return result


def _copy(source: Path, target: Path) -> None:
    # A runner folder may be the run folder itself (one machine, `make ci-cell` then
    # `make ci-merge` with the same RUN_ID): its files are already in place.
    if source.resolve() != target.resolve():
        shutil.copyfile(source, target)


def _never_reported(entry: dict) -> dict:
    from harness.result import failed_cell_report

    settings = {"runs": entry.get("runs", 0), "warmups": entry.get("warmups", 0),
                "timeout_s": entry.get("timeout_s", 0)}
    report = failed_cell_report(entry, settings, "no report came back from the runner of this cell",
                                "the cell was planned, but no runner folder holds its report: its job "
                                "failed or was cancelled before the first sample finished")
    # The record is written where the merge runs, not where the cell would have run: it
    # belongs to no machine, so no machine's baseline or comparison takes it.
    report["machine"] = None
    return report


def planned_cells(matrix_path: str | os.PathLike, runs: int | None = None, warmups: int | None = None) -> tuple[list[dict], dict]:
    """The cells a matrix file plans (with their settings), and the matrix as a dict."""
    from harness.matrix.expand import load_matrix

    matrix = load_matrix(matrix_path).with_overrides(runs=runs, warmups=warmups)
    cells = [{"id": c.id, "model": c.model.name, "source": c.model.source, "mode": c.mode, "device": c.device,
              "torch": c.torch.version, "runs": c.runs, "warmups": c.warmups, "timeout_s": c.timeout_s}
             for c in matrix.cells]
    return cells, matrix.to_dict()


def fingerprint(cell_report: dict) -> str:
    return (cell_report.get("machine") or {}).get("fingerprint") or NO_MACHINE


def by_machine(report_path: str | os.PathLike) -> dict[str, dict]:
    """A merged matrix report split into one matrix report per machine fingerprint (cells
    with no machine under NO_MACHINE). Each part is a valid matrix report of its own."""
    report = read_matrix(report_path)
    parts: dict[str, dict] = {}
    for cell_id, cell in report["cells"].items():
        part = parts.setdefault(fingerprint(cell), {**report, "cells": {}})
        part["cells"][cell_id] = cell
    return dict(sorted(parts.items()))


def machine_label(part: dict) -> str:
    """A reader's name for a group: the CPU and core count its cells recorded."""
    for cell in part["cells"].values():
        machine = cell.get("machine") or {}
        if machine.get("cpu"):
            cores = f", {machine['cores']} cores" if machine.get("cores") else ""
            return f"{machine['cpu']}{cores}"
    return "no machine (cells that never ran)"
