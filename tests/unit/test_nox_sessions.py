"""The noxfile without building anything: the sessions it generates from the matrix, and
the refusals (a broken matrix, bad arguments after ``--``) that come before any build.
tests/e2e/test_nox_matrix.py runs the sessions for real."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import yaml
from conftest import REPO, SMALL, nox


def write_matrix(path: Path, **changes) -> Path:
    data = yaml.safe_load(SMALL.read_text())
    for key, value in changes.items():
        data[key] = value
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_sessions_are_generated_from_the_matrix(tmp_path):
    listed = nox("-l", "--json", matrix=SMALL)
    assert listed.returncode == 0, listed.stderr
    names = {s["session"] for s in json.loads(listed.stdout)}
    assert {
        "cold_start(torch-2.13.0)",
        "warm_start(torch-2.13.0)",
        "profile_matrix(torch-2.13.0)",
        "merge",
    } <= names

    # One more torch version in the YAML is one more session of each kind; no Python edited.
    two = write_matrix(tmp_path / "two.yaml", torch=["2.13.0", "2.14.1"])
    names = {s["session"] for s in json.loads(nox("-l", "--json", matrix=two).stdout)}
    assert {"cold_start(torch-2.14.1)", "warm_start(torch-2.14.1)", "profile_matrix(torch-2.14.1)"} <= names


def test_a_broken_matrix_stops_nox_with_its_problems(tmp_path):
    broken = write_matrix(tmp_path / "broken.yaml", torch=["2.x"], runs=0)
    proc = nox("-l", matrix=broken)
    assert proc.returncode == 2
    assert "torch[0]" in proc.stderr and "runs" in proc.stderr and "Traceback" not in proc.stderr


def test_bad_arguments_after_the_double_dash_are_one_line(tmp_path):
    for args, words in (
        (["--runs", "0"], "--runs: 0 must be 1 or more"),
        (["--warmups", "1e9"], "is not a whole number"),
        (["--runs", "1000000"], "must be 10000 or less"),
        (["--resume", "../../etc"], "is not usable in a file name"),
    ):
        proc = nox(
            "-s",
            "cold_start",
            "--",
            *args,
            matrix=SMALL,
            envdir=tmp_path / "envs",
            reports=tmp_path / "reports",
        )
        assert proc.returncode != 0 and words in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr and "uv pip install" not in proc.stderr
    assert not (tmp_path / "reports").exists()


def test_make_profile_matrix_keeps_its_history_under_reports(tmp_path):
    """REPORTS=DIR is where everything goes: the merge's history too, not reports/history."""
    proc = subprocess.run(
        ["make", "-n", "--no-print-directory", "profile-matrix", f"REPORTS={tmp_path}"],
        capture_output=True, text=True, cwd=REPO, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    merge = next(line for line in proc.stdout.splitlines() if "harness merge" in line)
    # The value reaches the recipe through its environment (issue 27): read what it holds.
    assert '--history "$MK_HISTORY"' in merge, merge
    shown = subprocess.run(
        ["make", "-s", "--no-print-directory", "--eval", "show: ; @printf '%s\\n' \"$$MK_HISTORY\"",
         "show", f"REPORTS={tmp_path}"],
        capture_output=True, text=True, cwd=REPO, timeout=120,
    )  # fmt: skip
    assert shown.stdout.strip() == f"{tmp_path}/history", shown.stdout + shown.stderr
