# /// script
# requires-python = ">=3.10"
# dependencies = ["nox>=2024.10", "uv>=0.4", "pyyaml>=6", "packaging>=23", "msgspec>=0.18"]
# ///
"""nox sessions generated from matrix.yaml (or the file the MATRIX variable names).

Adding a torch version to the YAML adds its sessions; nothing here names a version.

    nox -l                                 # list the sessions (nox -l --json for a program)
    nox -s cold_start                      # every torch version, cold cells
    nox -s "warm_start(torch-2.13.0)"      # one torch version, warm cells
    nox -s profile_matrix                  # every cell: one environment per torch version
    nox -s merge                           # tables of the latest run (or -- --run-id ID)
    nox -s profile_matrix -- --runs 3      # fewer samples than the matrix says (--warmups N too)
    nox -s profile_matrix -- --resume ID   # only the samples of run ID that did not finish
    nox -s profile_matrix -- --order sequential   # cell by cell instead of interleaved rounds
    nox -s profile_matrix -- --reference baseline # beside each environment, the stored baseline's
                                                  # rebuilt from its lock: <cell id>@baseline cells

nox alone is enough (``pipx install nox``, or ``uvx nox -s cold_start``): the block above
names what this file imports, and nox's script mode installs it before loading the file.
A run has two phases. Each profiling session builds a fresh environment with uv for its
torch version (harness/envs/ says how) and queues ``measure``, which runs after every
build of the invocation: ``python -m harness run-cells`` over all the cells built, in
interleaved rounds across their environments, each sample in its own environment's Python.
A torch version that will not install fails its own session, its cells recorded as failed,
and the others keep their rounds.

Reports go to reports/runs/<run id>/ (HARNESS_REPORTS_DIR=DIR puts them under DIR/runs/,
and merge's report and history under DIR). The run id is HARNESS_RUN_ID when set (make sets
it), else the time the first session of this nox invocation started, so every session of one
invocation writes into one run folder.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import NoReturn

import nox

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))  # the harness itself, whichever Python runs nox

from harness.envs import build, merging, options, plan, reference, runlock  # noqa: E402
from harness.errors import UserError  # noqa: E402
from harness.matrix import MatrixError, load_matrix  # noqa: E402

try:
    MATRIX = load_matrix(os.environ.get("MATRIX") or "matrix.yaml")
except MatrixError as exc:
    # One readable message instead of nox's "failed to load noxfile" traceback.
    print(f"noxfile.py: {exc}", file=sys.stderr)
    raise SystemExit(2) from None


def _refuse(exc: UserError) -> NoReturn:
    """Bad input or a busy checkout: one line and exit status 2, nothing else run."""
    print(f"noxfile.py: {exc}", file=sys.stderr)
    raise SystemExit(2)


# Before nox creates any environment: one invocation at a time builds in an envdir
# (harness/envs/runlock.py); listing or merging takes no lock.
if (ENVDIR := runlock.envdir_to_lock(sys.argv[1:])) is not None:
    try:
        runlock.hold(ENVDIR / runlock.ENVDIR_LOCK, "use a different --envdir (make: NOX_ARGS=--envdir DIR)")
    except UserError as exc:
        _refuse(exc)

# One environment per torch version and package pins (matrix.yaml's packages:); its id is the
# session's parameter: profile_matrix(torch-2.13.0), profile_matrix(torch-2.13.0-transformers-5.17.0).
ENV_IDS = [env.id for env in MATRIX.environments]

# No default selection: `nox -l --json` then lists every generated session, which is what a
# CI job builds its job matrix from. Name what to run: nox -s profile_matrix.
nox.needs_version = ">=2024.10"
nox.options.default_venv_backend = "uv"
nox.options.error_on_missing_interpreters = True
# What this invocation's profiling sessions built, for the measure session queued last.
BUILT = plan.Built()


def _arguments(session: nox.Session) -> tuple[options.Options, Path]:
    """The arguments after --, and the run folder they name; one line when one is bad."""
    try:
        given = options.parse_options(session.posargs, session.name)
        return given, given.run_dir(ROOT)
    except UserError as exc:
        session.error(str(exc))


def _profile(session: nox.Session, env: str, modes: list[str]) -> None:
    """Phase one: build the environment (and, in a reference run, the baseline's beside it,
    from its lock); `measure`, queued last, measures every cell built."""
    given, run_dir = _arguments(session)
    try:
        baseline = reference.reference_baseline(given, MATRIX, ROOT)
    except UserError as exc:
        session.error(str(exc))
    spec = MATRIX.environment(env)
    try:
        if baseline is not None:
            reference.checked_lock(baseline, spec.id)  # before anything is built
        cells = plan.plan(session, MATRIX, env, modes, given, run_dir)
    except UserError as exc:
        _refuse(exc)
    session.notify("measure", session.posargs)  # first: a failed build still leaves the others theirs
    record, failed = build.install_all(session, spec, cells, run_dir, ROOT, MATRIX.install, BUILT)
    if baseline is not None:
        python = reference.install_reference(session, spec, cells, run_dir, ROOT, baseline, record)
        if python:
            BUILT.references[spec.id] = python
    elif (given.reference or MATRIX.reference_run) == "baseline":
        session.log("no stored baseline yet: nothing to rebuild, this run's cells are measured alone")
    if failed:
        session.error(f"{len(failed)} environment(s) not built, their cells failed: {'; '.join(failed)}")


@nox.session(python=MATRIX.python, venv_backend="uv")
@nox.parametrize("env", ENV_IDS, ids=ENV_IDS)
def cold_start(session: nox.Session, env: str) -> None:
    """Cold cells of one environment: the page cache emptied and checked before each sample."""
    _profile(session, env, ["cold"])


@nox.session(python=MATRIX.python, venv_backend="uv")
@nox.parametrize("env", ENV_IDS, ids=ENV_IDS)
def warm_start(session: nox.Session, env: str) -> None:
    """Warm cells of one environment."""
    _profile(session, env, ["warm"])


@nox.session(python=MATRIX.python, venv_backend="uv")
@nox.parametrize("env", ENV_IDS, ids=ENV_IDS)
def profile_matrix(session: nox.Session, env: str) -> None:
    """Every cell of one environment (a torch version and its pins), cold and warm, fresh."""
    _profile(session, env, list(MATRIX.modes))


@nox.session(python=False)
def measure(session: nox.Session) -> None:
    """Measure every cell the profiling sessions built (they queue this session last).

    In interleaved rounds across their environments, or cell by cell (-- --order sequential).
    """
    given, _ = _arguments(session)
    if not BUILT.cells:
        session.skip("no environment was built in this nox invocation (nox -s profile_matrix builds them)")
    session.run(*plan.run_cells_args(MATRIX, BUILT, given), external=True)


@nox.session(venv_backend="uv")
def merge(session: nox.Session) -> None:
    """Merge a run folder into reports/matrix-<run id>.json and print the tables.

    The run is -- --run-id ID (or --resume ID), else HARNESS_RUN_ID, else the newest folder
    under reports/runs; anything else after -- goes to `harness merge` (--format md, ...).
    """
    given, run_dir = _arguments(session)
    if not (given.resume or given.run_id or os.environ.get(options.RUN_ID_VAR)):
        run_dir = merging.latest_run(ROOT) or session.error(
            f"no run under {run_dir.parent}; run nox -s profile_matrix first"
        )
    merging.install_harness(session, ROOT)
    session.run(
        "python",
        "-m",
        "harness",
        "merge",
        str(run_dir),
        *merging.merge_args(ROOT, run_dir),
        *given.merge_args,
    )
