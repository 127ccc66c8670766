"""Does measuring in interleaved rounds catch a slowdown on a noisy machine, without crying wolf?

Three environments of the real default model: A and A' (identical: the A/A case) and B (A
with a delay injected at `import sentence_transformers` by bench/slowdown/sitecustomize.py,
sized as a fraction of A's median total: the A/B cases). Each environment is the project's
virtualenv behind a small wrapper script that sets PYTHONPATH and HARNESS_INJECT_DELAY_S
(0 for A and A'), so the three differ in nothing but the delay. Samples are taken with the
harness's own runner (harness.measure.runner.CellRun.run_sample: one fresh probe process
each).

Each repeat measures every environment (A, A' and each B level) twice, in two orders:

* sequential: each environment's warm-up and ``rounds`` samples in turn, in a drawn order,
  as a run with ``order: sequential`` measures;
* interleaved: a warm-up round, then ``rounds`` rounds, every environment once per round in
  a freshly shuffled order, as an interleaved run measures.

One measurement serves every comparison: A against A' (the A/A trial) and A against each B
(the A/B trials), so a repeat costs 2 x (2 + levels) x (warmups + rounds) samples, not twice
that per comparison.

While the trials run, a background load changes under them: a CPU hog (``--hog-procs``
busy processes) that switches on and off at random every 20 to 40 s (``--hog-min``,
``--hog-max``). The benchmark starts and stops it itself (``--no-load``: none).

Each trial's total_s is judged four ways (threshold 5%, alpha 0.05): the stored-baseline
comparison (compare's median ratio, bootstrap interval and Mann-Whitney on two blocks) on
each order, and the paired comparison (harness.analysis.paired: per-round log ratios,
t-interval, paired t-test) on each order; on a sequential trial the pairs are by order, what
``compare --within`` labels unpaired. It prints the false-alarm rate (A/A called slower or
faster) and the detection rate (A/B called slower) side by side.

The same repeat also answers the nightly question of issue 16, did tonight's stack slow the
load? R is last accepted night's environment (A), C tonight's: identical (A') or carrying a
package change's cost (B, the delay in its wrapper alone). The sequential phase comes first:
A's block there is "last night", the numbers a stored baseline keeps. The interleaved phase
is "tonight", under whatever the background load does by then: a reference run, R rebuilt
and C in the same rounds. Two judges, side by side: the reference run's paired verdict
(tonight's R against tonight's C, per-round log ratios, what ``harness reference`` gives)
and the stored-number comparison (last night's R against tonight's C, what
``REFERENCE=numbers`` gives). ``--case`` picks the table printed (default: both).

    .venv/bin/python bench/interleaving.py                        # the issue's size: hours
    .venv/bin/python bench/interleaving.py --repeats 1 --rounds 2  # a few minutes: does it run?
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SLOWDOWN_DIR = REPO / "bench" / "slowdown"
sys.path.insert(0, str(REPO))

from harness.analysis.compare import decide  # noqa: E402
from harness.analysis.paired import decide_paired  # noqa: E402
from harness.measure.models import resolve  # noqa: E402
from harness.measure.runner import CellConfig, CellRun, standalone_cell  # noqa: E402
from harness.result import DEFAULT_MODEL, Settings  # noqa: E402

METRIC = "total_s"
ORDERS = ("sequential", "interleaved")
# (name, order, how the trial is judged)
JUDGES = (
    ("sequential, compare (two blocks, Mann-Whitney)", "sequential", "blocks"),
    ("sequential, paired by order (unpaired)", "sequential", "pairs"),
    ("interleaved, compare (Mann-Whitney, pairing ignored)", "interleaved", "blocks"),
    ("interleaved, paired by round", "interleaved", "pairs"),
)


class BackgroundLoad:
    """CPU hogs that switch on and off at random intervals until stopped."""

    def __init__(self, procs: int, low_s: float, high_s: float, rng: random.Random):
        self.procs, self.low_s, self.high_s, self.rng = procs, low_s, high_s, rng
        self.children: list[subprocess.Popen] = []
        self.switches: list[tuple[float, bool]] = []  # (seconds since start, on?)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._t0 = time.monotonic()

    def _set(self, on: bool) -> None:
        if on and not self.children:
            self.children = [
                subprocess.Popen([sys.executable, "-c", "while True: pass"], start_new_session=True)
                for _ in range(self.procs)
            ]
        elif not on:
            for child in self.children:
                os.killpg(child.pid, signal.SIGKILL)
                child.wait()
            self.children = []
        self.switches.append((round(time.monotonic() - self._t0, 1), on))

    def _loop(self) -> None:
        on = self.rng.random() < 0.5
        while not self._stop.is_set():
            self._set(on)
            if self._stop.wait(self.rng.uniform(self.low_s, self.high_s)):
                break
            on = not on
        self._set(False)

    def __enter__(self) -> BackgroundLoad:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def wrapper(folder: Path, name: str, delay_s: float) -> str:
    """A python for the runner: the project's, with the slowdown hook and this delay."""
    path = folder / name
    path.write_text(
        "#!/bin/sh\n"
        f"PYTHONPATH='{SLOWDOWN_DIR}'${{PYTHONPATH:+:$PYTHONPATH}} HARNESS_INJECT_DELAY_S={delay_s:.4f} "
        f"exec '{sys.executable}' \"$@\"\n"
    )
    path.chmod(0o755)
    return str(path)


def cell(folder: Path, name: str, delay_s: float, settings: Settings) -> CellRun:
    model = resolve(DEFAULT_MODEL)
    config = CellConfig(
        info=standalone_cell(model, name, torch="bench", id=name),
        model=model,
        settings=settings,
        import_attribution=False,
        python=wrapper(folder, name, delay_s),
    )
    return CellRun(config, folder / f"{name}.json")


def metrics(run: CellRun, index: int, warmup: bool) -> dict[str, float] | None:
    """One sample's every metric; None for a failed sample."""
    sample = run.run_sample(index, warmup)
    return dict(sample.metrics) if sample.ok else None


def value(run: CellRun, index: int, warmup: bool) -> float | None:
    got = metrics(run, index, warmup)
    return got.get(METRIC) if got is not None else None


def measure(cells: dict[str, CellRun], order: str, rounds: int, warmups: int, rng: random.Random, read=value):
    """``rounds`` values of every cell in this order (what ``read`` takes of a sample: its
    total_s, or bench/stopping.py's every metric); None for a failed sample.

    sequential: each cell's warm-up and samples in turn, the cells in a drawn order;
    interleaved: a warm-up round, then rounds, every cell once per round, freshly shuffled.
    """
    out: dict[str, list[float | None]] = {name: [] for name in cells}
    names = list(cells)
    if order == "sequential":
        rng.shuffle(names)
        for name in names:
            for i in range(warmups + rounds):
                result = read(cells[name], i, i < warmups)
                if i >= warmups:
                    out[name].append(result)
        return out
    for i in range(warmups + rounds):
        rng.shuffle(names)
        for name in names:
            result = read(cells[name], i, i < warmups)
            if i >= warmups:
                out[name].append(result)
    return out


REFERENCE_JUDGES = (
    ("reference run: tonight's R and C interleaved, paired by round", "reference"),
    ("stored numbers: last night's R against tonight's C (Mann-Whitney)", "numbers"),
)


def judge(a: list[float | None], x: list[float | None], how: str, threshold: float) -> str:
    if how == "pairs":
        pairs = [(p, q) for p, q in zip(a, x) if p is not None and q is not None]
        return decide_paired([p for p, _ in pairs], [q for _, q in pairs], threshold=threshold).verdict
    return decide(
        [v for v in a if v is not None], [v for v in x if v is not None], threshold=threshold
    ).verdict


def verdicts_of(values: dict[str, dict], threshold: float) -> dict[str, str]:
    """Every judge's verdict on one trial, A against A' or a B level (``values``: per order,
    A's values as "a" and the other's as "x"). The reference case reads the same
    measurements as a night: the sequential phase came first, so A's block there is "last
    night's" stored numbers of R; the interleaved phase is tonight's reference run, R (A)
    and C (the other) in the same rounds."""
    out = {name: judge(values[order]["a"], values[order]["x"], how, threshold) for name, order, how in JUDGES}
    out[REFERENCE_JUDGES[0][0]] = out[JUDGES[3][0]]
    out[REFERENCE_JUDGES[1][0]] = judge(
        values["sequential"]["a"], values["interleaved"]["x"], "blocks", threshold
    )
    return out


def spread_line(results: list[dict]) -> str:
    """What the A/A trials say of the noise: the spread of one round's log ratio when both
    samples were taken moments apart, and the smallest slowdown that many rounds could call."""
    import numpy as np

    from harness.analysis.paired import log_ratios, min_detectable_paired

    aa = [r["values"]["interleaved"] for r in results if r["level"] == 0.0]
    pairs = [[(p, q) for p, q in zip(v["a"], v["x"]) if p is not None and q is not None] for v in aa]
    logs = [log_ratios([p for p, _ in t], [q for _, q in t]) for t in pairs if len(t) >= 2]
    if not logs:
        return "No A/A trial with two good rounds: no spread to report."
    sd = float(np.median([np.std(x, ddof=1) for x in logs]))
    detectable = [min_detectable_paired([p for p, _ in t], [q for _, q in t]) for t in pairs if len(t) >= 2]
    detectable = [d for d in detectable if d is not None]
    return (
        f"A/A, interleaved: one round's log ratio has a median spread (sd) of {sd:.3f}; the paired "
        f"verdict could call a slowdown of {float(np.median(detectable)):.1%} or more (median over "
        f"{len(detectable)} trials; the threshold is a floor)."
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20, help="trials per level and order (default: 20)")
    parser.add_argument("--rounds", type=int, default=10, help="counted samples per side (default: 10)")
    parser.add_argument("--warmups", type=int, default=1, help="warm-up samples (rounds) (default: 1)")
    parser.add_argument("--levels", default="0.05,0.10", help="slowdowns, fractions of A's total")
    parser.add_argument("--threshold", type=float, default=0.05, help="verdict threshold (default: 0.05)")
    parser.add_argument("--calibration", type=int, default=5, help="samples of A to size the delay")
    parser.add_argument("--no-load", action="store_true", help="no background load")
    parser.add_argument("--hog-procs", type=int, default=1, help="busy processes when the load is on")
    parser.add_argument("--hog-min", type=float, default=20.0, help="shortest on/off spell, s")
    parser.add_argument("--hog-max", type=float, default=40.0, help="longest on/off spell, s")
    parser.add_argument("--seed", type=int, default=20261125, help="seed of every random choice")
    parser.add_argument("--json", type=Path, help="also write every trial as JSON here")
    parser.add_argument(
        "--case",
        choices=["both", "orders", "reference"],
        default="both",
        help="which table to print (one measurement serves both): orders, sequential against "
        "interleaved; reference, a reference run against the stored-number comparison (default: both)",
    )
    parser.add_argument(
        "--rejudge",
        type=Path,
        metavar="FILE",
        help="measure nothing: judge the trials an earlier --json saved again (at another --threshold)",
    )
    args = parser.parse_args()
    if args.rejudge:
        saved = json.loads(args.rejudge.read_text())
        levels = [level for level in sorted({r["level"] for r in saved["trials"]}) if level != 0.0]
        for key in ("rounds", "repeats", "no_load", "hog_procs", "hog_min", "hog_max"):
            setattr(args, key, saved["settings"][key])
        report(saved["trials"], levels, args)
        return 0
    # A `kill` stops the benchmark as Ctrl-C does: the load's hogs are stopped on the way out,
    # and the repeats that finished are judged and saved.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.repeats < 1 or args.rounds < 2 or args.warmups < 0 or args.calibration < 1:
        parser.error("need --repeats >= 1, --rounds >= 2, --warmups >= 0, --calibration >= 1")
    levels = [float(x) for x in args.levels.split(",") if x]
    rng = random.Random(args.seed)
    settings = Settings.checked(runs=args.rounds, warmups=args.warmups)
    started = time.monotonic()

    def log(text: str) -> None:
        print(f"[{time.monotonic() - started:7.0f}s] {text}", file=sys.stderr, flush=True)

    results: list[dict] = []
    saved: dict = {"settings": vars(args) | {"json": str(args.json), "rejudge": None}, "trials": results}

    def save() -> None:
        # After every repeat: a run stopped at any point keeps what it measured.
        if args.json:
            args.json.write_text(json.dumps(saved, indent=2))

    with tempfile.TemporaryDirectory(prefix="interleaving-") as tmp:
        folder = Path(tmp)
        a = cell(folder, "A", 0.0, settings)
        a_prime = cell(folder, "A-prime", 0.0, settings)
        calibration = [value(a, i, i == 0) for i in range(1 + args.calibration)][1:]
        total = statistics.median(v for v in calibration if v is not None)
        sample_s = (time.monotonic() - started) / (1 + args.calibration)
        saved["a_total_s"] = total
        others = {0.0: a_prime}
        for level in levels:
            others[level] = cell(folder, f"B-{level:g}", level * total, settings)
        cells = {"A": a, "A-prime": a_prime, **{f"B-{level:g}": others[level] for level in levels}}
        samples = args.repeats * len(ORDERS) * len(cells) * (args.warmups + args.rounds)
        log(
            f"A's median total {total:.3f} s; delays "
            + ", ".join(f"+{level:.0%} = {level * total:.3f} s" for level in levels)
            + f"; {samples} samples, about {samples * sample_s / 3600:.1f} h at {sample_s:.1f} s each"
        )
        load = (
            BackgroundLoad(args.hog_procs, args.hog_min, args.hog_max, random.Random(args.seed + 1))
            if not args.no_load
            else contextlib.nullcontext()
        )
        try:
            with load:
                for repeat in range(args.repeats):
                    # Sequential first: its A block stands for last night's stored numbers.
                    phases = {
                        order: measure(cells, order, args.rounds, args.warmups, rng) for order in ORDERS
                    }
                    for level in others:
                        other = "A-prime" if level == 0.0 else f"B-{level:g}"
                        values = {
                            order: {"a": phases[order]["A"], "x": phases[order][other]} for order in ORDERS
                        }
                        results.append({"repeat": repeat, "level": level, "values": values})
                    saved["load_switches"] = getattr(load, "switches", [])
                    save()
                    log(f"repeat {repeat + 1}/{args.repeats} done")
        except (KeyboardInterrupt, SystemExit):
            log(f"stopped: judging the {len({r['repeat'] for r in results})} repeat(s) that finished")
    saved["rates"] = report(results, levels, args)
    save()
    return 0


def report(results: list[dict], levels: list[float], args) -> dict:
    """Judge every trial at args.threshold, print the tables and the A/A spread, and return
    the rates."""
    for trial in results:
        trial["verdicts"] = verdicts_of(trial["values"], args.threshold)
    args.repeats = len({r["repeat"] for r in results})
    tables = {
        case: rates(results, [0.0, *levels], names)
        for case, names in (
            ("orders", [name for name, _order, _how in JUDGES]),
            ("reference", [name for name, _ in REFERENCE_JUDGES]),
        )
        if args.case in (case, "both")
    }
    print("\n\n".join(render(table, levels, args, case) for case, table in tables.items()))
    print("\n" + spread_line(results))
    return tables


def rates(results: list[dict], levels: list[float], names: list[str]) -> dict[str, dict[str, list[int]]]:
    """Per judge and level: [calls, trials]; a call is slower-or-faster for A/A, slower for A/B."""
    out: dict[str, dict[str, list[int]]] = {}
    for name in names:
        row = out.setdefault(name, {})
        for level in levels:
            verdicts = [r["verdicts"][name] for r in results if r["level"] == level and name in r["verdicts"]]
            called = {"slower", "faster"} if level == 0 else {"slower"}
            row[f"{level:g}"] = [sum(v in called for v in verdicts), len(verdicts)]
    return out


def render(table: dict, levels: list[float], args, case: str) -> str:
    from tabulate import tabulate

    def cell_text(count: list[int]) -> str:
        called, trials = count
        return f"{called}/{trials} ({called / trials:.0%})" if trials else "–"

    first = "order, judged by" if case == "orders" else "comparison (R: last accepted stack, C: tonight's)"
    headers = [first, "A/A false alarms"] + [f"+{level:.0%} detected" for level in levels]
    rows = [
        [name] + [cell_text(row[f"{level:g}"]) for level in [0.0, *levels]] for name, row in table.items()
    ]
    load = (
        "no background load"
        if args.no_load
        else (
            f"background load: {args.hog_procs} CPU hog(s) switching on/off every "
            f"{args.hog_min:g}-{args.hog_max:g} s"
        )
    )
    return (
        f"total_s, {args.rounds} rounds per trial, {args.repeats} trials per level and judge, "
        f"threshold ±{args.threshold * 100:g}%, alpha 0.05; {load}\n"
        + tabulate(rows, headers=headers, tablefmt="github")
        + f"\nTargets ({'interleaved, paired' if case == 'orders' else 'reference run'}): "
        "A/A false alarms <= 5%, +5% detected >= 90%, +10% detected >= 99%."
    )


if __name__ == "__main__":
    sys.exit(main())
