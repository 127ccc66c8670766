"""A matrix costs little more than its samples (issue 11): the warm-up carries the import
attribution, and cold samples evict and check exactly the files the load reads."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time

import psutil
import pytest
from conftest import REPO
from test_coldcache import _fincore_pages

from harness.measure import coldcache
from harness.measure.models import resolve
from harness.measure.runner import CellConfig, CellRun
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
def test_cold_samples_evict_and_check_exactly_what_the_load_reads(tmp_path):
    config = CellConfig(
        model=resolve(DEFAULT_MODEL),
        name="all-MiniLM-L6-v2",
        mode="cold",
        settings=Settings.checked(runs=1, warmups=1),
        import_attribution=False,
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
    assert str(coldcache.largest_torch_library().resolve()) in files
    assert os.path.realpath(sys.executable) in files

    sample = cell.run_sample(1, warmup=False)
    assert sample.ok, sample.stderr_tail
    # Residency over the whole set: every byte the load reads, not two files.
    # (On a shared machine a process that maps the same inode pins it: the message names it.)
    holders = {f: coldcache.mapped_by(f) for f in list(sample.residency_files or {})[:3]}
    assert sample.cache_residency <= COLD_RESIDENCY_THRESHOLD, holders
    assert sample.cold is True and sample.cache_flagged is False
    assert 1 <= sample.evictions <= 3 and sample.evict_s > 0
    # The warm-up compiled what it imported, if anything lacked bytecode: the counted
    # sample found all of it.
    assert sample.bytecode_present == 1.0

    if shutil.which("fincore") is None:
        return
    # An independent tool agrees that the targeted eviction emptied the largest file.
    largest = max(files, key=os.path.getsize)
    coldcache.evict(files)
    resident, total = _fincore_pages(largest)
    assert resident / total <= COLD_RESIDENCY_THRESHOLD, coldcache.mapped_by(largest)
