"""--timeout holds whatever the load starts, and a finished sample is kept (issue 27, item 2).

The runner waited for the end of the probe's stderr pipe. A process the load started in a
session of its own (``Popen(['sleep', '600'], start_new_session=True)``) kept that pipe
open: killpg did not reach it, and the run hung past --timeout, the ``sleep`` left running.
A forked child held it too: a probe that had finished in a second was recorded as timed
out. The application here imports nothing heavy: no model is loaded.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from harness.result import FailureKind, read_report

APP = """
import os, subprocess, time
from pathlib import Path

PIDS = Path(__file__).parent / "pids"

class Encoder:
    def encode(self, sentence):
        return [0.0, 1.0]

def _note(pid):
    with open(PIDS, "a") as fh:
        fh.write(f"{pid}\\n")

def spawns_and_returns():
    _note(subprocess.Popen(["sleep", "600"], start_new_session=True).pid)
    return Encoder()

def forks_and_returns():
    pid = os.fork()
    if pid == 0:
        time.sleep(600)
        os._exit(0)
    _note(pid)
    return Encoder()

def spawns_and_hangs():
    _note(subprocess.Popen(["sleep", "600"], start_new_session=True).pid)
    time.sleep(600)
"""
# How long the run may take before the test calls it hung: far above a sample of this app
# (a Python start-up and a tiny import, well under a second here), so that a busy machine
# never fails it, and far below the 600 s the children would otherwise live.
HANG_S = 120


def alive(pid: int) -> bool:
    """Whether ``pid`` still runs (a zombie, killed and waiting to be reaped, does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


@pytest.fixture
def app_dir(tmp_path) -> Path:
    folder = tmp_path / "app"
    folder.mkdir()
    (folder / "spawnapp.py").write_text(APP)
    yield folder
    for line in (folder / "pids").read_text().split() if (folder / "pids").exists() else []:
        if alive(int(line)):  # the test failed: leave nothing running behind it
            os.kill(int(line), signal.SIGKILL)


def profile(app_dir: Path, function: str, out: Path, timeout: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "harness", "profile", "--model", f"entry:spawnapp:{function}"]
        + ["--app-path", str(app_dir), "--runs", "1", "--warmups", "0", "--timeout", timeout]
        + ["--no-import-attribution", "--quiet", "--output", str(out)],
        capture_output=True, text=True, cwd=out.parent, timeout=HANG_S,
    )  # fmt: skip


def spawned(app_dir: Path) -> list[int]:
    return [int(line) for line in (app_dir / "pids").read_text().split()]


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs /proc (Linux)")
@pytest.mark.parametrize("function", ["spawns_and_returns", "forks_and_returns"])
def test_a_probe_that_leaves_a_child_keeps_its_finished_sample(app_dir, tmp_path, function):
    out = tmp_path / "r.json"
    # --timeout 30: the sample itself takes well under a second, so it must not be the
    # timeout that ends it; a run that waited for the child would be cut at 30 s.
    proc = profile(app_dir, function, out, "30")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = read_report(out)
    assert report.status == "complete"
    (sample,) = report.samples
    assert sample.ok and sample.error is None and sample.exit_code == 0
    (child,) = spawned(app_dir)
    assert not alive(child), f"{function}: its child {child} outlived the sample"


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs /proc (Linux)")
def test_a_timeout_kills_a_child_in_its_own_session_and_ends_the_run(app_dir, tmp_path):
    out = tmp_path / "r.json"
    proc = profile(app_dir, "spawns_and_hangs", out, "5")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    report = read_report(out)
    assert report.status == "failed" and report.failure is not None
    assert report.failure.kind == FailureKind.TIMEOUT
    (sample,) = report.samples
    assert not sample.ok and sample.error == "timed out after 5 s (--timeout)"
    (child,) = spawned(app_dir)
    assert not alive(child), f"the sleep {child} outlived the timeout"
