"""A nox invocation's plan: the cells each profiling session runs, the environments built
for them (:class:`Built`, held by the noxfile), and the one ``harness run-cells`` command
that measures them all after the last build."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from harness.envs import runlock
from harness.envs.options import Options
from harness.errors import UserError
from harness.matrix import Cell, Matrix
from harness.result import EnvRecord


def plan(
    session, matrix: Matrix, torch_version: str, modes: list[str], options: Options, run_dir: Path
) -> list[Cell]:
    """The cells this session runs (with the overrides), recorded in run.json; under
    --resume only those not complete yet. Skips the session when there are none."""
    from harness.measure import manager

    matrix = matrix.with_overrides(runs=options.runs, warmups=options.warmups)
    cells = matrix.cells_for(torch_version, modes)
    if not cells:
        session.skip(f"the matrix has no {'/'.join(modes)} cells for torch {torch_version}")
    if options.resume and not run_dir.is_dir():
        session.error(f"--resume {options.resume}: no run folder {run_dir}")
    # UserError when another nox invocation is writing this run folder.
    runlock.hold(run_dir / runlock.RUN_DIR_LOCK, "use a different run id (RUN_ID=, -- --run-id) or REPORTS")
    manager.record_plan(run_dir, matrix, cells)
    if options.resume:
        cells = manager.incomplete(run_dir, cells)
        if not cells:
            session.skip(
                f"every {'/'.join(modes)} cell of torch {torch_version} is complete in run {run_dir.name}"
            )
    session.log(f"run {run_dir.name}: {len(cells)} cell(s) of torch {torch_version} -> {run_dir}")
    return cells


@dataclass
class Built:
    """The environments one nox invocation built, and the cells each measures: the
    profiling sessions build (phase one) and leave the measuring to the ``measure`` session
    that the first of them queues last (phase two), so one run interleaves them all. The
    noxfile holds one for its invocation."""

    run_dir: Path | None = None
    cells: dict[str, Cell] = field(default_factory=dict)  # id -> cell, in the order built
    pythons: dict[str, str] = field(default_factory=dict)  # EnvSpec.id -> its Python
    # A reference run: EnvSpec.id -> the Python of the baseline's environment rebuilt from
    # its lock (its cells are measured there too, as <cell id>@baseline).
    references: dict[str, str] = field(default_factory=dict)

    def add(self, cells: list[Cell], record: EnvRecord, run_dir: Path) -> None:
        if self.run_dir is not None and self.run_dir != run_dir:
            raise UserError(f"one nox invocation measures one run; {run_dir} is not {self.run_dir}")
        self.run_dir = run_dir
        self.cells.update({cell.id: cell for cell in cells})
        # cold_start and warm_start of one environment build it alike; the later one's
        # Python measures both. Keyed by the record's name: the environment's id, or
        # <id>+onnx+openvino for other backends' (harness.result.extra_env_id).
        if cells:
            self.pythons[record.name] = str(Path(record.venv or "") / "bin" / "python")


def run_cells_args(matrix: Matrix, built: Built, options: Options) -> list[str]:
    """``python -m harness run-cells ...`` over every cell built in this nox invocation,
    each in its own environment's Python: the first environment's runs the planner."""
    cells = list(built.cells.values())
    envs = list(dict.fromkeys(cell.env.id for cell in cells))
    modes = list(dict.fromkeys(cell.mode for cell in cells))
    args = [
        next(iter(built.pythons.values())),
        "-m",
        "harness",
        "run-cells",
        "--matrix",
        str(matrix.path),
        "--torch",
        ",".join(envs),
        "--modes",
        ",".join(modes),
        "--cells",
        ",".join(built.cells),
        "--run-dir",
        str(built.run_dir),
    ]
    for env, python in built.pythons.items():
        args += ["--python", f"{env}={python}"]
    for env, python in built.references.items():
        args += ["--reference-python", f"{env}={python}"]
    for flag, value in (
        ("--runs", options.runs),
        ("--warmups", options.warmups),
        ("--order", options.order),
        ("--seed", options.seed),
    ):
        if value is not None:
            args += [flag, str(value)]
    if options.resume:
        args += ["--resume"]
    if options.inherit_env:
        args += ["--inherit-env"]
    return args
