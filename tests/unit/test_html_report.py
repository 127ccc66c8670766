"""The HTML report and the CI summary, from a real small run.

The run folder is built from a stored real warm and cold profile of the embedded model,
recorded together (tests/data/warm-2runs.json and cold-2runs.json, as the current format
writes them), merged by the real ``merge`` into a history of two runs (so the trend has two
points), and the page is opened in a real headless Chromium: its DOM must hold every plot,
its network log must show no request made for the page, and a screenshot of it is taken
(into the test's own folder: no test writes into the checkout's reports/). Pages of fresh
runs are rendered in the e2e tier (tests/e2e/test_backends_run.py, test_reference.py).

Chromium is installed by ``make browser`` (``make test`` depends on it), never by a test;
without it on PATH the browser tests skip and say so.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from conftest import COLD_2RUNS, WARM_2RUNS, harness, page_requests, run_chromium

PLOT_IDS = {"plot-stages", "plot-spread", "plot-imports", "plot-memory", "plot-ratio", "plot-trend"}


@pytest.fixture(scope="module")
def small_run(tmp_path_factory) -> dict:
    """A run folder of two real cells, merged twice into one history (runs r-a and r-b)."""
    from harness.result import read_report

    root = tmp_path_factory.mktemp("html")
    history = root / "history"
    merged = {}
    stored = [read_report(path) for path in (WARM_2RUNS, COLD_2RUNS)]
    for run_id in ("r-a", "r-b"):
        run_dir = root / "runs" / run_id
        run_dir.mkdir(parents=True)
        for report in stored:
            report.write(run_dir / f"{report.id}.json")
        merged[run_id] = root / f"matrix-{run_id}.json"
        harness("merge", str(run_dir), "--output", str(merged[run_id]), "--history", str(history), check=True)
    return {
        "root": root,
        "run_dir": root / "runs" / "r-b",
        "matrix": merged["r-b"],
        "baseline": merged["r-a"],
        "history": history,
        "cell": root / "runs" / "r-b" / f"{stored[0].id}.json",
    }


def test_report_opens_offline_with_every_plot(small_run, chromium, tmp_path):
    page = tmp_path / "report.html"
    proc = harness(
        "report",
        str(small_run["matrix"]),
        "--baseline",
        str(small_run["baseline"]),
        "--history",
        str(small_run["history"]),
        "--html",
        str(page),
        check=True,
    )
    assert proc.stdout.strip() == str(page)
    text = page.read_text()

    # Self-contained: nothing to fetch, not even a namespace URL a reader might follow.
    assert not re.search(r"https?://", text), re.search(r".{60}https?://.{60}", text)
    assert "<script" not in text and "<link" not in text and "@import" not in text
    for ref in re.findall(r"""(?:src|href)\s*=\s*["']([^"']*)""", text):
        assert ref.startswith("#"), f"the page refers outside itself: {ref}"
    for ref in re.findall(r"""url\(\s*["']?([^)"']*)""", text):  # clip paths of the plots: #ids
        assert ref.startswith("#"), f"the page refers outside itself: url({ref})"
    assert set(re.findall(r'<svg id="([^"]+)"', text)) == PLOT_IDS
    assert "font-family" in text or "font:" in text  # SVG text stays text (no embedded glyphs or fonts)
    assert "@media print" in text

    proc, requests = run_chromium(chromium, page, tmp_path, "--dump-dom")
    assert proc.returncode == 0, proc.stderr[-2000:]
    dom = proc.stdout
    assert set(re.findall(r'<svg id="([^"]+)"', dom)) == PLOT_IDS, "a plot is missing from the rendered page"
    for section in (
        "headline",
        "stages",
        "spread",
        "imports",
        "memory",
        "comparison",
        "trend",
        "tables",
        "recommendations",
        "environment",
    ):
        assert f'id="{section}"' in dom
    assert page_requests(requests) == []

    screenshot = tmp_path / "report-screenshot.png"
    proc, requests = run_chromium(
        chromium, page, tmp_path, f"--screenshot={screenshot}", "--window-size=1280,4000", "--hide-scrollbars"
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert page_requests(requests) == []


def test_network_check_sees_a_request_when_there_is_one(chromium, tmp_path):
    """The check above is not vacuous: a page with one external image is caught."""
    page = tmp_path / "canary.html"
    page.write_text('<!DOCTYPE html><html><body><img src="http://example.invalid/x.png"></body></html>')
    proc, requests = run_chromium(chromium, page, tmp_path, "--dump-dom")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert page_requests(requests) == ["http://example.invalid/x.png"]


def test_report_takes_a_run_folder_and_a_cell_report(small_run, tmp_path):
    for source, plots in (
        (small_run["run_dir"], PLOT_IDS - {"plot-ratio"}),
        (small_run["cell"], PLOT_IDS - {"plot-ratio"}),
    ):
        page = tmp_path / f"{Path(source).stem}.html"
        harness(
            "report", str(source), "--history", str(small_run["history"]), "--html", str(page), check=True
        )
        text = page.read_text()
        ids = set(re.findall(r'<svg id="([^"]+)"', text))
        # A lone cell report has a history of its own id only if merged; the run's cells have two runs.
        assert ids - {"plot-trend"} == plots - {"plot-trend"}
        assert "No baseline given" in text


def test_summary_appends_verdict_first(small_run, tmp_path):
    from harness.result import CellInfo, CellReport, FailureKind, Settings

    summary = tmp_path / "step-summary.md"
    summary.write_text("earlier step\n")
    env = {"GITHUB_STEP_SUMMARY": str(summary)}
    proc = harness(
        "summary", str(small_run["matrix"]), "--baseline", str(small_run["baseline"]), env=env, check=True
    )
    assert proc.stdout == ""
    text = summary.read_text()
    assert text.startswith("earlier step\n")
    added = text[len("earlier step\n") :].splitlines()
    assert re.match(r"### (✅ no regression|❌ \d+ regressions?:)", added[0]), added[0]
    assert "| model" in text  # the console's total-load table, as markdown

    # A failed cell turns the verdict; without the variable the lines go to stdout.
    run_dir = tmp_path / "with-failure"
    shutil.copytree(small_run["run_dir"], run_dir)
    info = CellInfo(
        id="broken-torch9.9-warm-cpu",
        model="broken",
        source="path:/nowhere",
        mode="warm",
        device="cpu",
        torch="9.9",
    )
    CellReport.failed(
        info,
        Settings(runs=2, warmups=0, timeout_s=60.0),
        FailureKind.LOAD,
        "could not start: model not found",
    ).write(run_dir / f"{info.id}.json")
    proc = harness("summary", str(run_dir), "--format", "md", env={"GITHUB_STEP_SUMMARY": ""}, check=True)
    first = proc.stdout.splitlines()[0]
    assert first.startswith("### ❌ 1 failed cell: broken-torch9.9-warm-cpu"), first


def test_bad_input_is_one_line_exit_2(tmp_path):
    corrupt = tmp_path / "corrupt.json"
    corrupt.write_text('{"schema_version": 1, "kind": "matrix", ')
    for args in (
        ["report", str(tmp_path / "missing.json")],
        ["report", str(corrupt)],
        ["summary", str(corrupt)],
        ["report", str(tmp_path), "--html", str(tmp_path / "x.html")],
    ):
        proc = harness(*args)
        assert proc.returncode == 2, (args, proc.stderr)
        assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr, proc.stderr
