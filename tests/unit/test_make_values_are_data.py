"""Make variables reach the recipes as data, never as shell text (issue 27, item 1).

Each test hands a make target a value that a shell would run (`; touch pwned`, a quote, a
backtick) and checks that nothing ran, that the value arrived whole (a one-line error
naming it, or the file it names used), and that a harmless quote or space simply works.
The targets chosen fail fast or only read and merge stored reports: no model is loaded and
no environment built.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
STORED_CELL = REPO / "tests" / "data" / "warm-8runs.json"


def make(*args: str, cwd: Path = REPO, env: dict | None = None) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in ("RUNS", "MATRIX", "REFERENCE", "HARNESS_RUN_ID")}
    return subprocess.run(
        ["make", "-s", "--no-print-directory", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env={**base, **(env or {})},
    )


def own_lines(stderr: str) -> list[str]:
    """stderr less make's own lines ("make: *** [...] Error 2"), set -x traces and nox's log."""
    return [
        line for line in stderr.strip().splitlines() if not re.match(r"(make(\[\d+\])?: |\+ |nox > )", line)
    ]


def injection(tmp_path: Path) -> tuple[Path, str]:
    """A marker file and a fragment that creates it if a shell ever runs the value."""
    marker = tmp_path / "pwned"
    return marker, f"'; touch {marker}; echo '"


def test_matrix_is_a_file_name_not_shell_text(tmp_path):
    marker, hostile = injection(tmp_path)
    proc = make("ci-plan", f"MATRIX=matrix.yaml{hostile}")
    assert proc.returncode == 2, proc.stderr
    assert not marker.exists()
    (line,) = own_lines(proc.stderr)
    assert line.startswith("harness matrix: error: matrix.yaml' --github; touch") or line.startswith(
        "harness matrix: error: matrix.yaml'; touch"
    ), line
    assert "no such file" in line


@pytest.mark.parametrize("where", ["environment", "command line"])
def test_a_make_function_in_a_value_is_not_run_by_make(tmp_path, where):
    """make expands a `$(shell ...)` in a variable it exports or reads: a value from outside
    is taken as written."""
    marker = tmp_path / "pwned"
    value = f"$(shell touch {marker})"
    if where == "environment":
        proc = make("ci-plan", env={"MATRIX": value, "REPORTS": value})
    else:
        proc = make("ci-plan", f"MATRIX={value}", f"REPORTS={value}")
    assert proc.returncode == 2, proc.stderr
    assert not marker.exists()
    (line,) = own_lines(proc.stderr)
    assert line.startswith(f"harness matrix: error: {value}: no such file"), line


def test_a_matrix_named_with_a_quote_and_a_space_is_read(tmp_path):
    matrix = tmp_path / "team's matrix.yaml"
    shutil.copy(REPO / "tests" / "matrices" / "small.yaml", matrix)
    proc = make("ci-plan", env={"MATRIX": str(matrix)})
    assert proc.returncode == 0, proc.stderr
    plan = json.loads(proc.stdout)
    assert plan["include"] and all(job["cells"] for job in plan["include"])


def test_model_is_a_model_source_not_shell_text(tmp_path):
    marker, hostile = injection(tmp_path)
    proc = make("profile", env={"MODEL": f"package:m{hostile}"})
    assert proc.returncode == 2, proc.stderr
    assert not marker.exists()
    (line,) = own_lines(proc.stderr)
    assert line.startswith("harness profile: error: model:") and "not an importable module name" in line


@pytest.mark.parametrize("variable", ["RUNS", "CELL", "REFERENCE"])
def test_ci_cell_values_are_data(tmp_path, variable):
    marker, hostile = injection(tmp_path)
    values = {"CELL": "measure", "RUN_ID": "t1", "REPORTS": str(tmp_path / "reports")}
    values[variable] = {"RUNS": f"1; touch {marker} #"}.get(variable, f"x{hostile}")
    proc = make("ci-cell", env=values)
    assert proc.returncode != 0, proc.stderr
    assert not marker.exists()
    words = {
        "RUNS": "--runs: '1; touch",  # nox's measure session refuses it in one line
        "CELL": "Sessions not found",
        "REFERENCE": "harness reference: error: REFERENCE=x'; touch",
    }[variable]
    assert words in proc.stderr, proc.stderr


@pytest.mark.parametrize("variable", ["RUN_ID", "RESUME"])
def test_a_run_id_that_is_no_folder_name_is_refused_before_anything_runs(tmp_path, variable):
    marker = tmp_path / "pwned"
    reports = tmp_path / "reports"
    proc = make("profile-matrix", f"{variable}=r1; touch {marker}", f"REPORTS={reports}")
    assert proc.returncode == 2, proc.stderr
    assert not marker.exists() and not reports.exists()
    (line,) = own_lines(proc.stderr)
    assert line.startswith("make profile-matrix: run id 'r1; touch") and "not usable as a folder name" in line


def test_baselines_is_a_folder_name_not_shell_text(tmp_path):
    marker, hostile = injection(tmp_path)
    proc = make(
        "compare",
        f"BASELINE={STORED_CELL}",
        f"CURRENT={STORED_CELL}",
        f"BASELINES={tmp_path}/b{hostile}",
    )
    assert proc.returncode == 0, proc.stderr
    assert not marker.exists()
    assert "No regression" in proc.stdout


def test_reports_and_history_with_quotes_spaces_and_backticks_are_used_as_given(tmp_path):
    """REPORTS="out dir" was split by the shell, so the merge never ran; HISTORY likewise."""
    marker = tmp_path / "pwned"
    runner = tmp_path / "runner one"
    runner.mkdir()
    shutil.copy(STORED_CELL, runner / STORED_CELL.name)
    reports = tmp_path / f"out dir's `touch {marker}`"
    history = tmp_path / "hist'ory $(touch pwned)"
    proc = make(
        "ci-merge",
        env={
            "RUN_DIRS": str(runner).replace(" ", "?"),  # RUN_DIRS is globbed: ? matches the space
            "RUN_ID": "ci1",
            "REPORTS": str(reports),
            "HISTORY": str(history),
            "MATRIX": str(REPO / "tests" / "matrices" / "small.yaml"),
            "BASELINES": str(tmp_path / "baselines"),
            "GITHUB_STEP_SUMMARY": "",
        },
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert not marker.exists() and not (REPO / "pwned").exists()
    assert (reports / "matrix-ci1.json").is_file() and (reports / "matrix-ci1.html").is_file()
    cell_id = json.loads(STORED_CELL.read_text())["cell"]["id"]
    assert (reports / "runs" / "ci1" / f"{cell_id}.json").is_file()
    assert any(history.iterdir())


def test_a_checkout_path_with_a_backtick_a_quote_and_a_space_is_a_path(tmp_path):
    """PATH="$(CURDIR)/..." ran a backtick in the checkout's path."""
    checkout = tmp_path / "my `touch pwned` check'out"
    checkout.mkdir()
    for name in ("Makefile", "noxfile.py", "pyproject.toml", "harness", ".venv", "tests"):
        (checkout / name).symlink_to(REPO / name)
    proc = make(
        "ci-cell",
        env={
            "CELL": "measure",
            "RUN_ID": "t1",
            "REPORTS": str(tmp_path / "reports"),
            "MATRIX": str(REPO / "tests" / "matrices" / "small.yaml"),
        },
        cwd=checkout,
    )
    assert proc.returncode == 0, proc.stderr
    assert "no environment was built" in proc.stderr + proc.stdout
    assert not (checkout / "pwned").exists() and not (REPO / "pwned").exists()
