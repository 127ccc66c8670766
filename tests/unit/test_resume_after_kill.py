"""kill -9 of the measuring process, then --resume: a finished sample is kept and its cell
completes (issue 27, item 4).

The measuring process is really killed: cell ``sb``'s entry point sends SIGKILL to its
parent, the measuring process, after cell ``sa``'s only sample has finished and been
written. The planner marks what was left failed ("the measuring process exited -9").
Resumed, ``sa`` has no sample left to measure; it stayed failed for good, its finished
sample on disk. Entry points that import nothing heavy: no model is loaded.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from harness.result import FailureKind, read_report

APP = """
import os, signal
from pathlib import Path

KILLED = Path(__file__).parent / "killed"

class Encoder:
    def encode(self, sentence):
        return [0.0, 1.0]

def load():
    return Encoder()

def kill_the_measuring_process():
    if not KILLED.exists():  # once: the resumed run measures in peace
        KILLED.write_text("")
        os.kill(os.getppid(), signal.SIGKILL)
    return Encoder()
"""

MATRIX = """
runs: 1
warmups: 0
order: sequential
models:
  - {name: sa, source: "entry:crashapp:load", path: app}
  - {name: sb, source: "entry:crashapp:kill_the_measuring_process", path: app}
torch: ["2.13.0"]
modes: [warm]
"""


def run_cells(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "harness", "run-cells", "--matrix", "matrix.yaml", "--torch", "2.13.0"]
        + ["--run-dir", str(tmp_path / "run"), "--any-torch", *extra],
        capture_output=True, text=True, cwd=tmp_path, timeout=600,
    )  # fmt: skip


def test_resume_after_a_killed_measuring_process_keeps_a_finished_sample(tmp_path):
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "crashapp.py").write_text(APP)
    (tmp_path / "matrix.yaml").write_text(MATRIX)

    first = run_cells(tmp_path)
    assert first.returncode == 1, first.stdout + first.stderr
    sa_file = next((tmp_path / "run").glob("sa-*.json"))
    sa = read_report(sa_file)
    # The crash as the issue saw it: sa's sample finished, the cell marked failed.
    assert [s.ok for s in sa.samples] == [True]
    assert sa.status == "failed" and sa.failure is not None and sa.failure.kind == FailureKind.CRASH
    assert "exited -9" in (sa.failure.detail or "")

    resumed = run_cells(tmp_path, "--resume")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    sa = read_report(sa_file)
    assert sa.status == "complete" and sa.failure is None
    assert [s.ok for s in sa.samples] == [True]  # the one from before: nothing measured twice
    sb = read_report(next((tmp_path / "run").glob("sb-*.json")))
    assert sb.status == "complete" and [s.ok for s in sb.samples] == [True]
    assert "2 of 2 cells complete" in resumed.stdout
