"""A comparison that compares nothing is unusable input, not a pass (issue 27, item 10).

Two reports with no cell in common (warm against cold) printed "No cell is present in
both...", then "No regression", and exited 0: a CI gate passed having compared nothing.
``compare``, ``reference`` and ``ci compare`` now say so in one line and exit 2. Stored
reports only: nothing is measured.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

from harness.result import read_report

REPO = Path(__file__).resolve().parents[2]
STORED_CELL = REPO / "tests" / "data" / "warm-8runs.json"


def harness(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "harness", *args], capture_output=True, text=True, cwd=cwd, timeout=300
    )


def cold_twin(tmp_path: Path) -> Path:
    """The stored warm cell as a cold cell of the same machine: no cell id in common."""
    report = read_report(STORED_CELL)
    report.cell.mode = "cold"
    report.cell.id = report.cell.id.replace("-warm-", "-cold-")
    run = tmp_path / "runs" / "r1"
    run.mkdir(parents=True)
    return report.write(run / f"{report.cell.id}.json")


def test_compare_of_reports_with_no_cell_in_common_is_one_line_and_exit_2(tmp_path):
    warm = shutil.copy(STORED_CELL, tmp_path / "warm.json")
    cold = cold_twin(tmp_path)
    proc = harness("compare", str(warm), str(cold), cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("harness compare: error: ") and "no cell in common" in line
    assert "-warm-cpu" in line and "-cold-cpu" in line
    assert "No regression" not in proc.stdout


def test_compare_of_a_report_with_itself_still_compares(tmp_path):
    warm = shutil.copy(STORED_CELL, tmp_path / "warm.json")
    proc = harness("compare", str(warm), str(warm), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "No regression" in proc.stdout


def test_reference_and_ci_compare_against_a_baseline_with_no_cell_in_common_exit_2(tmp_path):
    baselines = tmp_path / "baselines"
    saved = harness("baseline", "save", str(STORED_CELL), "--root", str(baselines), cwd=tmp_path)
    assert saved.returncode == 0, saved.stderr
    cold = cold_twin(tmp_path)
    merged = tmp_path / "matrix-r1.json"
    proc = harness("merge", str(cold.parent), "--output", str(merged), "--no-history", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr

    proc = harness("reference", str(merged), "--baselines-dir", str(baselines), cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("harness reference: error: ") and "nothing was compared" in line

    proc = harness("ci", "compare", str(merged), "--baselines-dir", str(baselines), cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("harness ci: error: the stored baseline of machine ") and "shares no cell" in line
    # The tables still say what happened, and no pass is claimed.
    assert "NOTHING COMPARED" in proc.stdout and not re.search(r"No significant regression", proc.stdout)
