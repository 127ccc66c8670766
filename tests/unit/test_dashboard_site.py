"""The dashboard (issue 26), built by the real command from a generated history.

The history: 24 nightly runs of 10 cells (five torch versions x cold/warm), synthetic
reports of the real result types (harness.dashboard.synthetic) recorded by the real
``history.record``, with three steps injected, each with a known package move, and one of
them recovering later. The generator is seeded and its noise is 1% a sample against steps
of 25% or more (and a 5% threshold): no step can be missed or invented, on any run.

Chromium (``make browser`` installs it; without it the browser tests skip and say so)
opens the front page, a cell page and a comparison: no console message, no request that
leaves file://, and the "regressed only" filter shows exactly the regressed cells.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import harness, page_requests, run_chromium

from harness.analysis import history
from harness.dashboard import model, synthetic
from harness.dashboard.synthetic import InjectedStep, run_id_of
from harness.report.chromium import OFFLINE_FLAGS

RUNS, CELLS, KEPT = 24, 10, 5
STEPS = [
    InjectedStep("2.11.0", 6, 1.3, "transformers", "5.17.0", "5.18.0", recover_at=14, fixed="5.18.1"),
    InjectedStep("2.13.0", 10, 1.25, "tokenizers", "0.22.1", "0.23.0"),
    InjectedStep("2.15.0", 18, 1.4, "huggingface-hub", "1.0.3", "1.1.0"),
]
STILL_REGRESSED = {"2.13.0", "2.15.0"}  # the 2.11.0 step recovered
QUIET = {"2.12.1", "2.14.1"}


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("dashboard")
    hist, reports, out = root / "history", root / "reports", root / "site"
    # The newest run is a reference run: it measured the run before's environments too.
    for k, report in enumerate(
        synthetic.runs(RUNS, CELLS, steps=STEPS, reference_runs=frozenset({RUNS - 1}))
    ):
        path = reports / f"matrix-{report.run_id}.json"
        if k >= RUNS - KEPT:  # only the last nights' reports are kept, as in CI
            report.write(path)
        history.record(report, hist, path=path)
    proc = harness("dashboard", "--history", str(hist), "--runs", str(reports), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    return {"history": hist, "reports": reports, "out": out, "stdout": proc.stdout}


def _cells_of(torch: str) -> list[str]:
    return [i.id for i in synthetic.Layout(CELLS).infos() if i.torch == torch]


def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def test_every_injected_step_appears_with_its_package_move(built):
    site = built["out"]
    front = _text(site / "index.html")
    for step in STEPS:
        move = f"{step.package} {step.before} → {step.after}"
        for cell_id in _cells_of(step.env):
            page = _text(site / "cells" / f"{cell_id}.html")
            rows = re.findall(r'<tr class="step">(.*?)</tr>', page, re.S)
            began = [
                r for r in rows if f"<td>{run_id_of(step.at)}</td><td>{run_id_of(step.at - 1)}</td>" in r
            ]
            assert began and all(move in r for r in began), (cell_id, rows)
        assert move in front
    # The recovered one stays listed, marked, beside its recovery and what moved there.
    recovered = STEPS[0]
    page = _text(site / "cells" / f"{_cells_of(recovered.env)[0]}.html")
    assert f"recovered at {run_id_of(recovered.recover_at)}" in page
    assert f"{recovered.package} {recovered.after} → {recovered.fixed}" in page


def test_the_model_finds_exactly_the_injected_steps(built):
    dashboard = model.build(built["history"], built["reports"])
    expected = set()
    for step in STEPS:
        for cell_id in _cells_of(step.env):
            for metric in dashboard.gated:
                expected.add((cell_id, metric, run_id_of(step.at)))
                if step.recover_at is not None:
                    expected.add((cell_id, metric, run_id_of(step.recover_at)))
    assert {(s.cell_id, s.metric, s.run_at) for s in dashboard.steps} == expected
    for s in dashboard.steps:
        assert s.moves and len(s.moves) == 1, s


def test_a_cell_without_a_step_shows_none(built):
    for torch in QUIET:
        for cell_id in _cells_of(torch):
            page = _text(built["out"] / "cells" / f"{cell_id}.html")
            assert '<tr class="step">' not in page
            assert page.count("No step detected in 24 runs") == 2  # one per gated metric


def test_regressed_rows_are_exactly_the_regressed_cells(built):
    front = _text(built["out"] / "index.html")
    table = front[front.index('id="verdicts"') : front.index("</table>", front.index('id="verdicts"'))]
    flagged = set(re.findall(r'<tr data-cell="([^"]+)" data-regressed="1"', table))
    assert flagged == {c for torch in STILL_REGRESSED for c in _cells_of(torch)}
    assert 'class="banner bad" id="status">4 of 10 cells regressed' in front


def test_comparisons_are_built_paired_where_interleaved(built):
    site = built["out"]
    newest, before = run_id_of(RUNS - 1), run_id_of(RUNS - 2)
    paired = _text(site / "compare" / f"{before}__{newest}.html")
    assert "paired: run" in paired and "two sessions, unpaired" not in paired
    older = run_id_of(RUNS - KEPT)
    unpaired = _text(site / "compare" / f"{older}__{newest}.html")
    assert "two sessions, unpaired" in unpaired
    assert "No regression on the gated metrics" in unpaired
    # Consecutive runs and each against the newest are built; the picker knows which.
    picker = json.loads(re.search(r'id="picker-data">(.*?)</script>', _text(site / "index.html"), re.S)[1])
    kept = [run_id_of(k) for k in range(RUNS - KEPT, RUNS)]
    assert set(picker["built"]) == {f"{a}__{b}" for a, b in zip(kept, kept[1:])} | {
        f"{a}__{newest}" for a in kept[:-1]
    }
    assert picker["runs"] == list(reversed(kept))


def test_compare_builds_one_more_pair_and_refuses_a_run_without_its_report(built, tmp_path):
    out = tmp_path / "site"
    a, b = run_id_of(RUNS - KEPT), run_id_of(RUNS - 2)
    args = [
        "dashboard",
        "--history",
        str(built["history"]),
        "--runs",
        str(built["reports"]),
        "--out",
        str(out),
    ]
    assert harness(*args, "--compare", a, b, check=True).returncode == 0
    assert "two sessions, unpaired" in _text(out / "compare" / f"{a}__{b}.html")
    proc = harness(*args, "--compare", run_id_of(0), b)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and f"matrix-{run_id_of(0)}.json" in proc.stderr


def test_environment_inventory_lists_what_moved(built):
    page = _text(built["out"] / "environments.html")
    assert "transformers 5.17.0 → 5.18.0" in page and "tokenizers 0.22.1 → 0.23.0" in page
    run_page = _text(built["out"] / "runs" / f"{run_id_of(STEPS[1].at)}.html")
    assert "tokenizers 0.22.1 → 0.23.0" in run_page


def test_a_missing_history_is_one_line_and_exit_2(tmp_path):
    proc = harness("dashboard", "--history", str(tmp_path / "none"), "--out", str(tmp_path / "site"))
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "no history index" in proc.stderr
    assert not (tmp_path / "site").exists()


# --------------------------------------------------------------------------- Chromium

CHROMIUM_FLAGS = [
    *OFFLINE_FLAGS,
    # Console messages (and uncaught errors) of the page go to stderr as "INFO:CONSOLE:<line>]"
    # ("CONSOLE(<line>)]" in older Chromium).
    "--enable-logging=stderr",
    "--v=0",
]


def _open(chromium: str, url: str, tmp: Path) -> tuple[str, list[str], list[str]]:
    """The DOM after load, the page's console messages, and the URLs it requested."""
    proc, requests = run_chromium(chromium, url, tmp, "--dump-dom", flags=CHROMIUM_FLAGS)
    console = [line for line in proc.stderr.splitlines() if re.search(r":CONSOLE(?:\(\d+\)|:\d+)\]", line)]
    return proc.stdout, console, page_requests(requests)


def test_the_console_check_sees_an_error(chromium, tmp_path):
    """The checks below can fail: a page with a script error and a remote request is caught."""
    page = tmp_path / "broken.html"
    page.write_text(
        '<html><body><img src="http://example.invalid/x.png"><script>nothing();</script></body></html>'
    )
    _dom, console, requests = _open(chromium, page.as_uri(), tmp_path)
    assert console, "a script error did not reach the console log"
    assert any(not url.startswith("file:") for url in requests)


def test_pages_open_offline_without_errors(built, chromium, tmp_path):
    site = built["out"]
    cell = _cells_of("2.13.0")[0]
    newest = run_id_of(RUNS - 1)
    pages = [
        site / "index.html",
        site / "cells" / f"{cell}.html",
        site / "compare" / f"{run_id_of(RUNS - 2)}__{newest}.html",
    ]
    for page in pages:
        dom, console, requests = _open(chromium, page.resolve().as_uri(), tmp_path)
        assert "<h1>" in dom, page
        assert console == [], (page, console)
        # file:// loads (the page's script and style) never reach the network stack's log;
        # anything that does is a request leaving file:// (the control test above sees one).
        assert [url for url in requests if not url.startswith("file:")] == [], (page, requests)
    # The script ran (it fills the count) and the plots are there.
    assert "10 of 10 shown" in _open(chromium, pages[0].resolve().as_uri(), tmp_path)[0]
    assert _open(chromium, pages[1].resolve().as_uri(), tmp_path)[0].count('<svg id="trend-') == 2


def test_regressed_only_filter_in_chromium(built, chromium, tmp_path):
    """index.html#regressed-only opens with the filter on: the rows left are the regressed cells'."""
    url = (built["out"] / "index.html").resolve().as_uri() + "#regressed-only"
    dom, console, _requests = _open(chromium, url, tmp_path)
    assert console == []
    table = dom[dom.index('id="verdicts"') : dom.index("</table>", dom.index('id="verdicts"'))]
    rows = re.findall(r"<tr ([^>]*)>", table)
    visible = {
        re.search(r'data-cell="([^"]+)"', r)[1] for r in rows if "hidden" not in r and "data-cell" in r
    }
    assert visible == {c for torch in STILL_REGRESSED for c in _cells_of(torch)}
    assert 'id="regressed-only" checked' in dom or "4 of 10 shown" in dom
