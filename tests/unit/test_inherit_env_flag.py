"""``--inherit-env`` after ``--`` on the nox sessions reaches ``harness run-cells``, and
run-cells takes it (checked on an error path, so that nothing is measured)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from harness.envs.options import parse_options

REPO = Path(__file__).resolve().parents[2]


def test_the_sessions_take_inherit_env():
    assert parse_options(["--runs", "2", "--inherit-env"]).inherit_env is True
    given = parse_options(["--runs", "2"])
    assert given.inherit_env is False and given.merge_args == []


def test_run_cells_takes_inherit_env(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "harness", "run-cells", "--matrix", str(REPO / "matrix.yaml"), "--env",
         "2.13.0", "--inherit-env", "--run-dir", str(tmp_path / "run"), "--cells", "no-such-cell"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    # Past argument parsing: the one-line error is about the cell, not the flag.
    assert proc.returncode == 2 and "no-such-cell is not a cell" in proc.stderr, proc.stderr
