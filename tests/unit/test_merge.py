"""merge: a run folder of real cell reports -> reports/matrix-<run id>.json and the tables.

The run folder is built from a real profile of the embedded model (the stored one,
tests/data/warm-8runs.json, as the current format writes it), a failed record as the
noxfile writes it when torch will not install, a planned cell that never ran, and the
environment record nox writes.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import WARM_8RUNS, harness

from harness.report import tables
from harness.result import (
    HEADLINE_METRICS,
    METRICS,
    CellInfo,
    CellReport,
    EnvRecord,
    FailureKind,
    MatrixReport,
    PlannedCell,
    RunPlan,
    Settings,
    read_matrix,
    read_report,
)

INSTALL_FAILED = "torch==0.0.1 could not be installed: there is no version of torch==0.0.1"


@pytest.fixture(scope="module")
def stored_warm_path(tmp_path_factory) -> Path:
    return read_report(WARM_8RUNS).write(tmp_path_factory.mktemp("stored") / "warm.json")


@pytest.fixture(scope="module")
def run_dir(stored_warm_path, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("runs") / "20260101-000000"
    run.mkdir()
    good = read_report(stored_warm_path)
    shutil.copy(stored_warm_path, run / f"{good.id}.json")
    bad_cell = CellInfo(
        id="all-MiniLM-L6-v2-torch0.0.1-warm-cpu",
        model="all-MiniLM-L6-v2",
        source=good.cell.source,
        mode="warm",
        device="cpu",
        torch="0.0.1",
    )
    settings = Settings(runs=2, warmups=0, timeout_s=300.0)
    CellReport.failed(bad_cell, settings, FailureKind.INSTALL, INSTALL_FAILED, "uv output").write(
        run / f"{bad_cell.id}.json"
    )
    never = PlannedCell(
        id="all-MiniLM-L6-v2-torch2.13.0-cold-cpu",
        model="all-MiniLM-L6-v2",
        source=good.cell.source,
        mode="cold",
        device="cpu",
        torch="2.13.0",
        settings=settings,
    )
    planned = [
        PlannedCell(**{k: getattr(c, k) for k in CellInfo.__struct_fields__}) for c in (good.cell, bad_cell)
    ]
    RunPlan(run_id=run.name, matrix={"runs": 2}, planned=[planned[0], never, planned[1]]).write(
        run / "run.json"
    )
    ok = EnvRecord(
        torch="2.13.0",
        status="ok",
        build_s=12.5,
        python="3.11.7",
        packages={"torch": "2.13.0+cpu", "sentence-transformers": "6.0.1"},
    )
    ok.write(ok.path_in(run))
    failed = EnvRecord(torch="0.0.1", status="failed", build_s=0.4, error=INSTALL_FAILED)
    failed.write(failed.path_in(run))
    return run


@pytest.fixture(scope="module")
def merged(run_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("merged") / "matrix.json"
    history = out.parent / "history"
    proc = harness("merge", str(run_dir), "--output", str(out), "--history", str(history))
    return proc, out, history


def cell_text(report: CellReport, metric: str) -> str:
    """The table text of a complete cell, from its own statistics."""
    stats = report.stats[metric]
    places = tables.decimals(stats.median)
    lo, hi = stats.ci95
    return f"{stats.median:.{places}f} [{lo:.{places}f}–{hi:.{places}f}]"


def test_merge_writes_a_valid_matrix_report_with_every_cell(merged, run_dir, stored_warm_path):
    proc, out, history = merged
    assert proc.returncode == 1, proc.stderr  # one cell failed, one never ran
    report = read_matrix(out)  # checked against the MatrixReport type
    assert report.run_id == run_dir.name
    good = read_report(stored_warm_path)
    assert report.cells[good.id] == good  # whole, nothing lost
    failed = report.cells["all-MiniLM-L6-v2-torch0.0.1-warm-cpu"]
    assert failed.status == "failed" and failed.failure.kind is FailureKind.INSTALL
    assert "could not be installed" in failed.failure.reason
    assert [m.id for m in report.missing] == ["all-MiniLM-L6-v2-torch2.13.0-cold-cpu"]
    assert report.environments["2.13.0"].build_s == 12.5
    assert report.environments["0.0.1"].status == "failed"
    # The run went into the history given.
    entries = [json.loads(line) for line in (history / "index.jsonl").read_text().splitlines()]
    assert [e["run_id"] for e in entries] == [run_dir.name]


def test_text_tables_show_median_interval_and_why_cells_failed(merged, stored_warm_path):
    proc, out, _ = merged
    good = read_report(stored_warm_path)
    text = proc.stdout
    for metric in HEADLINE_METRICS:
        assert f"{METRICS[metric].label} ({metric}" in text
        assert cell_text(good, metric) in text
    assert "0.0.1 warm" in text and "2.13.0 warm" in text and "2.13.0 cold" in text
    assert "install failed" in text and "not run" in text
    assert "12.5 s" in text  # the environment's build time
    assert str(out) in text  # where the merged report is
    # A missed target is marked, a met one is not.
    data = tables.table_data(read_matrix(out))
    for table in data["tables"]:
        entry = next(e for e in table["rows"][0]["cells"] if e.get("median") is not None)
        result = good.target_results.get(table["metric"])
        assert entry["text"].endswith(tables.MISSED) == (result is not None and not result.met)


def test_markdown_and_json_formats(run_dir, tmp_path, stored_warm_path):
    good = read_report(stored_warm_path)
    md = harness(
        "merge", str(run_dir), "--format", "md", "--output", str(tmp_path / "m.json"), "--no-history"
    )
    assert md.returncode == 1, md.stderr
    assert "### Total load time (total_s" in md.stdout
    header = next(line for line in md.stdout.splitlines() if line.startswith("| model"))
    assert "2.13.0 warm" in header and "0.0.1 warm" in header
    assert any(line.startswith("|---") or line.startswith("|:--") for line in md.stdout.splitlines())
    assert cell_text(good, "total_s") in md.stdout

    js = harness(
        "merge", str(run_dir), "--format", "json", "--output", str(tmp_path / "m.json"), "--no-history"
    )
    data = json.loads(js.stdout)
    assert [t["metric"] for t in data["tables"]] == HEADLINE_METRICS
    total = data["tables"][0]
    row = total["rows"][0]
    by_header = dict(zip(total["headers"][1:], row["cells"]))
    assert by_header["2.13.0 warm"]["median"] == good.stats["total_s"].median
    assert by_header["0.0.1 warm"]["text"] == "install failed"
    assert by_header["2.13.0 cold"]["text"] == "not run"
    assert data["report"] == str(tmp_path / "m.json")


def test_baseline_adds_each_cells_change(run_dir, merged, tmp_path):
    _, out, _ = merged
    proc = harness(
        "merge",
        str(run_dir),
        "--baseline",
        str(out),
        "--output",
        str(tmp_path / "m.json"),
        "--no-history",
        "--format",
        "json",
    )
    data = json.loads(proc.stdout)
    entry = dict(zip(data["tables"][0]["headers"][1:], data["tables"][0]["rows"][0]["cells"]))["2.13.0 warm"]
    # Same samples on both sides: no movement of the median, whatever the verdict's wording.
    assert entry["change"].startswith("+0.0% ")


def test_a_corrupt_cell_file_is_one_line_naming_it(run_dir, tmp_path):
    bad_run = tmp_path / "run-bad"
    shutil.copytree(run_dir, bad_run)
    (bad_run / "zz-cell.json").write_text('{"schema_version": 1, "kind": "cell", "sta')
    proc = harness("merge", str(bad_run), "--output", str(tmp_path / "m.json"), "--no-history")
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert "zz-cell.json" in proc.stderr and "--skip-bad" in proc.stderr
    skipped = harness(
        "merge", str(bad_run), "--output", str(tmp_path / "m.json"), "--no-history", "--skip-bad"
    )
    assert (
        skipped.returncode == 1 and "warning: skipped" in skipped.stderr and "zz-cell.json" in skipped.stderr
    )
    assert "2.13.0 warm" in skipped.stdout


@pytest.mark.parametrize("make", ["missing", "empty", "file"])
def test_an_unusable_run_folder_is_one_line(tmp_path, make):
    target = tmp_path / "run"
    if make == "empty":
        target.mkdir()
    elif make == "file":
        target.write_text("not a folder")
    proc = harness("merge", str(target), "--output", str(tmp_path / "m.json"), "--no-history")
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and str(target) in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "m.json").exists()


def test_failure_words_come_from_the_failure_kind():
    cell = CellInfo(
        id="m-torch1-warm-cpu", model="m", source="package:m", mode="warm", device="cpu", torch="1"
    )
    settings = Settings(runs=2, warmups=0, timeout_s=1.0)

    def word(kind: FailureKind, reason: str = "whatever the words") -> str:
        return tables.failure_word(CellReport.failed(cell, settings, kind, reason))

    assert word(FailureKind.INSTALL) == "install failed"
    assert word(FailureKind.LOAD) == "load failed"
    assert word(FailureKind.TIMEOUT) == "timeout"
    assert word(FailureKind.CRASH, "timed out, says the text") == "crashed"  # the kind, never the text
    assert word(FailureKind.INTERRUPTED) == "interrupted"
    assert word(FailureKind.NOT_RUN) == "not run"


def test_a_merged_report_round_trips(merged):
    _, out, _ = merged
    report = read_matrix(out)
    assert isinstance(report, MatrixReport) and MatrixReport.decode(out, report.to_json()) == report
