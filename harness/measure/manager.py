"""What a nox session runs inside the fresh environment it built: the cells of one torch
version, each in its own ``python -m harness profile`` process, each writing
``<run dir>/<cell id>.json`` as its samples finish.

Why a process per cell: a cold cell must start in a process that has never mapped torch,
scipy or the model, or the page cache would keep them warm for it. So this module (and
run-cells, which calls it) imports nothing heavier than the standard library and the
report format, and leaves every measurement to the child.

The run folder also holds ``run.json``: the run id, the matrix the run used, and every
cell that some session planned to run (so that merge can say which cells never ran).
nox writes ``env-torch-<version>.json`` beside it (see noxfile.py). The same helpers serve
the noxfile, which must write failed reports when an environment will not build.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from harness.result import ReportError, failed_cell_report, read_report, write_json_atomic

RUN_FILE = "run.json"
ENV_PREFIX = "env-torch-"
# Seconds the profile process gets beyond its own per-sample timeouts before it is killed:
# it also resolves the model, attributes imports and computes statistics.
CELL_SLACK_S = 120.0


def env_file(run_dir: Path, torch_version: str) -> Path:
    return Path(run_dir) / f"{ENV_PREFIX}{torch_version}.json"


def cell_file(run_dir: Path, cell) -> Path:
    return Path(run_dir) / f"{cell.id}.json"


def cell_block(cell) -> dict:
    """The ``cell`` block of a report for a matrix cell."""
    return {"id": cell.id, "model": cell.model.name, "source": cell.model.source,
            "mode": cell.mode, "device": cell.device, "torch": cell.torch.version}


def cell_settings(cell) -> dict:
    return {"runs": cell.runs, "warmups": cell.warmups, "timeout_s": cell.timeout_s}


def cell_status(run_dir: Path, cell) -> str:
    """"complete", "partial", "failed", "missing" or "unreadable" for a cell of a run."""
    path = cell_file(run_dir, cell)
    if not path.is_file():
        return "missing"
    try:
        return read_report(path)["status"]
    except ReportError:
        return "unreadable"


def incomplete(run_dir: Path, cells: list) -> list:
    """The cells a resumed run still has to run: missing, partial, failed or unreadable."""
    return [cell for cell in cells if cell_status(run_dir, cell) != "complete"]


def record_plan(run_dir: Path, matrix, cells: list) -> Path:
    """Add the cells a session is about to run to ``run.json`` (sessions of one nox run
    follow one another, so read-modify-write is safe)."""
    run_dir = Path(run_dir)
    path = run_dir / RUN_FILE
    try:
        plan = json.loads(path.read_text())
        if not isinstance(plan, dict) or not isinstance(plan.get("planned"), list):
            raise ValueError
    except (OSError, ValueError):
        plan = {"run_id": run_dir.name, "planned": []}
    plan["matrix"] = matrix.to_dict()
    known = {entry.get("id") for entry in plan["planned"] if isinstance(entry, dict)}
    plan["planned"].extend(cell_block(c) for c in cells if c.id not in known)
    return write_json_atomic(path, plan)


def write_failed(run_dir: Path, cells: list, reason: str, detail: str | None = None) -> list[Path]:
    """A failed report for each cell (its environment would not build, or it never started)."""
    return [write_json_atomic(cell_file(run_dir, cell),
                              failed_cell_report(cell_block(cell), cell_settings(cell), reason, detail))
            for cell in cells]


def profile_command(cell, output: Path, python: str = sys.executable) -> list[str]:
    """The ``harness profile`` command line of one cell."""
    from harness.commands.profile import TARGET_FLAGS

    flag_of = {metric: flag for flag, (metric, _) in TARGET_FLAGS.items()}
    cmd = [python, "-m", "harness", "profile", "--model", cell.model.source, "--name", cell.model.name,
           "--mode", cell.mode, "--device", cell.device, "--runs", str(cell.runs),
           "--warmups", str(cell.warmups), "--timeout", f"{cell.timeout_s:g}"]
    for metric, value in sorted(cell.targets.items()):
        if metric in flag_of:
            cmd += [flag_of[metric], f"{value:g}"]
    cmd += ["--cell-id", cell.id, "--torch-label", cell.torch.version, "--output", str(output), "--quiet"]
    return cmd


@dataclass
class CellOutcome:
    cell_id: str
    status: str         # complete | failed | partial | skipped
    path: Path
    seconds: float
    note: str = ""


def run_cells(cells: list, run_dir: Path, *, resume: bool = False, python: str = sys.executable,
              log=print) -> list[CellOutcome]:
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
        log(f"{prefix}: {cell.runs} runs + {cell.warmups} warm-ups ...")
        outcome = _run_one(cell, path, python)
        log(f"{prefix}: {outcome.status} in {outcome.seconds:.1f} s{': ' + outcome.note if outcome.note else ''}")
        outcomes.append(outcome)
    return outcomes


def _run_one(cell, path: Path, python: str) -> CellOutcome:
    # A stale report from an earlier attempt must not pass for this attempt's result.
    path.unlink(missing_ok=True)
    budget = (cell.runs + cell.warmups + 1) * cell.timeout_s + CELL_SLACK_S
    started = time.perf_counter()
    proc = subprocess.Popen(profile_command(cell, path, python), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=False)
    try:
        _, stderr = proc.communicate(timeout=budget)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, stderr = proc.communicate()
        _salvage(cell, path, "timeout", f"the profile process ran past {budget:g} s and was killed")
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
        report = None
    if report is None:
        # It never wrote a report: the model would not resolve, the device is missing, or
        # the process died before its first write.
        write_failed(path.parent, [cell], f"could not start: {last}", (stderr or "")[-2000:] or None)
        return CellOutcome(cell.id, "failed", path, seconds, last)
    if report["status"] == "partial":
        _salvage(cell, path, "crashed", f"the profile process exited {proc.returncode}: {last}")
        return CellOutcome(cell.id, "failed", path, seconds, last)
    note = (report.get("failure") or {}).get("detail") or "" if report["status"] == "failed" else ""
    failed_samples = sum(1 for s in report["samples"] if not s.get("ok"))
    if report["status"] == "complete" and failed_samples:
        note = f"{failed_samples} sample(s) failed"
    return CellOutcome(cell.id, report["status"], path, seconds, note)


def _salvage(cell, path: Path, reason: str, detail: str) -> None:
    """Mark a cell failed, keeping any samples its report already holds."""
    try:
        report = read_report(path)
    except ReportError:
        write_failed(path.parent, [cell], reason, detail)
        return
    if report["status"] == "partial":
        report["status"] = "failed"
        report["failure"] = {"reason": reason, "detail": detail}
        write_json_atomic(path, report)


def _last_line(text: str | None) -> str:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    if not lines:
        return "no error output"
    last = lines[-1]
    # `harness profile: error: model ...` -> the part a person needs.
    for marker in ("error: ",):
        if marker in last:
            last = last.split(marker, 1)[1]
    return last[:300]


def check_installed_torch(version: str) -> None:
    """Refuse to label results with a torch version other than the one installed here."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed_version

    from harness.errors import UserError

    try:
        found = installed_version("torch").split("+")[0]
    except PackageNotFoundError:
        raise UserError(f"torch is not installed in {sys.prefix}; run-cells runs inside an environment "
                        f"built for torch {version} (nox -s profile_matrix)") from None
    from packaging.version import Version

    if Version(found) != Version(version):
        raise UserError(f"this environment ({sys.prefix}) has torch {found}, not {version}; "
                        f"run the cells of torch {version} in its own environment (nox)")


def environments_in(run_dir: Path) -> dict[str, dict]:
    """The environment records nox wrote, by torch version."""
    out = {}
    for path in sorted(Path(run_dir).glob(f"{ENV_PREFIX}*.json")):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(data, dict):
            out[str(data.get("torch") or path.stem[len(ENV_PREFIX):])] = data
    return out


def run_id_from_env() -> str | None:
    return os.environ.get("HARNESS_RUN_ID") or None
