"""merge: a run folder of real cell reports -> reports/matrix-<run id>.json and the tables.

The run folder is built from a real profile of the embedded model (the shared warm
report), a failed record as the noxfile writes it when torch will not install, a planned
cell that never ran, and the environment record nox writes.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from conftest import harness
from harness import tables
from harness.result import HEADLINE_METRICS, METRICS, failed_cell_report, read_matrix, read_report, write_json_atomic


@pytest.fixture(scope="module")
def run_dir(warm_report_path, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("runs") / "20260101-000000"
    run.mkdir()
    good = read_report(warm_report_path)
    cid = good["cell"]["id"]
    shutil.copy(warm_report_path, run / f"{cid}.json")
    bad_cell = {"id": "all-MiniLM-L6-v2-torch0.0.1-warm-cpu", "model": "all-MiniLM-L6-v2",
                "source": good["cell"]["source"], "mode": "warm", "device": "cpu", "torch": "0.0.1"}
    write_json_atomic(run / f"{bad_cell['id']}.json", failed_cell_report(
        bad_cell, {"runs": 2, "warmups": 0, "timeout_s": 300.0},
        "torch==0.0.1 could not be installed: there is no version of torch==0.0.1", "uv output"))
    never = dict(bad_cell, id="all-MiniLM-L6-v2-torch2.13.0-cold-cpu", mode="cold", torch="2.13.0")
    write_json_atomic(run / "run.json", {"run_id": run.name, "matrix": {"runs": 2},
                                         "planned": [good["cell"], never, bad_cell]})
    write_json_atomic(run / "env-torch-2.13.0.json", {
        "torch": "2.13.0", "status": "ok", "build_s": 12.5, "error": None, "python": "3.11.7",
        "packages": {"torch": "2.13.0+cpu", "sentence-transformers": "6.0.1"}})
    write_json_atomic(run / "env-torch-0.0.1.json", {
        "torch": "0.0.1", "status": "failed", "build_s": 0.4, "packages": {},
        "error": "torch==0.0.1 could not be installed: there is no version of torch==0.0.1"})
    return run


@pytest.fixture(scope="module")
def merged(run_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("merged") / "matrix.json"
    history = out.parent / "history"
    proc = harness("merge", str(run_dir), "--output", str(out), "--history", str(history))
    return proc, out, history


def cell_text(report: dict, metric: str) -> str:
    """The table text of a complete cell, from its own statistics."""
    stats = report["stats"][metric]
    places = tables.decimals(stats["median"])
    lo, hi = stats["ci95"]
    return f"{stats['median']:.{places}f} [{lo:.{places}f}–{hi:.{places}f}]"


def test_merge_writes_a_valid_matrix_report_with_every_cell(merged, run_dir, warm_report_path):
    proc, out, history = merged
    assert proc.returncode == 1, proc.stderr  # one cell failed, one never ran
    report = read_matrix(out)  # validates against MATRIX_SCHEMA
    assert report["run_id"] == run_dir.name
    good = read_report(warm_report_path)
    assert report["cells"][good["cell"]["id"]] == good  # whole, nothing lost
    failed = report["cells"]["all-MiniLM-L6-v2-torch0.0.1-warm-cpu"]
    assert failed["status"] == "failed" and "could not be installed" in failed["failure"]["reason"]
    assert [m["id"] for m in report["missing"]] == ["all-MiniLM-L6-v2-torch2.13.0-cold-cpu"]
    assert report["environments"]["2.13.0"]["build_s"] == 12.5
    assert report["environments"]["0.0.1"]["status"] == "failed"
    # The run went into the history given.
    entries = [json.loads(line) for line in (history / "index.jsonl").read_text().splitlines()]
    assert [e["run_id"] for e in entries] == [run_dir.name]


def test_text_tables_show_median_interval_and_why_cells_failed(merged, warm_report_path):
    proc, out, _ = merged
    good = read_report(warm_report_path)
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
        met = (good["target_results"].get(table["metric"]) or {}).get("met")
        assert entry["text"].endswith(tables.MISSED) == (met is False)


def test_markdown_and_json_formats(run_dir, tmp_path, warm_report_path):
    good = read_report(warm_report_path)
    md = harness("merge", str(run_dir), "--format", "md", "--output", str(tmp_path / "m.json"), "--no-history")
    assert md.returncode == 1, md.stderr
    assert "### Total load time (total_s" in md.stdout
    header = next(line for line in md.stdout.splitlines() if line.startswith("| model"))
    assert "2.13.0 warm" in header and "0.0.1 warm" in header
    assert any(line.startswith("|---") for line in md.stdout.splitlines())
    assert cell_text(good, "total_s") in md.stdout

    js = harness("merge", str(run_dir), "--format", "json", "--output", str(tmp_path / "m.json"), "--no-history")
    data = json.loads(js.stdout)
    assert [t["metric"] for t in data["tables"]] == HEADLINE_METRICS
    total = data["tables"][0]
    row = total["rows"][0]
    by_header = dict(zip(total["headers"][1:], row["cells"]))
    assert by_header["2.13.0 warm"]["median"] == good["stats"]["total_s"]["median"]
    assert by_header["0.0.1 warm"]["text"] == "install failed"
    assert by_header["2.13.0 cold"]["text"] == "not run"
    assert data["report"] == str(tmp_path / "m.json")


def test_baseline_adds_each_cells_change(run_dir, merged, tmp_path):
    _, out, _ = merged
    proc = harness("merge", str(run_dir), "--baseline", str(out), "--output", str(tmp_path / "m.json"),
                   "--no-history", "--format", "json")
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
    skipped = harness("merge", str(bad_run), "--output", str(tmp_path / "m.json"), "--no-history", "--skip-bad")
    assert skipped.returncode == 1 and "warning: skipped" in skipped.stderr and "zz-cell.json" in skipped.stderr
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


def test_failure_words():
    cell = {"id": "m-torch1-warm-cpu", "model": "m", "source": "package:m", "mode": "warm", "device": "cpu",
            "torch": "1"}
    settings = {"runs": 2, "warmups": 0, "timeout_s": 1.0}
    assert tables.failure_word(failed_cell_report(cell, settings, "torch==1 could not be installed: x")) == \
        "install failed"
    assert tables.failure_word(failed_cell_report(cell, settings, "could not start: no model")) == "load failed"
    assert tables.failure_word(failed_cell_report(cell, settings, "every sample failed",
                                                  "timed out after 1 s (--timeout)")) == "timeout"
    assert tables.failure_word(failed_cell_report(cell, settings, "every sample failed",
                                                  "killed by SIGSEGV")) == "crashed"
    assert tables.failure_word({**failed_cell_report(cell, settings, "x"), "status": "partial"}) == "interrupted"
