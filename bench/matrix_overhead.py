"""The harness's overhead over a whole matrix: the wall time of `nox -s profile_matrix`
against the sum of its samples' process_wall_s (the time the measured processes ran).

The difference is what the harness adds: building the environments, starting nox and
each profile process, cold-cache eviction and checks, import attribution, statistics and
report writing. Run on a small matrix by default (tests/matrices/small.yaml: one torch
version, cold and warm, two runs).

    .venv/bin/python bench/matrix_overhead.py [--matrix tests/matrices/small.yaml] [--runs N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness.analysis.merge import merge_run  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--matrix", type=Path, default=ROOT / "tests" / "matrices" / "small.yaml")
    parser.add_argument("--runs", type=int, help="override the matrix's runs")
    parser.add_argument("--keep", action="store_true", help="keep the run folder under reports/runs/")
    args = parser.parse_args()

    bin_dir = Path(sys.executable).parent
    run_id = "bench-overhead-" + datetime.now().strftime("%Y%m%d-%H%M%S")
    run_dir = ROOT / "reports" / "runs" / run_id
    env = {
        **os.environ,
        "MATRIX": str(args.matrix.resolve()),
        "HARNESS_RUN_ID": run_id,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    posargs = ["--", "--runs", str(args.runs)] if args.runs else []
    with tempfile.TemporaryDirectory(prefix="bench-nox-") as envdir:
        cmd = [
            str(bin_dir / "nox"),
            "-f",
            str(ROOT / "noxfile.py"),
            "--envdir",
            envdir,
            "-s",
            "profile_matrix",
            *posargs,
        ]
        print("$ MATRIX=" + str(args.matrix) + " " + " ".join(cmd), flush=True)
        started = time.perf_counter()
        proc = subprocess.run(cmd, env=env, cwd=ROOT)
        wall_s = time.perf_counter() - started
    if proc.returncode != 0:
        print(f"nox exited {proc.returncode}; figures below cover what finished", file=sys.stderr)

    report, _ = merge_run(run_dir, skip_bad=True)
    cells = len(report.cells)
    walls = [
        (s, s.metrics["process_wall_s"])
        for c in report.cells.values()
        for s in c.samples
        if "process_wall_s" in s.metrics
    ]
    n_samples = len(walls)
    samples_s = sum(wall for _, wall in walls)
    counted_s = sum(wall for sample, wall in walls if sample.counted)
    build_s = sum(env.build_s or 0.0 for env in report.environments.values())
    if not args.keep:
        shutil.rmtree(run_dir, ignore_errors=True)

    print()
    print(f"matrix: {args.matrix}  ({cells} cells, {n_samples} samples)")
    print(f"matrix wall time (nox -s profile_matrix):      {wall_s:7.1f} s")
    print(
        f"sum of samples' process_wall_s:                {samples_s:7.1f} s  "
        f"(counted samples only: {counted_s:.1f} s)"
    )
    ratio = f"{wall_s / samples_s:7.2f} x" if samples_s else "no samples"
    print(f"ratio wall / samples:                          {ratio}")
    print(f"  of which environment builds:                 {build_s:7.1f} s")
    print(
        f"  other harness overhead:                      {wall_s - samples_s - build_s:7.1f} s "
        f"(nox, profile start-up, eviction, import attribution, statistics, reports)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
