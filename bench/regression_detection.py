"""How often does `compare` cry wolf, and how small a slowdown does it catch?

Profiles the real default model in the real environment, with a known slowdown injected
through bench/slowdown/sitecustomize.py (a sleep on `import sentence_transformers`, sized
as a fraction of the calibrated median total), then compares the reports as a user would:

* A/A: consecutive profiles of the unchanged environment -> false-alarm rate (any
  `slower` or `faster` on total_s);
* A/B: each slowed profile against the unchanged profiles just before and after it ->
  detection rate (`slower` on total_s) per slowdown level.

Rounds run A, B(level 1), B(level 2), ..., so that every comparison is between profiles
taken minutes apart on the same machine, as a CI job comparing against a fresh baseline.

    .venv/bin/python bench/regression_detection.py --repeats 4 --levels 0.05,0.10,0.20
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SLOWDOWN_DIR = REPO / "bench" / "slowdown"
sys.path.insert(0, str(REPO))

from harness.analysis.compare import compare_files  # noqa: E402
from harness.result import read_report  # noqa: E402


def profile(output: Path, delay_s: float, runs: int, warmups: int, reuse: bool = False) -> Path:
    if reuse and output.exists():
        return output
    env = {
        **os.environ,
        "HARNESS_INJECT_DELAY_S": f"{delay_s:.4f}",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(SLOWDOWN_DIR), os.environ.get("PYTHONPATH")])),
    }
    subprocess.run(
        [
            sys.executable,
            "-m",
            "harness",
            "profile",
            "--runs",
            str(runs),
            "--warmups",
            str(warmups),
            "--no-import-attribution",
            "--quiet",
            "--output",
            str(output),
        ],
        cwd=REPO,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return output


THRESHOLD = 0.05


def total_verdict(baseline: Path, current: Path) -> tuple[str, float, bool]:
    """The total_s verdict, the measured ratio, and whether the busy-machine guard spoke."""
    comparison = compare_files(baseline, current, threshold=THRESHOLD)
    verdict = next(v for v in comparison.verdicts if v.metric == "total_s")
    return verdict.verdict, verdict.ratio, bool(comparison.busy)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=4, help="rounds (default: %(default)s)")
    parser.add_argument(
        "--levels",
        default="0.05,0.10,0.20",
        help="injected slowdowns as fractions of the median total (default: %(default)s)",
    )
    parser.add_argument(
        "--runs", type=int, default=5, help="runs per profile (default: the harness default, 5)"
    )
    parser.add_argument("--warmups", type=int, default=1, help="warm-ups per profile (default: 1)")
    parser.add_argument("--keep", type=Path, help="keep the reports in this folder")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON here")
    parser.add_argument(
        "--threshold", type=float, default=0.05, help="compare --threshold (default: %(default)s)"
    )
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="compare the reports already in --keep instead of profiling again",
    )
    args = parser.parse_args()
    global THRESHOLD
    THRESHOLD = args.threshold
    levels = [float(x) for x in args.levels.split(",")]
    folder = args.keep or Path(tempfile.mkdtemp(prefix="regression-detection-"))
    folder.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()

    def log(text: str) -> None:
        print(f"[{time.monotonic() - started:6.0f}s] {text}", file=sys.stderr, flush=True)

    a_reports: list[Path] = []
    b_reports: dict[float, list[Path]] = {level: [] for level in levels}
    delay_of: dict[float, float] = {}
    for round_no in range(args.repeats + 1):
        a = profile(folder / f"A{round_no}.json", 0.0, args.runs, args.warmups, args.reuse)
        a_reports.append(a)
        if round_no == 0:
            median = read_report(a).median("total_s")
            delay_of = {level: level * median for level in levels}
            log(
                f"calibration: median total {median:.3f} s; delays "
                + ", ".join(f"{level:.0%} = {delay:.3f} s" for level, delay in delay_of.items())
            )
        log(f"A{round_no} done")
        if round_no == args.repeats:
            break  # the last A closes the final round
        for level in levels:
            b_reports[level].append(
                profile(
                    folder / f"B{round_no}-{level:g}.json",
                    delay_of[level],
                    args.runs,
                    args.warmups,
                    args.reuse,
                )
            )
        log(f"round {round_no} done")

    rows = []
    aa = [total_verdict(x, y) for x, y in zip(a_reports, a_reports[1:])]
    false_alarms = sum(v in ("slower", "faster") for v, _, _ in aa)
    rows.append(
        {
            "comparison": "A/A",
            "injected": 0.0,
            "n": len(aa),
            "hits": false_alarms,
            "verdicts": [v for v, _, _ in aa],
            "ratios": [r for _, r, _ in aa],
            "busy": sum(b for _, _, b in aa),
        }
    )
    for level in levels:
        pairs = []
        for i, b in enumerate(b_reports[level]):
            pairs += [total_verdict(a_reports[i], b), total_verdict(a_reports[i + 1], b)]
        rows.append(
            {
                "comparison": "A/B",
                "injected": level,
                "n": len(pairs),
                "hits": sum(v == "slower" for v, _, _ in pairs),
                "verdicts": [v for v, _, _ in pairs],
                "ratios": [r for _, r, _ in pairs],
                "busy": sum(b for _, _, b in pairs),
            }
        )

    from tabulate import tabulate

    table = []
    for row in rows:
        counts = {k: row["verdicts"].count(k) for k in ("slower", "faster", "no change", "inconclusive")}
        rate_name = "false alarms" if row["comparison"] == "A/A" else "detected"
        table.append(
            [
                row["comparison"],
                f"{row['injected']:.0%}",
                row["n"],
                f"{rate_name} {row['hits']}/{row['n']} ({row['hits'] / row['n']:.0%})",
                " ".join(f"{k} {v}" for k, v in counts.items() if v),
                f"{min(row['ratios']) - 1:+.1%} … {max(row['ratios']) - 1:+.1%}",
                row["busy"],
            ]
        )
    reliable = [row["injected"] for row in rows[1:] if row["hits"] == row["n"]]
    print(
        f"regression detection: {args.repeats} rounds, {args.runs} runs + {args.warmups} warm-up per "
        f"profile, threshold {args.threshold:.0%}, alpha 0.05, verdict on total_s; "
        f"{time.monotonic() - started:.0f} s"
    )
    print(
        tabulate(
            table,
            headers=["compare", "slowdown", "pairs", "rate", "verdicts", "measured change", "busy machine"],
            tablefmt="github",
        )
    )
    print(
        f"smallest slowdown detected in every pair: {min(reliable):.0%}"
        if reliable
        else "no slowdown level was detected in every pair"
    )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "rows": rows,
                    "delays_s": delay_of,
                    "runs": args.runs,
                    "warmups": args.warmups,
                    "repeats": args.repeats,
                },
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
