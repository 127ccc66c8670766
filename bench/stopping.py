"""How often does a run that stops when decided get it wrong, and how many rounds does it use?

Trace-driven, so that the error rates rest on thousands of trials rather than the handful a
live benchmark affords. Two steps:

**Record** (``--record LOAD``): two identical environments of the real default model, A and
A' (bench/interleaving.py's cells, measured with the harness's own runner, one fresh probe
process a sample), in interleaved rounds: a warm-up round, then ``--rounds`` rounds, both
cells once per round in a freshly shuffled order. LOAD ``hog`` runs bench/interleaving.py's
switching CPU hog meanwhile, ``quiet`` nothing. Every sample keeps every metric it has
(total_s, and total_cpu_s where the probe records it); a failed sample is null. The trace is
written after every round (``--out``, default bench/data/stopping-LOAD.json), so a recording
stopped early keeps its rounds.

**Simulate** (the default): from each trace (``--traces``; default the two under
bench/data/), ``--trials`` runs per case, each a random contiguous stretch of its rounds in
their recorded order (so the drift and the load's spells are the recorded ones; a stretch
that runs past the last round goes on from the first; which of the two cells plays A is
drawn per trial, they being identical). Rounds where either sample failed are dropped first,
as the paired comparison drops them. Cases: ``aa`` (A against A'), and ``b05``, ``b10``,
``b20``: A against A' with every time of A' multiplied by 1.05, 1.10, 1.20 (a slowdown
modelled as multiplicative: it scales every sample, so the per-round log ratio moves by
log(1 + level) and its spread stays the recorded one). Four rules judge each trial, all at
``--threshold`` and alpha 0.05, with the verdict words of harness.analysis.sequential:

* ``stopping``: the confidence sequence, looked at after every round from ``--min-rounds``
  on, stopping at the first decided round, else at ``--max-rounds``;
* ``peeking``: the fixed-sample t-interval of today's paired verdict, looked at the same
  way (what a run that simply re-ran ``compare --within`` after every round would do);
* ``fixed10``, ``fixed30``: today's paired verdict after exactly 10 or 30 rounds.

Printed per load, metric and case: false decisions (A/A called slower or faster), the
detection rate (called slower), the rate at which the interval excludes no change, and the
rounds used (median and 90th percentile). ``--json FILE`` writes them as
{LOAD: {METRIC: {CASE: {RULE: {FIELD: number}}}}}.

The trials are not independent: stretches of one trace overlap, so the rates' real
precision is that of the trace's length (80 rounds give 160 distinct stretches with the
swap), not of ``--trials``; the trials average over where a stretch starts.

    .venv/bin/python bench/stopping.py --record hog --rounds 80    # ~20 min, machine to itself
    .venv/bin/python bench/stopping.py --record quiet --rounds 80
    .venv/bin/python bench/stopping.py --json stopping.json        # seconds
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import math
import os
import platform
import random
import signal
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
DATA = BENCH / "data"
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(BENCH))

from harness.analysis import sequential  # noqa: E402
from harness.errors import UserError  # noqa: E402

LOADS = ("hog", "quiet")
METRICS = ("total_s", "total_cpu_s")
CASES = {"aa": 0.0, "b05": 0.05, "b10": 0.10, "b20": 0.20}
RULES = ("stopping", "peeking", "fixed10", "fixed30")
# --json's fields, a fixed shape other tools read (false_rate for aa only).
FIELDS = ("false_rate", "slower_rate", "changed_rate", "rounds_median", "rounds_p90")
CELLS = ("A", "A-prime")
TRACE_KIND, TRACE_VERSION = "stopping trace", 1
ALPHA = 0.05


# --- recording --------------------------------------------------------------------------


def record(args) -> int:
    """Measure A and A' in interleaved rounds and write the trace after every round."""
    from interleaving import BackgroundLoad, cell, measure, metrics

    from harness.result import DEFAULT_MODEL, Settings

    out: Path = args.out or DATA / f"stopping-{args.record}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    rng = random.Random(args.seed)
    trace = {
        "kind": TRACE_KIND,
        "version": TRACE_VERSION,
        "load": args.record,
        "smoke": args.rounds < 10,  # too short to simulate from: a check that recording works
        "recorded": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
        },
        "model": DEFAULT_MODEL,
        "settings": {
            "warmups": args.warmups,
            "seed": args.seed,
            **(
                {"hog_procs": args.hog_procs, "hog_min": args.hog_min, "hog_max": args.hog_max}
                if args.record == "hog"
                else {}
            ),
        },
        "cells": list(CELLS),
        "rounds": [],
    }
    started = time.monotonic()

    def save() -> None:
        trace["seconds"] = round(time.monotonic() - started, 1)
        out.write_text(json.dumps(trace, indent=1) + "\n")

    settings = Settings.checked(runs=args.rounds, warmups=args.warmups)
    with tempfile.TemporaryDirectory(prefix="stopping-") as tmp:
        folder = Path(tmp)
        cells = {name: cell(folder, name, 0.0, settings) for name in CELLS}
        load = (
            BackgroundLoad(args.hog_procs, args.hog_min, args.hog_max, random.Random(args.seed + 1))
            if args.record == "hog"
            else contextlib.nullcontext()
        )
        try:
            with load:
                measure(cells, "interleaved", 0, args.warmups, rng, read=metrics)
                for number in range(args.rounds):
                    got = measure(cells, "interleaved", 1, 0, rng, read=metrics)
                    trace["rounds"].append({name: got[name][0] for name in CELLS})
                    trace["load_switches"] = getattr(load, "switches", [])
                    save()
                    print(f"round {number + 1}/{args.rounds} -> {out}", file=sys.stderr, flush=True)
        except (KeyboardInterrupt, SystemExit):
            print(f"stopped: {len(trace['rounds'])} rounds kept in {out}", file=sys.stderr)
    save()
    return 0


# --- simulation -------------------------------------------------------------------------


def fail(message: str) -> None:
    """Bad input: one line naming what to fix, exit status 2."""
    print(f"stopping.py: error: {message}", file=sys.stderr)
    sys.exit(2)


def read_trace(path: Path) -> dict:
    """A trace written by --record, checked (a one-line error and exit 2 if it is not one)."""
    try:
        trace = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        fail(f"{path}: {exc}")
        raise  # not reached: fail exits
    if (
        not isinstance(trace, dict)
        or trace.get("kind") != TRACE_KIND
        or trace.get("version") != TRACE_VERSION
    ):
        fail(f"{path}: not a {TRACE_KIND} version {TRACE_VERSION} (bench/stopping.py --record writes one)")
    if trace.get("load") not in LOADS or not isinstance(trace.get("rounds"), list):
        fail(f"{path}: needs a load ({', '.join(LOADS)}) and a list of rounds")
    return trace


def paired_rounds(trace: dict, metric: str) -> np.ndarray:
    """The (rounds, 2) times of A and A' for ``metric``, rounds where both are good."""
    rows = []
    for round_ in trace["rounds"]:
        pair = [(round_.get(name) or {}).get(metric) for name in CELLS]
        if all(isinstance(v, int | float) and v > 0 for v in pair):
            rows.append(pair)
    return np.asarray(rows, float).reshape(-1, 2)


def stretches(times: np.ndarray, trials: int, length: int, rng: np.random.Generator) -> np.ndarray:
    """(trials, length, 2): random contiguous stretches in recorded order (continuing from the
    first round past the last), the two cells swapped in a random half of the trials."""
    starts = rng.integers(0, len(times), trials)
    index = (starts[:, None] + np.arange(length)[None, :]) % len(times)
    out = times[index]
    swap = rng.random(trials) < 0.5
    out[swap] = out[swap][:, :, ::-1]
    return out


def judge(logs: np.ndarray, rule: str, args) -> dict[str, np.ndarray]:
    """Per trial (rows of per-round log ratios): the state it ends in, whether its interval
    then excludes no change, and the rounds it used."""
    if rule in ("stopping", "peeking"):
        critical = sequential.SEQUENCE if rule == "stopping" else sequential.FIXED_T
        mean, low, high = sequential.intervals(logs[:, : args.max_rounds], alpha=ALPHA, critical=critical)
        state = sequential.states(mean, low, high, threshold=args.threshold)
        stop, _decided = sequential.stopping_rounds(
            state, min_rounds=args.min_rounds, max_rounds=args.max_rounds
        )
    else:
        rounds = int(rule.removeprefix("fixed"))
        mean, low, high = sequential.intervals(logs[:, :rounds], alpha=ALPHA, critical=sequential.FIXED_T)
        state = sequential.states(mean, low, high, threshold=args.threshold)
        stop = np.full(len(logs), rounds)
    at = (np.arange(len(stop)), stop - 1)
    return {"state": state[at], "changed": (low[at] > 0) | (high[at] < 0), "rounds": stop}


def figures(judged: dict[str, np.ndarray], case: str) -> dict[str, float]:
    state = judged["state"]
    out = {}
    if case == "aa":
        out["false_rate"] = float(np.mean(np.isin(state, [sequential.SLOWER, sequential.FASTER])))
    out["slower_rate"] = float(np.mean(state == sequential.SLOWER))
    out["changed_rate"] = float(np.mean(judged["changed"]))
    out["no_change_rate"] = float(np.mean(state == sequential.NO_CHANGE))  # printed, not in --json
    out["rounds_median"] = float(np.median(judged["rounds"]))
    out["rounds_p90"] = float(np.percentile(judged["rounds"], 90))
    return out


def simulate(traces: list[dict], args) -> dict:
    """{LOAD: {METRIC: {CASE: {RULE: {FIELD: number}}}}} over every trace and metric it has."""
    rng = np.random.default_rng(args.seed)
    length = max(args.max_rounds, 30)
    out: dict = {}
    for trace in traces:
        for metric in METRICS:
            times = paired_rounds(trace, metric)
            if len(times) < 2:
                continue
            base = stretches(times, args.trials, length, rng)
            logs = np.log(base[:, :, 1] / base[:, :, 0])
            per_case = out.setdefault(trace["load"], {}).setdefault(metric, {})
            for case, level in CASES.items():
                shifted = logs + math.log1p(level)  # A' x (1 + level): the multiplicative model
                per_case[case] = {rule: figures(judge(shifted, rule, args), case) for rule in RULES}
    return out


def render(results: dict, traces: list[dict], args) -> str:
    from tabulate import tabulate

    blocks = []
    for trace in traces:
        load = trace["load"]
        for metric, per_case in results.get(load, {}).items():
            rows = []
            for case, per_rule in per_case.items():
                for rule, f in per_rule.items():
                    rows.append(
                        [
                            case,
                            rule,
                            f"{f['false_rate']:.1%}" if "false_rate" in f else "",
                            f"{f['slower_rate']:.1%}",
                            f"{f['no_change_rate']:.1%}",
                            f"{f['changed_rate']:.1%}",
                            f"{f['rounds_median']:g} / {f['rounds_p90']:g}",
                        ]
                    )
            usable = len(paired_rounds(trace, metric))
            smoke = " (SMOKE TRACE: too short for figures)" if trace.get("smoke") else ""
            blocks.append(
                f"{load}, {metric}: {usable} usable rounds recorded {trace.get('recorded', '?')}{smoke}; "
                f"{args.trials} trials per case, threshold ±{args.threshold:.0%}, alpha {ALPHA:g}, "
                f"rounds {args.min_rounds}..{args.max_rounds}\n"
                + tabulate(
                    rows,
                    headers=[
                        "case",
                        "rule",
                        "A/A false",
                        "called slower",
                        "called no change",
                        "interval excludes 0",
                        "rounds median / p90",
                    ],
                    tablefmt="github",
                )
            )
    blocks.append(
        "Targets (hog, stopping, threshold 5%, max 60): A/A false <= 5%; b10 slower >= 95%; "
        "b20 slower >= 99%; b05 interval excludes 0 >= 80%. Quiet, stopping: b10 rounds median <= 6; "
        "A/A decided no change within a median of 12 rounds."
    )
    return "\n\n".join(blocks)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--traces", type=Path, nargs="+", help="trace files (default: bench/data/stopping-*.json)"
    )
    parser.add_argument("--trials", type=int, default=2000, help="simulated runs per case (default: 2000)")
    parser.add_argument("--threshold", type=float, default=0.05, help="verdict threshold (default: 0.05)")
    parser.add_argument(
        "--min-rounds",
        type=int,
        default=sequential.DEFAULT_MIN_ROUNDS,
        help="first round a run may stop at (default: 3)",
    )
    parser.add_argument("--max-rounds", type=int, default=60, help="last round of a run (default: 60)")
    parser.add_argument("--seed", type=int, default=20261208, help="seed of every random choice")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the figures here")
    parser.add_argument(
        "--record", choices=LOADS, help="record a trace under this load instead of simulating"
    )
    parser.add_argument("--rounds", type=int, default=80, help="--record: rounds to record (default: 80)")
    parser.add_argument(
        "--out", type=Path, help="--record: the trace file (default: bench/data/stopping-LOAD.json)"
    )
    parser.add_argument("--warmups", type=int, default=1, help="--record: warm-up rounds (default: 1)")
    parser.add_argument(
        "--hog-procs", type=int, default=1, help="--record hog: busy processes when the load is on"
    )
    parser.add_argument("--hog-min", type=float, default=20.0, help="--record hog: shortest on/off spell, s")
    parser.add_argument("--hog-max", type=float, default=40.0, help="--record hog: longest on/off spell, s")
    args = parser.parse_args()
    if args.record:
        if args.rounds < 1 or args.warmups < 0:
            parser.error("need --rounds >= 1 and --warmups >= 0")
        return record(args)
    if args.trials < 1 or not 0 < args.threshold < 1:
        parser.error("need --trials >= 1 and 0 < --threshold < 1")
    try:
        sequential.check_rounds(args.min_rounds, args.max_rounds)
    except UserError as exc:
        parser.error(str(exc))
    paths = args.traces or sorted(DATA.glob("stopping-*.json"))
    if not paths:
        parser.error(
            f"no traces in {DATA}: record them first (bench/stopping.py --record hog, then --record quiet)"
        )
    traces = [read_trace(path) for path in paths]
    loads = [trace["load"] for trace in traces]
    if len(set(loads)) < len(loads):
        parser.error(f"two traces of one load ({', '.join(loads)}): give one trace per load")
    results = simulate(traces, args)
    print(render(results, traces, args))
    if args.json:
        shape = {
            load: {
                metric: {
                    case: {rule: {k: v for k, v in f.items() if k in FIELDS} for rule, f in per_rule.items()}
                    for case, per_rule in per_case.items()
                }
                for metric, per_case in per_metric.items()
            }
            for load, per_metric in results.items()
        }
        args.json.write_text(json.dumps(shape, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
