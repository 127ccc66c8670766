"""Hostile and careless input to merge, compare, baseline, history and ci (issue 12).

Each case runs the real command line on real files and asserts the exit status, the one
line on stderr, that no file appears outside the folder the command was given, and that no
device, FIFO or pre-existing file is replaced. The reports are derived from
tests/data/warm-8runs.json, a real 8-run profile.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import msgspec
import numpy as np
import pytest
from conftest import WARM_8RUNS, harness

from harness.analysis import history
from harness.analysis.compare import min_p_value, min_runs_for
from harness.result import MatrixReport, Sample, read_report

DATA = WARM_8RUNS
FINGERPRINT = read_report(DATA).fingerprint


def one_line_error(proc, status: int, *needles: str) -> str:
    """The command failed with ``status`` and said why in one line, naming ``needles``."""
    assert proc.returncode == status, (proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("harness "), proc.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def files_under(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if not p.is_dir()}


def report_text(**changes) -> str:
    """The real report's JSON with top-level keys replaced."""
    data = json.loads(DATA.read_text())
    data.update(changes)
    return json.dumps(data)


def with_machine(**machine) -> str:
    data = json.loads(DATA.read_text())
    data["machine"] = {**data["machine"], **machine}
    return json.dumps(data)


def with_cell(**cell) -> str:
    data = json.loads(DATA.read_text())
    data["cell"] = {**data["cell"], **cell}
    return json.dumps(data)


def first_total_set_to(literal: str) -> str:
    """The real report with the first counted sample's total_s replaced by a JSON literal."""
    data = json.loads(DATA.read_text())
    index = next(i for i, s in enumerate(data["samples"]) if s["ok"] and not s["warmup"])
    data["samples"][index]["metrics"]["total_s"] = "@@"
    return json.dumps(data).replace('"@@"', literal)


# --- unreadable files: each kind, through every reader ------------------------------------


def make_unreadable(kind: str, path: Path) -> None:
    if kind == "not-utf8":
        path.write_bytes(b'{"schema_version": 1, "kind": "cell", "status": "\xff\xfe"}')
    elif kind == "deep":
        path.write_text("[" * 100_000 + "]" * 100_000)
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "dev-zero":
        path.symlink_to("/dev/zero")
    elif kind == "nan":
        path.write_text(first_total_set_to("NaN"))
    elif kind == "infinity":
        path.write_text(first_total_set_to("1e999"))
    elif kind == "negative-time":
        path.write_text(first_total_set_to("-1.5"))


UNREADABLE = ["not-utf8", "deep", "fifo", "dev-zero", "nan", "infinity", "negative-time"]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("kind", UNREADABLE)
def test_compare_and_baseline_refuse_an_unreadable_report_in_one_line(tmp_path, kind):
    bad = tmp_path / "bad.json"
    make_unreadable(kind, bad)
    before = files_under(tmp_path)
    one_line_error(harness("compare", str(DATA), str(bad)), 2, "bad.json")
    one_line_error(harness("compare", str(bad), str(DATA)), 2, "bad.json")
    one_line_error(harness("baseline", "save", str(bad), "--root", str(tmp_path / "b")), 2, "bad.json")
    assert files_under(tmp_path) == before
    if kind == "fifo":
        assert stat.S_ISFIFO(os.lstat(bad).st_mode)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("kind", UNREADABLE)
def test_merge_refuses_an_unreadable_cell_file_and_skips_it_on_request(tmp_path, kind):
    run = tmp_path / "run"
    run.mkdir()
    (run / "good.json").write_bytes(DATA.read_bytes())
    make_unreadable(kind, run / "zz-bad.json")
    out = tmp_path / "merged.json"
    proc = harness("merge", str(run), "--output", str(out), "--no-history")
    one_line_error(proc, 2, "zz-bad.json", "--skip-bad")
    assert not out.exists()
    # --skip-bad merges the rest, naming what it left out; a FIFO is never waited on.
    skipped = harness("merge", str(run), "--output", str(out), "--no-history", "--skip-bad")
    assert skipped.returncode == 0, skipped.stderr
    assert "warning: skipped" in skipped.stderr and "zz-bad.json" in skipped.stderr
    assert list(MatrixReport.read(out).cells) == [read_report(DATA).id]
    assert files_under(tmp_path) - files_under(run) == {out}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("kind", ["not-utf8", "fifo", "dev-zero", "infinity"])
def test_ci_gather_refuses_an_unreadable_report_in_one_line(tmp_path, kind):
    runner = tmp_path / "runner"
    runner.mkdir()
    (runner / "good.json").write_bytes(DATA.read_bytes())
    make_unreadable(kind, runner / "bad.json")
    one_line_error(harness("ci", "gather", str(runner), "--into", str(tmp_path / "run")), 2, "bad.json")
    assert not (tmp_path / "run").exists()


# --- names from data never leave their folder ------------------------------------------


@pytest.mark.parametrize("name", ["../../x", "x\x00y"])
def test_baseline_save_refuses_a_fingerprint_that_is_not_a_file_name(tmp_path, name):
    report = tmp_path / "report.json"
    report.write_text(with_machine(fingerprint=name))
    root = tmp_path / "a" / "baselines"
    escaped = tmp_path / "x.json"  # where ../../x would land
    escaped.write_text("keep")
    before = files_under(tmp_path)
    one_line_error(harness("baseline", "save", str(report), "--root", str(root)), 2, "fingerprint")
    assert files_under(tmp_path) == before and escaped.read_text() == "keep"


@pytest.mark.parametrize("name", ["../../x", "x\x00y"])
def test_ci_baseline_refuses_a_fingerprint_that_is_not_a_file_name(tmp_path, name):
    cell = json.loads(with_machine(fingerprint=name))
    report = tmp_path / "matrix.json"
    report.write_text(
        json.dumps(
            {
                "schema_version": 1,
                "kind": "matrix",
                "run_id": "r",
                "created": "2026",
                "harness": {"version": "0"},
                "cells": {cell["cell"]["id"]: cell},
            }
        )
    )
    root = tmp_path / "a" / "baselines"
    escaped = tmp_path / "x.json"
    escaped.write_text("keep")
    before = files_under(tmp_path)
    one_line_error(harness("ci", "baseline", str(report), "--baselines-dir", str(root)), 2, "fingerprint")
    assert files_under(tmp_path) == before and escaped.read_text() == "keep"


@pytest.mark.parametrize("name", ["../../escaped", "x\x00y"])
def test_ci_gather_refuses_a_cell_id_that_is_not_a_file_name(tmp_path, name):
    runner = tmp_path / "runner"
    runner.mkdir()
    (runner / "cell.json").write_text(with_cell(id=name))
    into = tmp_path / "runs" / "r1"
    escaped = tmp_path / "escaped.json"  # where ../../escaped would land
    escaped.write_text("keep")
    before = files_under(tmp_path)
    one_line_error(harness("ci", "gather", str(runner), "--into", str(into)), 2, "cell.json", "cell id")
    assert files_under(tmp_path) == before and escaped.read_text() == "keep"


# --- merge never loses a cell silently ----------------------------------------------------


def test_merge_refuses_two_files_of_one_cell_naming_both(tmp_path):
    real = read_report(DATA)
    run = tmp_path / "run"
    run.mkdir()
    (run / "a-nine.json").write_bytes(DATA.read_bytes())
    fewer = msgspec.structs.replace(real, samples=real.samples[:4])
    fewer.write(run / "b-three.json")
    out = tmp_path / "merged.json"
    for extra in ([], ["--skip-bad"]):
        proc = harness("merge", str(run), "--output", str(out), "--no-history", *extra)
        one_line_error(proc, 2, "a-nine.json", "b-three.json", real.id)
    assert not out.exists()


# --- unwritable targets: one line, exit 3; devices and FIFOs never replaced ------------------


def test_baseline_save_to_an_unwritable_root_is_exit_3(tmp_path):
    one_line_error(harness("baseline", "save", str(DATA), "--root", "/proc/x"), 3, "/proc/x")


def test_merge_with_an_unwritable_history_is_exit_3_and_keeps_the_merged_report(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "cell.json").write_bytes(DATA.read_bytes())
    out = tmp_path / "merged.json"
    proc = harness("merge", str(run), "--output", str(out), "--history", "/proc/x")
    one_line_error(proc, 3, "/proc/x", str(out))
    assert list(MatrixReport.read(out).cells) == [read_report(DATA).id]


def test_merge_never_replaces_a_fifo(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "cell.json").write_bytes(DATA.read_bytes())
    fifo = tmp_path / "out.json"
    os.mkfifo(fifo)
    one_line_error(harness("merge", str(run), "--output", str(fifo), "--no-history"), 2, str(fifo))
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    history_root = tmp_path / "history"
    history_root.mkdir()
    os.mkfifo(history_root / history.INDEX)
    proc = harness("merge", str(run), "--output", str(tmp_path / "m.json"), "--history", str(history_root))
    one_line_error(proc, 2, history.INDEX)
    assert stat.S_ISFIFO(os.lstat(history_root / history.INDEX).st_mode)


@pytest.mark.timeout(120)
def test_ci_compare_step_summary_unwritable_is_exit_3_and_a_fifo_is_refused(tmp_path):
    merged = MatrixReport(
        run_id="r",
        created="2026-01-01T00:00:00+00:00",
        harness=read_report(DATA).harness,
        cells={read_report(DATA).id: read_report(DATA)},
    ).write(tmp_path / "matrix.json")
    args = ("ci", "compare", str(merged), "--baselines-dir", str(tmp_path / "none"), "--step-summary")
    one_line_error(harness(*args, env={"GITHUB_STEP_SUMMARY": "/proc/x/summary.md"}), 3, "/proc/x")
    fifo = tmp_path / "summary.md"
    os.mkfifo(fifo)
    one_line_error(harness(*args, env={"GITHUB_STEP_SUMMARY": str(fifo)}), 2, str(fifo))
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


# --- sizes that used to overflow or take minutes -------------------------------------------


def test_the_minimum_p_works_for_any_size():
    assert min_p_value(5, 5) == pytest.approx(2 / 252)
    assert min_p_value(4, 4) == pytest.approx(2 / 70)
    assert min_p_value(600, 600) == 0.0  # 2 / C(1200, 600) is below the smallest float
    assert min_p_value(10_000, 10_000) == 0.0
    assert min_runs_for(0.05) == 4


def synthetic(path: Path, n: int, seed: int, factor: float = 1.0) -> Path:
    """A cell report of ``n`` counted samples of the headline times, lognormal around the
    real report's medians."""
    real = read_report(DATA)
    rng = np.random.default_rng(seed)
    metrics = {
        m: real.median(m)
        for m in (
            "total_s",
            "import_s",
            "init_s",
            "first_encode_s",
            "process_wall_s",
            "startup_s",
            "memory_mb",
        )
    }
    noise = rng.lognormal(0, 0.05, (n, len(metrics)))
    samples = [
        Sample(
            index=i,
            warmup=False,
            ok=True,
            metrics={m: float(v * noise[i, k] * factor) for k, (m, v) in enumerate(metrics.items())},
        )
        for i in range(n)
    ]
    return msgspec.structs.replace(real, samples=samples, stats={}).write(path)


@pytest.mark.timeout(120)
def test_compare_takes_ten_thousand_samples_a_side(tmp_path):
    base = synthetic(tmp_path / "base.json", 10_000, seed=1)
    same = synthetic(tmp_path / "same.json", 10_000, seed=2)
    proc = harness("compare", str(base), str(same), "--format", "json")
    assert proc.returncode == 0, proc.stderr
    verdicts = {v["metric"]: v for v in json.loads(proc.stdout)["verdicts"]}
    assert verdicts["total_s"]["verdict"] == "no change"
    # With this many samples a change far below the threshold is detectable; the threshold decides.
    assert 0.05 < verdicts["total_s"]["min_detectable"] < 0.051
    slower = synthetic(tmp_path / "slower.json", 10_000, seed=3, factor=1.10)
    proc = harness("compare", str(base), str(slower), "--format", "json")
    assert proc.returncode == 1, proc.stderr
    assert {v["metric"]: v for v in json.loads(proc.stdout)["verdicts"]}["total_s"]["verdict"] == "slower"


def write_history(root: Path, runs: int, step_at: int, cells: int = 4) -> None:
    rng = np.random.default_rng(4)
    lines = []
    for i in range(runs):
        level = 1.25 if i >= step_at else 1.0
        entry = history.RunEntry(
            run_id=f"r{i:04d}",
            created=f"2026-01-01T{i // 60 // 60:02d}:{i // 60 % 60:02d}:{i % 60:02d}Z",
            cells={
                f"cell{c}": history.CellSummary(
                    status="complete", n=5, medians={"total_s": 4.0 * level * rng.lognormal(0, 0.02)}
                )
                for c in range(cells)
            },
        )
        lines.append(msgspec.json.encode(entry))
    root.mkdir(parents=True)
    (root / history.INDEX).write_bytes(b"\n".join(lines) + b"\n")


@pytest.mark.timeout(60)
def test_history_of_a_thousand_runs_finds_the_step(tmp_path):
    # The exact L1 fit took O(n^3): about 2.65 s at 400 runs, a minute at 1,000.
    write_history(tmp_path / "history", 1000, step_at=600)
    proc = harness("history", "--root", str(tmp_path / "history"), "--format", "json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert len(data["runs"]) == 1000
    assert {cell: trend["steps"] for cell, trend in data["cells"].items()} == {
        f"cell{c}": [600] for c in range(4)
    }


def test_the_windowed_step_fit_flags_what_the_exact_fit_flags():
    rng = np.random.default_rng(11)
    for _ in range(40):
        n = int(rng.integers(history.WINDOW + 1, 4 * history.WINDOW))
        values = 4 * rng.lognormal(0, rng.choice([0.01, 0.03, 0.06]), n)
        for _ in range(rng.integers(0, 3)):
            values[rng.integers(2, n - 2) :] *= rng.choice([0.8, 1.1, 1.3])
        values = [float(v) for v in values]
        assert history.steps(values) == history.steps(values, window=n), values
