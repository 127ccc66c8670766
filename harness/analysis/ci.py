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
from dataclasses import dataclass, field
from pathlib import Path

import msgspec

from harness.errors import UserError
from harness.result import (
    ENV_PREFIX,
    EXPORTS_DIR,
    RUN_FILE,
    CellReport,
    EnvRecord,
    FailureKind,
    MatrixReport,
    PlannedCell,
    ReportError,
    RunPlan,
    Settings,
    read_bytes,
    read_matrix,
    safe_name,
    write_atomic,
)
from harness.result.document import decode_header

NO_MACHINE = "unknown"  # group of cells that never ran anywhere (their runner died first)


class GatherError(UserError):
    """Runner folders that cannot be put together into one run."""


@dataclass
class Gathered:
    run_dir: Path
    cells: dict[str, Path] = field(default_factory=dict)  # cell id -> source report
    missing: list[str] = field(default_factory=list)  # planned, no report came back
    skipped: list[str] = field(default_factory=list)  # unreadable plans and env records, with why


def _json_files(folder: Path) -> list[Path]:
    # A downloaded artifact may hold the files directly or one folder deeper (the run id):
    # take every JSON file below the folder (a FIFO or device among them is refused on read),
    # but none of an exports folder: exported models' configs, not reports.
    return sorted(
        p
        for p in folder.rglob("*.json")
        if not p.name.startswith(".")
        and not p.is_dir()
        and EXPORTS_DIR not in p.relative_to(folder).parts[:-1]
    )


def gather(
    sources: list[str | os.PathLike],
    run_dir: str | os.PathLike,
    planned: list[PlannedCell] | None = None,
    matrix: dict | None = None,
) -> Gathered:
    """Copy the cell reports of several runner folders into ``run_dir``.

    ``planned`` adds cells the plan expected; those without a report get a failed record
    (FailureKind.NOT_RUN). A cell reported by two folders is an error: two runners measured
    it, and which one counts is not ours to guess; so is a file that cannot be read as a
    report (corrupt, not UTF-8, a FIFO, a cell id that is not a file name). An unreadable
    plan or environment record is only skipped (``Gathered.skipped``). Every file name
    written is built from checked names (cell ids and environment names come from data).
    """
    run_dir = Path(run_dir)
    folders = [Path(s) for s in sources]
    for folder in folders:
        if not folder.is_dir():
            raise GatherError(f"{folder}: no such folder (give the runner folders to merge)")
    result = Gathered(run_dir=run_dir)
    plan: dict[str, PlannedCell] = {}
    matrices: list[dict] = []
    cells: dict[str, bytes] = {}
    environments: dict[str, tuple[EnvRecord, bytes]] = {}
    for folder in folders:
        for path in _json_files(folder):
            if path.name == RUN_FILE or path.name.startswith(ENV_PREFIX):
                try:
                    _read_side_file(path, plan, matrices, environments)
                except ReportError as exc:  # the cells do not depend on it: say so, go on
                    result.skipped.append(str(exc))
                continue
            try:
                data = read_bytes(path)
                header = decode_header(path, data)
                report = CellReport.decode(path, data, header) if header.kind == CellReport.KIND else None
            except ReportError as exc:
                raise GatherError(f"{exc}; move it away and gather again") from None
            if report is None:
                continue  # another kind of JSON file: not ours to gather
            if report.id in result.cells:
                raise GatherError(
                    f"cell {report.id} is in two runner folders ({result.cells[report.id]} and "
                    f"{path}); give each cell's folder once"
                )
            result.cells[report.id], cells[report.id] = path, data
    if not result.cells and not plan and not planned:
        raise GatherError(
            f"no cell reports under {', '.join(map(str, folders)) or '(no folders)'}; nothing to merge"
        )

    # Every name is checked before anything is written: no half-gathered folder.
    targets = {cell_id: run_dir / f"{safe_name(cell_id, 'cell id')}.json" for cell_id in cells}
    env_targets = {
        torch: run_dir / f"{ENV_PREFIX}{safe_name(record.name, 'environment name')}.json"
        for torch, (record, _) in environments.items()
    }
    for cell in planned or []:
        plan.setdefault(cell.id, cell)
    never = {
        cell_id: run_dir / f"{safe_name(cell_id, 'cell id')}.json"
        for cell_id in sorted(plan)
        if cell_id not in cells
    }
    for cell_id, data in cells.items():
        write_atomic(targets[cell_id], data)  # the bytes as the runner wrote them, checked
    for torch, (_, data) in environments.items():
        write_atomic(env_targets[torch], data)
    for cell_id, target in never.items():
        result.missing.append(cell_id)
        _never_reported(plan[cell_id]).write(target)
    RunPlan(
        run_id=run_dir.name,
        planned=[plan[cell_id] for cell_id in sorted(plan)],
        matrix=matrix if matrix is not None else (matrices[0] if matrices else None),
        gathered_from=[str(f) for f in folders],
    ).write(run_dir / RUN_FILE)
    return result


def _read_side_file(
    path: Path,
    plan: dict[str, PlannedCell],
    matrices: list[dict],
    environments: dict[str, tuple[EnvRecord, bytes]],
) -> None:
    """A runner's plan (its cells join the plan) or environment record (one per torch)."""
    data = read_bytes(path)
    if path.name == RUN_FILE:
        runner_plan = RunPlan.decode(path, data)
        for cell in runner_plan.planned:
            plan.setdefault(cell.id, cell)
        if runner_plan.matrix is not None:
            matrices.append(runner_plan.matrix)
        return
    record = EnvRecord.decode(path, data)
    # Cold and warm sessions of one torch version each build (and record) an environment;
    # keep one that built.
    kept = environments.get(record.key)
    if kept is None or (record.status == "ok" and kept[0].status != "ok"):
        environments[record.key] = (record, data)


def _never_reported(cell: PlannedCell) -> CellReport:
    # The record is written where the merge runs, not where the cell would have run: it
    # belongs to no machine, so no machine's baseline or comparison takes it.
    return CellReport.failed(
        cell.info,
        cell.settings or Settings(runs=0, warmups=0, timeout_s=0),
        FailureKind.NOT_RUN,
        "no report came back from the runner of this cell",
        "the cell was planned, but no runner folder holds its report: its job failed or was cancelled "
        "before the first sample finished",
        machine=None,
    )


def planned_cells(
    matrix_path: str | os.PathLike, runs: int | None = None, warmups: int | None = None
) -> tuple[list[PlannedCell], dict]:
    """The cells a matrix file plans (with their settings), and the matrix as a dict."""
    from harness.matrix.expand import load_matrix

    matrix = load_matrix(Path(matrix_path)).with_overrides(runs=runs, warmups=warmups)
    return [cell.planned for cell in matrix.cells], matrix.to_dict()


def fingerprint(cell: CellReport) -> str:
    return cell.fingerprint or NO_MACHINE


def by_machine(report_path: str | os.PathLike) -> dict[str, MatrixReport]:
    """A merged matrix report split into one matrix report per machine fingerprint (cells
    with no machine under NO_MACHINE). Each part is a valid matrix report of its own."""
    report = read_matrix(report_path)
    groups: dict[str, dict[str, CellReport]] = {}
    for cell_id, cell in report.cells.items():
        groups.setdefault(fingerprint(cell), {})[cell_id] = cell
    return {fp: msgspec.structs.replace(report, cells=cells) for fp, cells in sorted(groups.items())}


def machine_label(part: MatrixReport) -> str:
    """A reader's name for a group: the CPU and core count its cells recorded."""
    for cell in part.cells.values():
        if cell.machine is not None and cell.machine.cpu:
            return cell.machine.label
    return "no machine (cells that never ran)"
