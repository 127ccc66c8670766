"""The harness's overhead over a whole matrix: the wall time of `nox -s profile_matrix` and
the merge after it (what `make profile-matrix` runs) against the sum of every sample's
process_wall_s (the time the measured processes ran), warm-ups included; the issue's target
is 1.10 or less with uv's cache warm.

The difference is what the harness adds. The breakdown names what is recorded: the
environment builds (EnvRecord.build_s), cold-cache eviction (Sample.evict_s), import
attribution (a separate -X importtime run only in cells without a warm-up; counted here at
that cell's median sample wall, as it loads the same stack), the reports (the merge, timed
here), and the rest (nox, the planner, process start-up, residency checks, report writes).
Runs the default matrix (matrix.yaml); --matrix, --runs and --warmups make a smaller one.

    .venv/bin/python bench/matrix_overhead.py [--matrix matrix.yaml] [--runs N] [--warmups N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
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
    parser.add_argument("--matrix", type=Path, default=ROOT / "matrix.yaml")
    parser.add_argument("--runs", type=int, help="override the matrix's runs")
    parser.add_argument("--warmups", type=int, help="override the matrix's warmups")
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
    overrides = {"--runs": args.runs, "--warmups": args.warmups}
    posargs = [part for flag, value in overrides.items() if value is not None for part in (flag, str(value))]
    posargs = ["--", *posargs] if posargs else []
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

    merge_started = time.perf_counter()
    report, _ = merge_run(run_dir, skip_bad=True)
    reports_s = time.perf_counter() - merge_started
    wall_s += reports_s
    samples = [sample for cell in report.cells.values() for sample in cell.samples]
    walls = [s.metrics["process_wall_s"] for s in samples if "process_wall_s" in s.metrics]
    samples_s = sum(walls)
    counted_s = sum(s.metrics.get("process_wall_s", 0.0) for s in samples if s.counted)
    build_s = sum(env.build_s or 0.0 for env in report.environments.values())
    evict_s = sum(s.evict_s or 0.0 for s in samples)
    # A separate attribution run loads the same stack as a sample: its cell's median.
    attribution_s = sum(
        statistics.median(s.metrics["process_wall_s"] for s in cell.samples if "process_wall_s" in s.metrics)
        for cell in report.cells.values()
        if cell.import_attribution is not None
        and cell.import_attribution.run == "separate"
        and any("process_wall_s" in s.metrics for s in cell.samples)
    )
    if not args.keep:
        shutil.rmtree(run_dir, ignore_errors=True)

    def line(label: str, seconds: float) -> None:
        print(f"  {label + ':':<44} {seconds:7.1f} s")

    print()
    print(f"matrix: {args.matrix}  ({len(report.cells)} cells, {len(walls)} samples)")
    print(f"wall time (nox -s profile_matrix, then merge):  {wall_s:7.1f} s")
    print(
        f"sum of samples' process_wall_s:                 {samples_s:7.1f} s  "
        f"(counted samples only: {counted_s:.1f} s)"
    )
    ratio = f"{wall_s / samples_s:7.2f} x" if samples_s else "no samples"
    print(f"ratio wall / samples (target <= 1.10):          {ratio}")
    print("the rest of the wall time:")
    line("environment builds", build_s)
    line("eviction", evict_s)
    line("import attribution (separate runs, estimated)", attribution_s)
    line("reports (merge)", reports_s)
    line(
        "other (nox, planner, start-up, checks)",
        wall_s - samples_s - build_s - evict_s - attribution_s - reports_s,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
