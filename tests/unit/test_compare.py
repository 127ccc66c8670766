"""The statistical comparison, baselines and history, on samples of a real report.

tests/data/warm-8runs.json is a real 8-run warm profile of the embedded model, recorded
with `python -m harness profile --runs 8 --warmups 1`. The tests derive other reports from
it (a subset of its samples, its samples scaled by a factor) and assert how the verdict
relates to the change they made, never a measured figure.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from conftest import WARM_8RUNS, harness
from msgspec.structs import replace

from harness.analysis import baseline, history
from harness.analysis.compare import (
    Comparison,
    CrossMachineError,
    compare_cells,
    compare_files,
    decide,
    min_detectable,
    min_p_value,
    min_runs_for,
)
from harness.report.comparison import render
from harness.result import CellReport, Failure, FailureKind, MatrixReport, ReportError, read_report

DATA = WARM_8RUNS
TIMES = ("total_s", "import_s", "import_torch_s", "import_st_s", "init_s", "first_encode_s", "process_wall_s")


@pytest.fixture(scope="module")
def real() -> CellReport:
    return read_report(DATA)


def derive(
    report: CellReport,
    factor: float = 1.0,
    keep: list[int] | None = None,
    metrics=TIMES,
    fingerprint: str | None = None,
) -> CellReport:
    """A copy of the report with some counted samples kept and time metrics scaled."""
    counted = report.counted if keep is None else [report.counted[i] for i in keep]
    kept = [
        replace(s, metrics={k: v * factor if k in metrics else v for k, v in s.metrics.items()})
        for s in counted
    ]
    machine = replace(report.machine, fingerprint=fingerprint) if fingerprint else report.machine
    return replace(report, samples=[s for s in report.samples if s.warmup] + kept, machine=machine)


def cells(report: CellReport) -> dict[str, CellReport]:
    return {report.id: report}


def total(comparison: Comparison):
    return next(v for v in comparison.verdicts if v.metric == "total_s")


def test_same_samples_are_never_slower_or_faster(real):
    comparison = compare_cells(cells(real), cells(real))
    assert {v.verdict for v in comparison.verdicts} <= {"no change", "inconclusive"}
    assert all(v.ratio == 1 for v in comparison.verdicts)
    assert comparison.exit_code() == 0 and comparison.regressions() == []


def test_a_slowdown_past_the_smallest_detectable_is_slower_and_fails_the_gate(real):
    base = real.values("total_s")
    detectable = min_detectable(base, base)
    assert detectable is not None and detectable >= 0.05
    slowed = derive(real, 1 + detectable * 1.01)
    comparison = compare_cells(cells(real), cells(slowed))
    assert total(comparison).verdict == "slower"
    assert total(comparison).ci_low > 1 and total(comparison).p_value < 0.05
    assert "total_s" in [v.metric for v in comparison.regressions()]
    assert comparison.exit_code() == 1
    # The same slowdown on a metric that is not gated is reported but does not fail.
    ungated = compare_cells(cells(real), cells(slowed), fail_on=("memory_mb",))
    assert total(ungated).verdict == "slower" and ungated.exit_code() == 0


def test_just_short_of_the_smallest_detectable_is_not_slower(real):
    base = real.values("total_s")
    detectable = min_detectable(base, base)
    nearly = decide(base, [x * (1 + detectable * 0.98) for x in base])
    assert nearly.verdict != "slower"


def test_a_speedup_is_faster_and_passes(real):
    comparison = compare_cells(cells(real), cells(derive(real, 0.6)))
    assert total(comparison).verdict == "faster"
    assert comparison.exit_code() == 0


def test_a_change_inside_the_threshold_is_never_called(real):
    comparison = compare_cells(cells(real), cells(derive(real, 1.02)))
    assert total(comparison).verdict in ("no change", "inconclusive")


def test_memory_is_compared_like_time(real):
    grown = derive(real, 1.5, metrics=("memory_mb",))
    comparison = compare_cells(cells(real), cells(grown))
    memory = next(v for v in comparison.verdicts if v.metric == "memory_mb")
    assert memory.verdict == "slower"  # "slower" = worse: more memory
    assert comparison.exit_code() == 0  # memory is not gated by default
    assert compare_cells(cells(real), cells(grown), fail_on=("memory_mb",)).exit_code() == 1


def test_too_few_samples_are_inconclusive_and_say_how_many_to_run(real):
    two = derive(real, 2.0, keep=[0, 1])
    verdict = total(compare_cells(cells(derive(real, keep=[2, 3])), cells(two)))
    assert verdict.verdict == "inconclusive"
    assert verdict.min_detectable is None
    assert f"at least {min_runs_for(0.05)} samples" in verdict.reason
    assert min_p_value(2, 2) > 0.05 and min_p_value(min_runs_for(0.05), min_runs_for(0.05)) < 0.05


def test_wide_spread_is_inconclusive_with_the_change_it_could_detect(real):
    # Half the samples of each side doubled: spread far wider than a 10% shift.
    base = real.values("total_s")
    wide = [x * (2 if i % 2 else 1) for i, x in enumerate(base)]
    decision = decide(wide, [x * 1.10 for x in wide])
    assert decision.verdict == "inconclusive"
    assert min_detectable(wide, [x * 1.10 for x in wide]) > 0.10


def test_missing_and_failed_cells_are_listed(real):
    failed = replace(real, status="failed", failure=Failure(kind=FailureKind.LOAD, reason="model not found"))
    base = {"a": real, "b": real, "f": real}
    cur = {"a": real, "c": real, "f": failed}
    comparison = compare_cells(base, cur)
    assert comparison.missing_in_current == ["b"]
    assert comparison.missing_in_baseline == ["c"]
    assert comparison.failed == {"f": "current: model not found"}
    assert {v.cell_id for v in comparison.verdicts} == {"a"}
    text = render(comparison, "text", colour=False)
    assert "Missing in current: b" in text and "Missing in baseline: c" in text and "model not found" in text


def test_cross_machine_is_refused_unless_allowed(real):
    other = derive(real, fingerprint="0123456789abcdef")
    with pytest.raises(CrossMachineError, match="--allow-cross-machine"):
        compare_cells(cells(real), cells(other))
    comparison = compare_cells(cells(real), cells(other), allow_cross_machine=True)
    assert comparison.cross_machine
    assert render(comparison, "text", colour=False).startswith("CROSS-MACHINE")
    assert "CROSS-MACHINE" in render(comparison, "md").splitlines()[0]


def test_renders(real):
    comparison = compare_cells(cells(real), cells(derive(real, 1.5)))
    data = json.loads(render(comparison, "json"))
    assert data["exit_code"] == 1 and data["verdicts"][0]["cell_id"] == real.id
    md = render(comparison, "md")
    assert "| cell" in md and "🔴 slower" in md
    text = render(comparison, "text", colour=False)
    assert "\033[" not in text and "REGRESSION" in text
    assert "\033[31m" in render(comparison, "text", colour=True)


def test_files_corrupt_or_of_an_unknown_version_are_one_line_errors(real, tmp_path):
    truncated = tmp_path / "cut.json"
    truncated.write_text(DATA.read_text()[:2000])
    with pytest.raises(ReportError, match="cut.json") as info:
        compare_files(DATA, truncated)
    assert "\n" not in str(info.value)
    newer = tmp_path / "v9.json"
    newer.write_text(DATA.read_text().replace('"schema_version": 1', '"schema_version": 9', 1))
    with pytest.raises(ReportError, match="schema_version") as info:
        compare_files(DATA, newer)
    assert "\n" not in str(info.value)


def test_a_version_1_report_compares_with_its_version_2_copy(real, tmp_path):
    # The version 1 file is read through its upgrade; written again, it is version 2.
    copy = real.write(tmp_path / "v2.json")
    assert json.loads(copy.read_text())["schema_version"] == 3
    comparison = compare_files(DATA, copy)
    assert comparison.verdicts and all(v.ratio == 1 for v in comparison.verdicts)


def test_baseline_store_and_auto(real, tmp_path):
    root = tmp_path / "baselines"
    stored = baseline.save(DATA, root)
    assert stored == root / f"{real.fingerprint}.json"
    assert baseline.find_for(real.fingerprint, root) == stored
    assert baseline.find_for("0000000000000000", root) is None
    assert baseline.resolve("auto", DATA, root) == stored


def test_cli_compare_exit_codes_and_formats(real, tmp_path):
    slowed = derive(real, 1.5).write(tmp_path / "slow.json")
    proc = harness("compare", str(DATA), str(slowed), "--format", "json")
    assert proc.returncode == 1, proc.stderr
    assert json.loads(proc.stdout)["regressions"]
    assert harness("compare", str(DATA), str(slowed), "--fail-on", "memory_mb").returncode == 0
    # auto: the stored baseline of the current report's machine
    roots = tmp_path / "b"
    assert harness("baseline", "save", str(DATA), "--root", str(roots)).returncode == 0
    proc = harness("compare", "auto", str(DATA), "--baselines-dir", str(roots), "--format", "md")
    assert proc.returncode == 0 and "| cell" in proc.stdout
    # unusable input: one line, exit 2
    for args in (
        ["compare", str(DATA), str(tmp_path / "nope.json")],
        ["compare", "auto", str(DATA), "--baselines-dir", str(tmp_path / "empty")],
        ["compare", str(DATA), str(DATA), "--fail-on", "speed"],
        ["compare", str(DATA), str(DATA), "--threshold", "5"],
    ):
        proc = harness(*args)
        assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, (args, proc.stderr)
    other = derive(real, fingerprint="0123456789abcdef").write(tmp_path / "other.json")
    proc = harness("compare", str(DATA), str(other))
    assert proc.returncode == 2 and "--allow-cross-machine" in proc.stderr
    proc = harness("compare", str(DATA), str(other), "--allow-cross-machine")
    assert proc.returncode == 0 and proc.stdout.startswith("CROSS-MACHINE")


def _matrix(report: CellReport, run_id: str, created: str) -> MatrixReport:
    return MatrixReport(run_id=run_id, created=created, harness=report.harness, cells=cells(report))


def _record_series(real: CellReport, root: Path, factors: list[float]) -> list[history.RunEntry]:
    n = len(real.values("total_s"))
    for i, factor in enumerate(factors):
        # Each run keeps a different 5 of the 8 real samples, so medians vary as runs do.
        keep = [(i + k) % n for k in range(5)]
        history.record(_matrix(derive(real, factor, keep), f"r{i:02d}", f"2026-01-01T00:{i:02d}:00Z"), root)
    return history.load(root)


def test_history_flags_a_step_but_not_an_outlier(real, tmp_path):
    root = tmp_path / "history"
    entries = _record_series(real, root, [1, 1, 1, 1, 1.25, 1.25, 1.25])
    trend = history.trends(entries)[real.id]
    assert [p[0] for p in trend["points"]] == [f"r{i:02d}" for i in range(7)]
    assert trend["steps"] == [4]
    # Recording a run again adds nothing.
    history.record(_matrix(real, "r03", "2026-01-01T00:03:00Z"), root)
    assert len(history.load(root)) == 7

    spiky = _record_series(real, tmp_path / "h2", [1, 1, 1, 1.5, 1, 1, 1])
    assert history.trends(spiky)[real.id]["steps"] == []

    proc = harness("history", "--root", str(root))
    assert proc.returncode == 0 and "r04" in proc.stdout
    data = json.loads(harness("history", "--root", str(root), "--format", "json").stdout)
    assert data["cells"][real.id]["steps"] == [4]


def test_history_skips_a_line_cut_short(real, tmp_path):
    root = tmp_path / "history"
    _record_series(real, root, [1, 1])
    with open(root / history.INDEX, "a") as fh:
        fh.write('{"run_id": "cut", "cel')
    assert [e.run_id for e in history.load(root)] == ["r00", "r01"]
    assert not math.isnan(history.trends(history.load(root))[real.id]["points"][0][2])


def test_a_busier_machine_withholds_the_verdict_it_explains(real):
    # Current: every time metric and the interpreter start-up (the control) twice as slow.
    busy = derive(real, 2.0, metrics=(*TIMES, "startup_s"))
    comparison = compare_cells(cells(real), cells(busy))
    assert total(comparison).verdict == "inconclusive" and "busier" in total(comparison).reason
    assert list(comparison.busy) == [real.id] and comparison.exit_code() == 0
    # A busy baseline withholds "faster" the same way, and never turns a verdict into one.
    reverse = compare_cells(cells(busy), cells(real))
    assert total(reverse).verdict == "inconclusive" and reverse.exit_code() == 0
