"""nox alone is enough: from a venv that holds only nox (as `pipx install nox` leaves one),
`nox -l` lists the sessions and `nox -s cold_start` writes a cold cell report.

The noxfile's PEP 723 block names what it imports; nox's script mode installs that into
<envdir>/_nox_script_mode before loading it. pip's sources reach uv and pip through
harness.pipconf, as on any machine behind a mirror. Everything is written under the test's
temporary folder: the run folder through HARNESS_REPORTS_DIR, nox's environments through
--envdir, and the working directory is not the checkout.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, REPORTS_DIR_VAR, SMALL

from harness.pipconf import uv_environment
from harness.result import read_report

UV = Path(sys.executable).parent / "uv"
RUN_ID = "nox-only"
COLD = "all-MiniLM-L6-v2-torch2.13.0-cold-cpu"


def _run(cmd: list[str], env: dict, cwd: Path, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(c) for c in cmd], capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout
    )


@pytest.fixture(scope="session")
def nox_only(tmp_path_factory):
    """A venv with nothing but nox in it, and the environment a user's shell would give it:
    that venv's bin first on PATH, no harness virtualenv, pip's sources for uv and pip."""
    tmp = tmp_path_factory.mktemp("nox-only")
    venv = tmp / "venv"
    sources = {**os.environ, **uv_environment()}
    sources.pop("VIRTUAL_ENV", None)
    for cmd in (
        [UV, "venv", "--python", sys.executable, venv],
        [UV, "pip", "install", "--python", venv / "bin" / "python", "nox"],
    ):
        proc = _run(cmd, sources, tmp, timeout=600)
        assert proc.returncode == 0, proc.stderr
    harness_bin = str(Path(sys.executable).parent)
    path = [p for p in os.environ.get("PATH", "").split(os.pathsep) if p and p != harness_bin]
    env = {
        **sources,
        "PATH": os.pathsep.join([str(venv / "bin"), *path]),
        "MATRIX": str(SMALL),
        "HARNESS_RUN_ID": RUN_ID,
        REPORTS_DIR_VAR: str(tmp / "reports"),
    }
    for var in ("PYTHONPATH", "NOX_SCRIPT_MODE"):
        env.pop(var, None)
    cwd = tmp / "elsewhere"
    cwd.mkdir()
    nox = [venv / "bin" / "nox", "-f", REPO / "noxfile.py", "--envdir", tmp / "envs"]
    return {"tmp": tmp, "venv": venv, "env": env, "cwd": cwd, "nox": nox}


def test_the_venv_holds_nox_and_not_what_the_noxfile_imports(nox_only):
    python = nox_only["venv"] / "bin" / "python"
    proc = _run(
        [
            python,
            "-c",
            "import nox, importlib.util as u; "
            "print([m for m in ('yaml', 'msgspec', 'harness') if u.find_spec(m)])",
        ],
        nox_only["env"],
        nox_only["cwd"],
    )
    assert proc.returncode == 0 and proc.stdout.strip() == "[]", proc.stdout + proc.stderr


@pytest.fixture(scope="session")
def listed(nox_only):
    """`nox -l` as a new user runs it first (nox's script mode installs the noxfile's
    dependencies, printing the installer's output), then `nox -l --json` as a program does."""
    first = _run([*nox_only["nox"], "-l"], nox_only["env"], nox_only["cwd"])
    return first, _run([*nox_only["nox"], "-l", "--json"], nox_only["env"], nox_only["cwd"])


def test_nox_lists_the_sessions(listed):
    first, as_json = listed
    assert first.returncode == 0 and "Traceback" not in first.stderr, first.stderr[-3000:]
    assert "* cold_start(torch-2.13.0)" in first.stdout
    assert as_json.returncode == 0, as_json.stderr[-3000:]
    # With no uv on PATH, script mode installs with pip, which prints on stdout before the
    # listing; the listing is the last line.
    names = {s["session"] for s in json.loads(as_json.stdout.strip().splitlines()[-1])}
    assert names == {
        "cold_start(torch-2.13.0)",
        "warm_start(torch-2.13.0)",
        "profile_matrix(torch-2.13.0)",
        "measure",
        "merge",
    }


def test_nox_runs_a_cold_cell_with_nothing_but_nox_installed(nox_only, listed):
    assert listed[1].returncode == 0  # the script environment exists now
    proc = _run([*nox_only["nox"], "-s", "cold_start", "--", "--runs", "1"], nox_only["env"], nox_only["cwd"])
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-5000:]
    report = read_report(nox_only["tmp"] / "reports" / "runs" / RUN_ID / f"{COLD}.json")
    assert report.status == "complete" and len(report.counted) == 1 and report.cell.mode == "cold"
    assert report.environment.prefix.startswith(str(nox_only["tmp"] / "envs"))
    # Nothing was written beside the checkout's files.
    assert not (REPO / "reports" / "runs" / RUN_ID).exists()
    assert not any(nox_only["cwd"].iterdir())
