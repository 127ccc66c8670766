"""The manager of a run's cells: what a nox session runs inside the environment it built.

Each cell of one environment runs in its own ``python -m harness profile`` process (the
worker), which writes ``<run dir>/<cell id>.json`` as its samples finish. A process per
cell because a cold cell must start in a process that has never mapped torch, scipy or the
model, or the page cache would keep them warm for it. So this module imports nothing
heavier than the standard library and the result format, and leaves every measurement to
the worker.

The run folder also holds ``run.json`` (harness.result.RunPlan): the matrix the run used
and every cell that some session planned, so that merge can say which cells never ran.

A cell here is a matrix cell (harness.matrix): anything with ``id``, ``info`` (CellInfo),
``settings`` (Settings), ``planned`` (PlannedCell), ``targets``, ``model.source``,
``model.name`` and ``torch.version``.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from harness.errors import UserError
from harness.result import (
    RUN_FILE,
    TARGET_FLAGS,
    CellReport,
    FailureKind,
    ReportError,
    RunPlan,
    read_report,
)

# Seconds the profile process gets beyond its own per-sample timeouts before it is killed:
# it also resolves the model, attributes imports and computes statistics.
CELL_SLACK_S = 120.0


def cell_file(run_dir: Path, cell) -> Path:
    return Path(run_dir) / f"{cell.id}.json"


def cell_status(run_dir: Path, cell) -> str:
    """ "complete", "partial", "failed", "missing" or "unreadable" for a cell of a run."""
    path = cell_file(run_dir, cell)
    if not path.is_file():
        return "missing"
    try:
        return read_report(path).status
    except ReportError:
        return "unreadable"


def incomplete(run_dir: Path, cells: list) -> list:
    """The cells a resumed run still has to run: missing, partial, failed or unreadable."""
    return [cell for cell in cells if cell_status(run_dir, cell) != "complete"]


def read_plan(run_dir: Path) -> RunPlan:
    """The run's plan, or an empty one (none yet, or one this harness cannot read)."""
    run_dir = Path(run_dir)
    try:
        return RunPlan.read(run_dir / RUN_FILE)
    except ReportError:
        return RunPlan(run_id=run_dir.name)


def record_plan(run_dir: Path, matrix, cells: list) -> Path:
    """Add the cells a session is about to run to ``run.json`` (sessions of one nox run
    follow one another, so read-modify-write is safe)."""
    plan = read_plan(run_dir).add([cell.planned for cell in cells])
    plan.matrix = matrix.to_dict()
    return plan.write(Path(run_dir) / RUN_FILE)


def write_failed(
    run_dir: Path, cells: list, kind: FailureKind, reason: str, detail: str | None = None
) -> list[Path]:
    """A failed report for each cell (its environment would not build, or it never started)."""
    from harness.measure import metadata

    harness, machine = metadata.harness_info(), metadata.machine()
    return [
        CellReport.failed(
            cell.info, cell.settings, kind, reason, detail, harness=harness, machine=machine
        ).write(cell_file(run_dir, cell))
        for cell in cells
    ]


def profile_command(cell, output: Path, python: str = sys.executable) -> list[str]:
    """The ``harness profile`` command line of one cell."""
    flag_of = {metric: flag for flag, metric in TARGET_FLAGS.items()}
    settings = cell.settings
    cmd = [
        python,
        "-m",
        "harness",
        "profile",
        "--model",
        cell.model.source,
        "--name",
        cell.model.name,
        "--mode",
        cell.mode,
        "--device",
        cell.device,
        "--runs",
        str(settings.runs),
        "--warmups",
        str(settings.warmups),
        "--timeout",
        f"{settings.timeout_s:g}",
    ]
    for metric, value in sorted(cell.targets.items()):
        if metric in flag_of:
            cmd += [flag_of[metric], f"{value:g}"]
    if getattr(cell.model, "path", None):
        cmd += ["--app-path", cell.model.path]
    cmd += ["--cell-id", cell.id, "--torch-label", cell.torch.version, "--output", str(output), "--quiet"]
    return cmd


@dataclass
class CellOutcome:
    cell_id: str
    status: str  # complete | failed | partial | skipped
    path: Path
    seconds: float
    note: str = ""


def run_cells(
    cells: list, run_dir: Path, *, resume: bool = False, python: str = sys.executable, log=print
) -> list[CellOutcome]:
    """Run each cell in its own profile process, one after another. A cell that fails is
    recorded as failed and the next one still runs; Ctrl-C stops after the running cell
    has saved what finished, and propagates."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    outcomes = []
    for position, cell in enumerate(cells, start=1):
        path = cell_file(run_dir, cell)
        prefix = f"[{position}/{len(cells)}] {cell.id}"
        if resume and cell_status(run_dir, cell) == "complete":
            log(f"{prefix}: complete in this run already, skipped")
            outcomes.append(CellOutcome(cell.id, "skipped", path, 0.0))
            continue
        log(f"{prefix}: {cell.settings.runs} runs + {cell.settings.warmups} warm-ups ...")
        outcome = _run_one(cell, path, python)
        note = f": {outcome.note}" if outcome.note else ""
        log(f"{prefix}: {outcome.status} in {outcome.seconds:.1f} s{note}")
        outcomes.append(outcome)
    return outcomes


def _run_one(cell, path: Path, python: str) -> CellOutcome:
    # A stale report from an earlier attempt must not pass for this attempt's result.
    path.unlink(missing_ok=True)
    settings = cell.settings
    budget = (settings.samples + 1) * settings.timeout_s + CELL_SLACK_S
    started = time.perf_counter()
    proc = subprocess.Popen(
        profile_command(cell, path, python),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=False,
    )
    try:
        _, stderr = proc.communicate(timeout=budget)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, stderr = proc.communicate()
        _salvage(
            cell,
            path,
            FailureKind.TIMEOUT,
            "timeout",
            f"the profile process ran past {budget:g} s and was killed",
        )
        return CellOutcome(cell.id, "failed", path, time.perf_counter() - started, "timeout")
    except KeyboardInterrupt:
        # The child got the same SIGINT (one process group): let it save its partial report.
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        raise
    seconds = time.perf_counter() - started
    if proc.returncode in (130, -signal.SIGINT):
        raise KeyboardInterrupt
    last = _last_line(stderr)
    try:
        report = read_report(path)
    except ReportError:
        # It never wrote a report: the model would not resolve, the device is missing, or
        # the process died before its first write.
        write_failed(
            path.parent, [cell], FailureKind.LOAD, f"could not start: {last}", (stderr or "")[-2000:] or None
        )
        return CellOutcome(cell.id, "failed", path, seconds, last)
    if report.status == "partial":
        _salvage(
            cell, path, FailureKind.CRASH, "crashed", f"the profile process exited {proc.returncode}: {last}"
        )
        return CellOutcome(cell.id, "failed", path, seconds, last)
    note = ""
    if report.status == "failed" and report.failure is not None:
        note = report.failure.detail or ""
    elif report.status == "complete" and report.failed_samples:
        note = f"{report.failed_samples} sample(s) failed"
    return CellOutcome(cell.id, report.status, path, seconds, note)


def _salvage(cell, path: Path, kind: FailureKind, reason: str, detail: str) -> None:
    """Mark a cell failed, keeping any samples its report already holds."""
    from harness.result import Failure

    try:
        report = read_report(path)
    except ReportError:
        write_failed(path.parent, [cell], kind, reason, detail)
        return
    if report.status == "partial":
        report.status = "failed"
        report.failure = Failure(kind=kind, reason=reason, detail=detail)
        report.write(path)


def _last_line(text: str | None) -> str:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    if not lines:
        return "no error output"
    last = lines[-1]
    # `harness profile: error: model ...` -> the part a person needs.
    if "error: " in last:
        last = last.split("error: ", 1)[1]
    return last[:300]


def _release(version: str) -> tuple[int, ...]:
    """``2.13.0+cpu`` -> (2, 13): the public release, trailing zeros dropped, as PEP 440
    compares releases (packaging is not imported on the measured side)."""
    parts = []
    for piece in version.split("+")[0].split("."):
        digits = "".join(ch for ch in piece if ch.isdigit()) if piece[:1].isdigit() else ""
        if not digits:
            break
        parts.append(int(digits))
    while parts and parts[-1] == 0:
        parts.pop()
    return tuple(parts)


def check_installed_torch(version: str) -> None:
    """Refuse to label results with a torch version other than the one installed here."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed_version

    try:
        found = installed_version("torch").split("+")[0]
    except PackageNotFoundError:
        raise UserError(
            f"torch is not installed in {sys.prefix}; run-cells runs inside an environment "
            f"built for torch {version} (nox -s profile_matrix)"
        ) from None
    if _release(found) != _release(version):
        raise UserError(
            f"this environment ({sys.prefix}) has torch {found}, not {version}; "
            f"run the cells of torch {version} in its own environment (nox)"
        )
