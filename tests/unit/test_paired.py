"""Paired comparisons within a run (harness.analysis.paired) and where they show: compare
--within, the merge tables' "vs" column, the CI summary and the HTML page.

The statistics are checked on synthetic samples with a known drift (numpy's generator,
seed SEED; every figure below holds for any seed, as each test's comment works out); the
commands run on merged reports built from tests/data/warm-8runs.json, a real 8-run warm
profile of the embedded model, its samples given rounds. A real interleaved run with a
slowdown injected is tests/e2e/test_paired_run.py.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import msgspec
import numpy as np
import pytest
from conftest import SLOWDOWN, WARM_8RUNS, harness

from harness.analysis.compare import compare_cells
from harness.analysis.paired import PAIRED, UNPAIRED, compare_within, reference_value
from harness.analysis.stats import report_stats
from harness.result import CellReport, MatrixReport, Sample

REAL = WARM_8RUNS
SEED = 20261125
ROUNDS = 10
NOISE = 0.01  # lognormal sigma of one sample within a round: a quiet machine
DRIFT = 0.30  # the machine slows by 30% over the session: a neighbour's build ramping up


def cell(template: CellReport, torch: str, values, rounds) -> CellReport:
    """A copy of a real report as the cell of ``torch``, with these total_s values; a round
    of None marks a sequentially measured sample."""
    samples = [
        Sample(
            index=i,
            warmup=False,
            ok=True,
            round=r,
            metrics={"total_s": float(v), "process_wall_s": float(v) + 0.8, "startup_s": 0.02},
        )
        for i, (v, r) in enumerate(zip(values, rounds))
    ]
    info = msgspec.structs.replace(template.cell, torch=torch, id=f"m-torch{torch}-warm-cpu")
    report = msgspec.structs.replace(template, cell=info, samples=samples, import_attribution=None)
    return msgspec.structs.replace(report, stats=report_stats(report))


def run_of(*cells: CellReport, matrix: dict | None = None, run_id: str = "paired-test") -> MatrixReport:
    template = cells[0]
    return MatrixReport(
        run_id=run_id, created=template.started, harness=template.harness, matrix=matrix,
        cells={c.id: c for c in cells},
    )  # fmt: skip


def session(slots: int) -> np.ndarray:
    """The machine's slowness at each time slot of a session: a steady ramp of DRIFT."""
    return 4.0 * np.linspace(1.0, 1.0 + DRIFT, slots)


def noisy(rng, level) -> np.ndarray:
    return level * np.exp(rng.normal(0.0, NOISE, np.shape(level)))


@pytest.fixture(scope="module")
def template() -> CellReport:
    return CellReport.read(REAL)


# --------------------------------------------------------------------------- statistics


def test_a_drift_that_fools_the_unpaired_test_cancels_in_rounds(template):
    """Two identical environments under a machine that slows by 30% over the session.

    Measured one after the other (A's block, then A''s), the unpaired comparison sees the
    drift between the blocks as a change and calls it slower: its medians differ by about
    +14% (the ramp's second half against its first) with no overlap, p ~ 1e-4, and noise of
    1% cannot close a 14% gap (failure needs a 9-sigma noise draw: < 1e-9 for any seed).
    Measured in rounds, the same drift is in both samples of every round and cancels: the
    log ratios are N(0, 1.4%^2), so the interval (half width ~1%) lies inside ±5% unless the
    mean strays by 8 standard errors or the spread triples (chi-square 9 df past 104):
    < 1e-9 for any seed.
    """
    rng = np.random.default_rng(SEED)
    # Interleaved: both sides sampled in each of ROUNDS rounds (slots 2r and 2r + 1).
    level = session(2 * ROUNDS)
    ref = cell(template, "2.13.0", noisy(rng, level[0::2]), range(ROUNDS))
    cur = cell(template, "2.14.1", noisy(rng, level[1::2]), range(ROUNDS))
    paired = compare_within(run_of(ref, cur), "torch")
    total = next(v for v in paired.verdicts if v.metric == "total_s")
    assert (total.verdict, total.pairing, total.n_current) == ("no change", PAIRED, ROUNDS), total.reason
    assert paired.exit_code() == 0

    # Sequential: A's block in the first half of the session, A''s in the second.
    ref_seq = cell(template, "2.13.0", noisy(rng, level[:ROUNDS]), [None] * ROUNDS)
    cur_seq = cell(template, "2.14.1", noisy(rng, level[ROUNDS:]), [None] * ROUNDS)
    unpaired = compare_cells({"x": ref_seq}, {"x": cur_seq}, fail_on=())
    assert next(v for v in unpaired.verdicts if v.metric == "total_s").verdict == "slower"
    # Within a sequential run the pairs are by order and say what they are.
    within = compare_within(run_of(ref_seq, cur_seq), "torch")
    assert {v.pairing for v in within.verdicts} == {UNPAIRED}
    assert all("unpaired" in v.reason for v in within.verdicts)


def test_a_real_slowdown_under_drift_is_called_slower(template):
    """+10% on one side, interleaved under the same 30% drift: the mean log ratio is
    log 1.1 = 0.095 with a standard error of 0.0045, so ratio > 1.05, the interval above 1
    and p < 0.05 all hold unless the mean falls 10 standard errors short: < 1e-9."""
    rng = np.random.default_rng(SEED + 1)
    level = session(2 * ROUNDS)
    ref = cell(template, "2.13.0", noisy(rng, level[0::2]), range(ROUNDS))
    cur = cell(template, "2.14.1", noisy(rng, level[1::2] * 1.10), range(ROUNDS))
    comparison = compare_within(run_of(ref, cur), "torch")
    total = next(v for v in comparison.verdicts if v.metric == "total_s")
    assert total.verdict == "slower", total.reason
    assert total.ratio > 1.05 and total.ci_low > 1
    assert comparison.exit_code() == 1
    assert total.min_detectable is not None and total.min_detectable < 0.10


def test_a_failed_sample_drops_its_round_and_keeps_the_pairing(template):
    """Deterministic: values chosen so that each round's ratio is exactly 1.2."""
    base = np.linspace(3.0, 5.0, ROUNDS)
    ref = cell(template, "2.13.0", base, range(ROUNDS))
    ref.samples[3] = msgspec.structs.replace(ref.samples[3], ok=False, metrics={})
    cur = cell(template, "2.14.1", base * 1.2, range(ROUNDS))
    total = next(v for v in compare_within(run_of(ref, cur), "torch").verdicts if v.metric == "total_s")
    assert total.n_current == ROUNDS - 1
    assert math.isclose(total.ratio, 1.2) and total.verdict == "slower"


def test_the_reference_is_the_matrix_key_else_the_first_listed_else_the_lowest(template):
    cells = [cell(template, t, [4.0, 4.1], range(2)) for t in ("2.14.1", "2.13.0")]
    assert reference_value(run_of(*cells), "torch") == "2.13.0"
    listed = {"torch": [{"version": "2.14.1"}, {"version": "2.13.0"}]}
    assert reference_value(run_of(*cells, matrix=listed), "torch") == "2.14.1"
    named = {**listed, "reference": "2.13.0"}
    assert reference_value(run_of(*cells, matrix=named), "torch") == "2.13.0"
    comparison = compare_within(run_of(*cells, matrix=listed), "torch")
    assert {v.reference_id for v in comparison.verdicts} == {"m-torch2.14.1-warm-cpu"}


# --------------------------------------------------------------------------- commands


def real_run(tmp_path: Path, name: str, slowdown: float = 1.0, rounds: bool = True) -> Path:
    """A merged report of two torch versions built from the real profile's 8 samples: the
    reference cell gets them in rounds 0..7, the other cell the same samples one round on
    (a real sample of the same environment in each round), times ``slowdown``."""
    real = CellReport.read(REAL)
    counted = [s for s in real.samples if not s.warmup]

    def as_cell(torch: str, samples: list[Sample], factor: float) -> CellReport:
        samples = [
            msgspec.structs.replace(
                s,
                index=i,
                round=i if rounds else None,
                metrics={k: v * factor if k != "startup_s" else v for k, v in s.metrics.items()},
            )
            for i, s in enumerate(samples)
        ]
        info = msgspec.structs.replace(real.cell, torch=torch, id=real.cell.id.replace("2.13.0", torch))
        report = msgspec.structs.replace(real, cell=info, samples=samples)
        return msgspec.structs.replace(report, stats=report_stats(report))

    ref = as_cell("2.13.0", counted, 1.0)
    cur = as_cell("2.14.1", counted[1:] + counted[:1], slowdown)
    path = tmp_path / f"{name}.json"
    run_of(ref, cur, run_id=name).write(path)
    return path


def test_compare_within_torch_on_a_real_report(tmp_path):
    """Deterministic data (a real profile, rotated): the A/A pairs' log ratios sum to zero,
    so the change is +0.0%; the +20% copy's interval clears both 1 and the threshold."""
    same = harness("compare", str(real_run(tmp_path, "aa")), "--within", "torch", "--format", "json")
    assert same.returncode == 0, same.stderr
    data = json.loads(same.stdout)
    assert (data["kind"], data["axis"], data["reference"]) == ("paired comparison", "torch", "2.13.0")
    verdicts = {v["metric"]: v for v in data["verdicts"]}
    assert verdicts["total_s"]["pairing"] == "paired" and verdicts["total_s"]["n_current"] == 8
    assert not {v["verdict"] for v in data["verdicts"]} & {"slower", "faster"}

    slower = harness("compare", str(real_run(tmp_path, "ab", 1.2)), "--within", "torch")
    assert slower.returncode == 1, slower.stderr
    assert "Paired comparison within run ab" in slower.stdout
    assert "REGRESSION" in slower.stdout and "paired by round" in slower.stdout


def test_a_sequential_run_is_compared_and_labelled_unpaired(tmp_path):
    proc = harness("compare", str(real_run(tmp_path, "seq", rounds=False)), "--within", "torch")
    assert proc.returncode == 0, proc.stderr
    assert "UNPAIRED" in proc.stdout and "8 unpaired" in proc.stdout


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--within", "colour"], "no such axis"),  # backend and dtype are axes since issue 13
        (["--within", "model"], "differ in model alone"),
        (["--within", "torch", "--baseline", "auto"], "give one report"),
    ],
)
def test_bad_within_is_one_line_exit_2(tmp_path, args, words):
    proc = harness("compare", str(real_run(tmp_path, "bad")), *args)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert words in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert "Traceback" not in proc.stderr


def test_tables_summary_and_page_show_the_paired_change(tmp_path):
    path = real_run(tmp_path, "shown", 1.2)
    run_dir = tmp_path / "runs" / "shown"
    run_dir.mkdir(parents=True)
    for cid, c in MatrixReport.read(path).cells.items():
        c.write(run_dir / f"{cid}.json")
    merged = tmp_path / "merged.json"
    proc = harness("merge", str(run_dir), "--no-history", "--output", str(merged))
    assert proc.returncode == 0, proc.stderr
    assert "vs 2.13.0" in proc.stdout and "+20.0% slower" in proc.stdout

    summary = harness("summary", str(merged), env={"GITHUB_STEP_SUMMARY": ""})
    assert "Within the run, against torch 2.13.0" in summary.stdout
    assert "slower than torch 2.13.0 in this run" in summary.stdout.splitlines()[0]

    page = tmp_path / "page.html"
    proc = harness("report", str(merged), "--html", str(page), "--history", str(tmp_path / "none"))
    assert proc.returncode == 0, proc.stderr
    html = page.read_text()
    assert 'id="plot-paired"' in html and "Within the run: against torch 2.13.0" in html


def test_a_stored_baseline_comparison_says_it_spans_two_sessions(tmp_path):
    proc = harness("compare", str(REAL), str(REAL))
    assert proc.returncode == 0, proc.stderr
    assert "two sessions of the machine" in proc.stdout


# --------------------------------------------------------------------------- the slowdown hook


@pytest.mark.parametrize(
    "limits, slowed",
    [({}, True), ({"HARNESS_INJECT_DELAY_PREFIX": sys.prefix}, True)]
    + [({"HARNESS_INJECT_DELAY_PREFIX": "/no/such/env"}, False), ({"HARNESS_INJECT_DELAY_MODEL": "x"}, False)]
    + [({"HARNESS_INJECT_DELAY_MODEL": "named-here"}, True)],
)
def test_the_slowdown_hook_slows_only_the_environment_or_model_it_names(limits, slowed):
    env = {**os.environ, "PYTHONPATH": str(SLOWDOWN), "HARNESS_INJECT_DELAY_S": "5", **limits}
    code = "import sys; print(any(type(f).__name__ == '_SlowImport' for f in sys.meta_path))"
    proc = subprocess.run(
        [sys.executable, "-c", code, "named-here"], env=env, capture_output=True, text=True, check=True
    )
    assert proc.stdout.strip() == str(slowed)
