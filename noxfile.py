"""nox sessions generated from matrix.yaml (or the file the MATRIX variable names).

Adding a torch version to the YAML adds its sessions; nothing here names a version.

    nox -l                                 # list the sessions (nox -l --json for a program)
    nox -s cold_start                      # every torch version, cold cells
    nox -s "warm_start(torch-2.13.0)"      # one torch version, warm cells
    nox -s profile_matrix                  # every cell: one environment per torch version
    nox -s merge                           # tables of the latest run (or -- --run-id ID)
    nox -s profile_matrix -- --runs 3      # fewer samples than the matrix says
    nox -s profile_matrix -- --resume ID   # only the cells of run ID that did not finish

Each profiling session builds a fresh environment with uv (bytecode compiled, as pip
would), installs exactly its torch version from the source the matrix names for it,
sentence-transformers, the model packages and the harness, times that build, records the
resolved versions in reports/runs/<run id>/env-torch-<version>.json, then runs
``python -m harness run-cells`` in it. A torch version that will not install fails its own
session (its cells are recorded as failed, with uv's reason) and the others still run.

The run id is HARNESS_RUN_ID when set (make sets it), else the time this file was loaded,
so every session of one nox invocation writes into one run folder.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import nox

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))  # the harness itself, whichever Python runs nox

from harness import session as cells  # noqa: E402
from harness.matrix import MatrixError, load_matrix  # noqa: E402
from harness.pipconf import uv_environment  # noqa: E402

MATRIX_PATH = Path(os.environ.get("MATRIX") or "matrix.yaml")
try:
    MATRIX = load_matrix(MATRIX_PATH)
except MatrixError as exc:
    # One readable message instead of nox's "failed to load noxfile" traceback.
    print(f"noxfile.py: {exc}", file=sys.stderr)
    raise SystemExit(2) from None

RUN_ID = cells.run_id_from_env() or datetime.now().strftime("%Y%m%d-%H%M%S")
RUNS_DIR = ROOT / "reports" / "runs"

TORCH_VERSIONS = [spec.version for spec in MATRIX.torch]
TORCH_IDS = [spec.label for spec in MATRIX.torch]

# No default selection: `nox -l --json` then lists every generated session, which is what a
# CI job builds its job matrix from. Name what to run: nox -s profile_matrix.
nox.options.default_venv_backend = "uv"
nox.options.error_on_missing_interpreters = True


def _options(session: nox.Session) -> argparse.Namespace:
    """What may follow ``--``: --runs N, --warmups N, --resume RUN_ID (and --run-id for merge)."""
    parser = argparse.ArgumentParser(prog=f"nox -s {session.name} --", add_help=False, exit_on_error=False)
    parser.add_argument("--runs", type=int)
    parser.add_argument("--warmups", type=int)
    parser.add_argument("--resume", metavar="RUN_ID")
    parser.add_argument("--run-id")
    parser.add_argument("merge_args", nargs="*")
    try:
        options, unknown = parser.parse_known_args(session.posargs)
    except argparse.ArgumentError as exc:
        session.error(f"arguments after --: {exc}")
    if unknown:
        options.merge_args += unknown
    for name in ("runs", "warmups"):
        value = getattr(options, name)
        if value is not None and value < (1 if name == "runs" else 0):
            session.error(f"--{name} {value}: must be {'1' if name == 'runs' else '0'} or more")
    return options


def _run_dir(options: argparse.Namespace) -> Path:
    run_id = options.resume or options.run_id or RUN_ID
    return RUNS_DIR / run_id


def _distribution(source: str) -> str | None:
    """The PyPI distribution a model source needs installed (package:MODULE -> its project)."""
    if source.startswith("package:"):
        return source[len("package:"):].split(".")[0].replace("_", "-")
    return None


def _uv_error(log_path: Path) -> str:
    """The line of uv's output that says why it failed."""
    lines = [line.strip() for line in log_path.read_text(errors="replace").splitlines() if line.strip()]
    for prefix in ("cause:", "╰─▶"):
        for line in lines:
            if line.startswith(prefix):
                return line[len(prefix):].strip()
    for line in lines:
        if line.startswith("error:"):
            return line[len("error:"):].strip()
    return lines[-1] if lines else "uv gave no reason"


def _install(session: nox.Session, args: list[str], env: dict[str, str], log_path: Path) -> float:
    """uv pip install into the session, output kept in a file (for the reason, if it fails)."""
    started = time.perf_counter()
    with open(log_path, "w") as log:
        session.install(*args, env=env, silent=False, stdout=log)
    return time.perf_counter() - started


def _frozen_packages(session: nox.Session) -> dict[str, str]:
    out = session.run("uv", "pip", "freeze", silent=True) or ""
    packages = {}
    for line in str(out).splitlines():
        name, sep, version = line.strip().partition("==")
        if sep:
            packages[name.lower()] = version
        elif line.startswith("-e "):
            packages["embedding-load-harness"] = "editable " + line[3:].strip()
    return packages


def _profile(session: nox.Session, torch_version: str, modes: list[str]) -> None:
    options = _options(session)
    matrix = MATRIX.with_overrides(runs=options.runs, warmups=options.warmups)
    spec = matrix.torch_spec(torch_version)
    run_dir = _run_dir(options)
    todo = matrix.cells_for(torch_version, modes)
    if not todo:
        session.skip(f"the matrix has no {'/'.join(modes)} cells for torch {torch_version}")
    cells.record_plan(run_dir, matrix, todo)
    if options.resume:
        if not run_dir.is_dir():
            session.error(f"--resume {options.resume}: no run folder {run_dir}")
        todo = cells.incomplete(run_dir, todo)
        if not todo:
            session.skip(f"every {'/'.join(modes)} cell of torch {torch_version} is complete in run {run_dir.name}")
    session.log(f"run {run_dir.name}: {len(todo)} cell(s) of torch {torch_version} -> {run_dir}")

    # The build: uv created the environment just before this function ran (nox does it
    # first); its pyvenv.cfg is written as creation begins, so timing from its mtime
    # counts the creation too.
    venv = Path(session.virtualenv.location)
    cfg = venv / "pyvenv.cfg"
    build_started = cfg.stat().st_mtime if cfg.exists() else time.time()
    base_env = uv_environment()
    torch_env = {**base_env, **spec.uv_env()}
    record = {
        "torch": torch_version, "session": session.name, "run_id": run_dir.name,
        "python": session.run("python", "-c", "import platform; print(platform.python_version())",
                              silent=True).strip(),
        "venv": str(venv), "status": "failed", "error": None, "build_s": None, "install_s": {},
        "packages": {}, "built": None,
    }
    model_dists = sorted({d for cell in todo if (d := _distribution(cell.model.source))})
    with tempfile.TemporaryDirectory(prefix="harness-nox-") as tmp:
        log_path = Path(tmp) / "uv.log"
        step = "torch"
        try:
            record["install_s"]["torch"] = _install(session, [spec.requirement], torch_env, log_path)
            step = "packages"
            # torch is pinned again so that no dependency can move it; the rest comes from
            # the default sources (a torch-only index need not serve sentence-transformers).
            record["install_s"]["packages"] = _install(
                session, [spec.requirement, "sentence-transformers", *model_dists, "-e", str(ROOT)],
                base_env, log_path)
        except nox.command.CommandFailed:
            why = _uv_error(log_path)
            if step == "torch":
                reason = f"{spec.requirement} could not be installed: {why}"
            else:
                reason = f"the environment for {spec.requirement} could not be built: {why}"
            detail = log_path.read_text(errors="replace")[-3000:]
            record["error"] = reason
            record["build_s"] = time.time() - build_started
            cells.write_failed(run_dir, todo, reason, detail)
            write_env_record(run_dir, torch_version, record)
            session.error(f"{reason} ({len(todo)} cell(s) recorded as failed in {run_dir})")
    record["build_s"] = time.time() - build_started
    record["status"] = "ok"
    record["built"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    record["packages"] = _frozen_packages(session)
    write_env_record(run_dir, torch_version, record)
    session.log(f"environment for {spec.requirement} built in {record['build_s']:.1f} s")

    command = ["python", "-m", "harness", "run-cells", "--matrix", str(MATRIX.path), "--torch", torch_version,
               "--modes", ",".join(modes), "--run-dir", str(run_dir)]
    if options.runs is not None:
        command += ["--runs", str(options.runs)]
    if options.warmups is not None:
        command += ["--warmups", str(options.warmups)]
    if options.resume:
        command += ["--resume"]
    session.run(*command)


def write_env_record(run_dir: Path, torch_version: str, record: dict) -> None:
    from harness.result import write_json_atomic

    write_json_atomic(cells.env_file(run_dir, torch_version), record)


@nox.session(python=MATRIX.python, venv_backend="uv")
@nox.parametrize("torch", TORCH_VERSIONS, ids=TORCH_IDS)
def cold_start(session: nox.Session, torch: str) -> None:
    """Cold cells of one torch version: the page cache emptied and checked before each sample."""
    _profile(session, torch, ["cold"])


@nox.session(python=MATRIX.python, venv_backend="uv")
@nox.parametrize("torch", TORCH_VERSIONS, ids=TORCH_IDS)
def warm_start(session: nox.Session, torch: str) -> None:
    """Warm cells of one torch version."""
    _profile(session, torch, ["warm"])


@nox.session(python=MATRIX.python, venv_backend="uv")
@nox.parametrize("torch", TORCH_VERSIONS, ids=TORCH_IDS)
def profile_matrix(session: nox.Session, torch: str) -> None:
    """Every cell of one torch version, cold and warm, in one fresh environment."""
    _profile(session, torch, list(MATRIX.modes))


@nox.session(venv_backend="none")
def merge(session: nox.Session) -> None:
    """Merge a run folder into reports/matrix-<run id>.json and print the tables.

    The run is -- --run-id ID (or --resume ID), else HARNESS_RUN_ID, else the newest folder
    under reports/runs; anything else after -- goes to `harness merge` (--format md, ...).
    """
    options = _options(session)
    if options.resume or options.run_id or cells.run_id_from_env():
        run_dir = _run_dir(options)
    else:
        runs = sorted((p for p in RUNS_DIR.glob("*") if p.is_dir()), key=lambda p: p.stat().st_mtime)
        if not runs:
            session.error(f"no run under {RUNS_DIR}; run nox -s profile_matrix first")
        run_dir = runs[-1]
    # The Python that runs nox has the harness (the noxfile imports it); no environment to build.
    session.run(sys.executable, "-m", "harness", "merge", str(run_dir), *options.merge_args, external=True)
