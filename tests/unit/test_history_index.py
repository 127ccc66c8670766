"""The history index stays correct whatever happened to it (issue 27, item 5; issue 26).

Histories are built from synthetic merged reports of the real result types
(harness.dashboard.synthetic), recorded by the real ``history.record``; nothing is measured.
"""

from __future__ import annotations

import json

import msgspec
import pytest
from conftest import harness

from harness.analysis import history
from harness.dashboard import synthetic
from harness.result import CellReport, FailureKind, MatrixReport


def _reports(n: int, cells: int = 4) -> list[MatrixReport]:
    return list(synthetic.runs(n, cells))


def _interrupted(report: MatrixReport) -> MatrixReport:
    """The same run as its first, interrupted merge saw it: every cell failed, no sample."""
    cells = {
        cid: CellReport.failed(cell.cell, cell.settings, FailureKind.INTERRUPTED, "interrupted")
        for cid, cell in report.cells.items()
    }
    return msgspec.structs.replace(report, cells=cells)


def test_a_resumed_run_updates_its_entry(tmp_path):
    """Merging an interrupted run and then its resumed run keeps the resumed figures, once."""
    (complete,) = _reports(1)
    history.record(_interrupted(complete), tmp_path)
    history.record(complete, tmp_path)
    entries = history.load(tmp_path)
    assert [e.run_id for e in entries] == [complete.run_id]
    (entry,) = entries
    assert {c.status for c in entry.cells.values()} == {"complete"}
    for cell_id, cell in complete.cells.items():
        assert entry.cells[cell_id].medians["total_s"] == cell.median("total_s")
    assert (tmp_path / history.INDEX).read_bytes().count(b"\n") == 1


def test_a_run_id_is_never_added_twice(tmp_path):
    first, second = _reports(2)
    for report in (first, second, first, second):
        history.record(report, tmp_path)
    index = tmp_path / history.INDEX
    assert index.read_bytes().count(b"\n") == 2
    before = index.read_bytes()
    history.record(second, tmp_path)  # the same figures again: nothing to write
    assert index.read_bytes() == before


def test_an_update_keeps_the_run_in_its_place(tmp_path):
    first, second, third = _reports(3)
    for report in (first, second, third):
        history.record(report, tmp_path)
    resumed = msgspec.structs.replace(second, created="2099-01-01T00:00:00+00:00")  # merged again later
    history.record(resumed, tmp_path)
    assert [e.run_id for e in history.load(tmp_path)] == [first.run_id, second.run_id, third.run_id]


def test_a_torn_last_line_is_reported_skipped_and_never_merged_into(tmp_path):
    """A line cut short (a killed writer, a full disk): one warning, the lines before it
    kept, and the next run starts on a line of its own."""
    first, second, third = _reports(3)
    history.record(first, tmp_path)
    history.record(second, tmp_path)
    index = tmp_path / history.INDEX
    data = index.read_bytes()
    cut = data.rindex(b"\n", 0, len(data) - 1) + 1 + 40  # 40 bytes into the second line
    index.write_bytes(data[:cut])

    found = history.read_index(tmp_path)
    assert [e.run_id for e in found.entries] == [first.run_id]
    assert len(found.warnings) == 1 and "cut short" in found.warnings[0]

    warnings: list[str] = []
    history.record(third, tmp_path, warnings=warnings)
    assert len(warnings) == 1
    assert [e.run_id for e in history.load(tmp_path)] == [first.run_id, third.run_id]
    # The torn line stays on a line of its own, still reported, never glued to the new one.
    problems: list[str] = []
    history.load(tmp_path, problems)
    assert len(problems) == 1 and "not history entries (line 2)" in problems[0]


def test_a_torn_only_line_leaves_a_usable_history(tmp_path):
    """The index holds one torn line and nothing else: the next merge still records its run."""
    (report,) = _reports(1)
    index = tmp_path / history.INDEX
    tmp_path.mkdir(exist_ok=True)
    index.write_bytes(b'{"cells":{"a":{"medians":{"total_s":1.')
    history.record(report, tmp_path)
    assert [e.run_id for e in history.load(tmp_path)] == [report.run_id]


def test_history_command_warns_in_one_line_and_lists_the_runs(tmp_path):
    first, second = _reports(2)
    history.record(first, tmp_path)
    history.record(second, tmp_path)
    index = tmp_path / history.INDEX
    index.write_bytes(index.read_bytes()[:-30])  # the second line loses its end
    proc = harness("history", "--root", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    warnings = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(warnings) == 1 and "cut short" in warnings[0], proc.stderr
    assert "runs: 1" in proc.stdout and "no runs recorded" not in proc.stdout


def test_a_line_of_an_older_harness_still_reads(tmp_path):
    """Lines written before intervals, environments and package sets were kept."""
    tmp_path.mkdir(exist_ok=True)
    (tmp_path / history.INDEX).write_bytes(
        b'{"cells":{"m-torch2.13.0-warm-cpu":{"fingerprint":"fp","medians":{"total_s":2.5},'
        b'"n":5,"status":"complete"}},"commit":null,"created":"2026-11-24T09:00:00+00:00",'
        b'"report":null,"run_id":"r1"}\n'
    )
    (entry,) = history.load(tmp_path)
    assert entry.cells["m-torch2.13.0-warm-cpu"].medians == {"total_s": 2.5}
    assert entry.packages == {} and entry.cells["m-torch2.13.0-warm-cpu"].env is None


def test_an_entry_keeps_intervals_environments_and_package_sets(tmp_path):
    (report,) = _reports(1)
    history.record(report, tmp_path)
    (entry,) = history.load(tmp_path)
    cell_id, cell = next(iter(report.cells.items()))
    assert entry.cells[cell_id].intervals["total_s"] == tuple(cell.stats["total_s"].ci95)
    assert entry.cells[cell_id].env == cell.cell.env_id
    assert entry.packages[cell.cell.env_id]["transformers"] == synthetic.BASE_PACKAGES["transformers"]


@pytest.mark.parametrize("recovers", [False, True])
def test_every_step_is_returned_a_recovered_one_too(recovers):
    """A regression that later recovered stays a step, beside its recovery."""
    values = [1.0] * 8 + [1.3] * 8 + ([1.0] * 8 if recovers else [1.3] * 8)
    found = history.step_changes(values)
    assert [s.index for s in found] == ([8, 16] if recovers else [8])
    assert found[0].change == pytest.approx(0.3)
    if recovers:
        assert found[1].change < 0


def _run_folder(path, report: MatrixReport) -> None:
    path.mkdir(parents=True, exist_ok=True)
    for cell_id, cell in report.cells.items():
        cell.write(path / f"{cell_id}.json")


def test_merge_of_an_interrupted_then_resumed_run_records_the_resumed_figures(tmp_path):
    """The real merge, twice on one run folder: first as the interrupted run left it (every
    cell failed), then as its resume completed it (issue 27, 5a)."""
    (complete,) = _reports(1)
    run_dir, hist = tmp_path / "runs" / complete.run_id, tmp_path / "history"
    _run_folder(run_dir, _interrupted(complete))
    merge = ["merge", str(run_dir), "--output", str(tmp_path / "m.json"), "--history", str(hist)]
    assert harness(*merge).returncode == 1  # every cell failed: the tables say so
    _run_folder(run_dir, complete)
    assert harness(*merge).returncode == 0
    (entry,) = history.load(hist)
    assert {c.status for c in entry.cells.values()} == {"complete"}
    proc = harness("history", "--root", str(hist), "--format", "json", check=True)
    assert "no runs recorded" not in proc.stdout


def test_merge_after_a_torn_line_warns_and_records_on_a_line_of_its_own(tmp_path):
    """A partial last line (a full disk) and then a merge: one warning, the run recorded,
    `history` lists it (issue 27, 5b)."""
    first, second = _reports(2)
    hist = tmp_path / "history"
    history.record(first, hist)
    index = hist / history.INDEX
    index.write_bytes(index.read_bytes()[:-25])  # the only line lost its end
    run_dir = tmp_path / "runs" / second.run_id
    _run_folder(run_dir, second)
    proc = harness("merge", str(run_dir), "--output", str(tmp_path / "m.json"), "--history", str(hist))
    assert proc.returncode == 0, proc.stderr
    warnings = [line for line in proc.stderr.splitlines() if "warning" in line]
    assert len(warnings) == 1 and "cut short" in warnings[0], proc.stderr
    listed = harness("history", "--root", str(hist), "--format", "json", check=True)
    assert json.loads(listed.stdout)["runs"] == [second.run_id]


def _merge_twice(root: str, worker: int) -> None:
    """One merging process: each of its runs merged while interrupted, then resumed."""
    for k, report in enumerate(_reports(5, cells=2)):
        report = msgspec.structs.replace(report, run_id=f"w{worker}-{k}")
        history.record(_interrupted(report), root)
        history.record(report, root)


def test_merges_at_once_lose_no_run_and_no_update(tmp_path):
    """Four processes append and update at once: every run is there once, with its resumed
    figures (the lock keeps a rewrite from dropping a line appended meanwhile)."""
    import multiprocessing

    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_merge_twice, args=(str(tmp_path), w)) for w in range(4)]
    for process in workers:
        process.start()
    for process in workers:
        process.join(120)
        assert process.exitcode == 0
    found = history.read_index(tmp_path)
    assert found.warnings == []
    assert sorted(e.run_id for e in found.entries) == sorted(f"w{w}-{k}" for w in range(4) for k in range(5))
    assert {c.status for e in found.entries for c in e.cells.values()} == {"complete"}
    assert (tmp_path / history.INDEX).read_bytes().count(b"\n") == 20


def test_a_run_merged_again_later_keeps_its_own_date_and_place(tmp_path):
    """Runs merged into a history out of order, long after they were measured (a resume, a
    history rebuilt from old run folders), keep the date their cells finished, so the
    history and the dashboard stay in run order; merge's clock is not the run's."""
    older, newer = _reports(2)
    hist = tmp_path / "history"
    for report in (newer, older):  # the newer run merged first
        run_dir = tmp_path / "runs" / report.run_id
        _run_folder(run_dir, report)
        out = tmp_path / f"matrix-{report.run_id}.json"
        harness("merge", str(run_dir), "--output", str(out), "--history", str(hist), check=True)
        merged = MatrixReport.read(out)
        assert merged.created == max(c.finished or c.started for c in report.cells.values())
    assert [entry.run_id for entry in history.load(hist)] == [older.run_id, newer.run_id]
