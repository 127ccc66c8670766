"""``harness run-cells --env`` names the environments whose cells to measure; ``--torch``,
its older name, keeps working and means the same (both take environment ids and torch
versions). Checked on an error path, so that nothing is measured: a cell that is not in
the named environment is refused with one line naming it, exit 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("flag", ["--env", "--torch"])
@pytest.mark.parametrize("env", ["torch-2.13.0", "2.13.0"])
def test_env_and_torch_name_the_same_environments(tmp_path, flag, env):
    proc = subprocess.run(
        [sys.executable, "-m", "harness", "run-cells", "--matrix", str(REPO / "matrix.yaml"), flag, env,
         "--run-dir", str(tmp_path / "run"), "--cells", "no-such-cell"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"harness run-cells: error: --cells: no-such-cell is not a cell of {env} in {REPO / 'matrix.yaml'}"
    ]
    assert not (tmp_path / "run").exists()
