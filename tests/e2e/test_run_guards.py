"""Guards that stop a nox run before it builds anything (issue 27, items 3 and 8).

Real nox invocations of the checkout's noxfile, each stopped by its guard within seconds:
- a second invocation building in an envdir that another holds (the lock file is the
  documented ``<envdir>/harness-run.lock``: this test process holds it, as a first run
  would), or writing a run folder that another holds (``<run dir>/run.lock``), exits 2 with
  one line and creates no environment and no run file;
- a stored baseline whose lock holds an option line (``--extra-index-url=...``) exits 2 with
  one line naming it, before anything is resolved: the index it names (a local HTTP server
  here) is never asked.
No timing is asserted; nothing here depends on chance.
"""

from __future__ import annotations

import fcntl
import http.server
import os
import threading
import uuid
from contextlib import contextmanager
from pathlib import Path

import yaml
from conftest import REPO, nox

from harness.envs.runlock import ENVDIR_LOCK, RUN_DIR_LOCK
from harness.result import CellInfo, CellReport, EnvRecord, FailureKind, MatrixReport, Settings

SMALL = REPO / "tests" / "matrices" / "small.yaml"


def _warm_matrix(tmp: Path) -> Path:
    data = yaml.safe_load(SMALL.read_text())
    data.update(modes=["warm"], runs=1, warmups=1)
    path = tmp / "matrix.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@contextmanager
def _held(path: Path):
    """Hold ``path``'s flock as another run would (released on leaving)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.write(fd, f"pid {os.getpid()} since the test began".encode())
        yield
    finally:
        os.close(fd)


def _our_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("noxfile.py:")]


def test_a_second_run_in_a_held_envdir_exits_2_before_building(tmp_path):
    envdir, reports = tmp_path / "envs", tmp_path / "reports"
    run_id = f"second-{uuid.uuid4().hex[:6]}"
    with _held(envdir / ENVDIR_LOCK):
        proc = nox(
            "-s",
            "profile_matrix",
            matrix=_warm_matrix(tmp_path),
            run_id=run_id,
            envdir=envdir,
            reports=reports,
        )
    assert proc.returncode == 2, proc.stderr[-2000:]
    (line,) = _our_lines(proc.stderr)
    assert "another run holds" in line and ENVDIR_LOCK in line and "--envdir" in line
    assert "since the test began" in line  # the holder, as it wrote itself into the file
    # Nothing created: no environment beside the lock, no run folder.
    assert sorted(p.name for p in envdir.iterdir()) == [ENVDIR_LOCK]
    assert not (reports / "runs" / run_id).exists()
    # Listing builds nothing, so it takes no lock.
    with _held(envdir / ENVDIR_LOCK):
        listed = nox("-l", matrix=_warm_matrix(tmp_path), envdir=envdir, reports=reports)
    assert listed.returncode == 0, listed.stderr[-2000:]


def test_a_second_run_writing_a_held_run_folder_exits_2_and_writes_nothing(tmp_path):
    reports = tmp_path / "reports"
    run_id = f"shared-{uuid.uuid4().hex[:6]}"
    run_dir = reports / "runs" / run_id
    with _held(run_dir / RUN_DIR_LOCK):
        # Another envdir (so the envdir lock is free), the same run folder.
        proc = nox(
            "-s",
            "warm_start",
            matrix=_warm_matrix(tmp_path),
            run_id=run_id,
            envdir=tmp_path / "other-envs",
            reports=reports,
        )
    assert proc.returncode == 2, proc.stderr[-2000:]
    (line,) = _our_lines(proc.stderr)
    assert "another run holds" in line and str(run_dir / RUN_DIR_LOCK) in line
    assert sorted(p.name for p in run_dir.iterdir()) == [RUN_DIR_LOCK]  # no run.json, no env record


class _Index(http.server.BaseHTTPRequestHandler):
    asked: list[str] = []

    def do_GET(self):
        _Index.asked.append(self.path)
        self.send_error(404)

    def log_message(self, *args):
        pass


def test_a_baseline_lock_with_an_option_line_exits_2_and_resolves_nothing(tmp_path):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Index)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        hostile = f"--extra-index-url=http://127.0.0.1:{server.server_address[1]}/simple/"
        cell = CellInfo(
            id="m-torch2.13.0-warm-cpu",
            model="m",
            source="package:x",
            mode="warm",
            device="cpu",
            torch="2.13.0",
        )
        failed = CellReport.failed(cell, Settings.checked(), FailureKind.INSTALL, "not measured")
        record = EnvRecord(torch="2.13.0", status="ok", python="3.11.0", lock=[hostile, "torch==2.13.0"])
        baseline = MatrixReport(
            run_id="stored",
            created="2026-11-25T00:00:00+00:00",
            harness=failed.harness,
            environments={"2.13.0": record},
        ).write(tmp_path / "baseline.json")
        envdir, reports = tmp_path / "envs", tmp_path / "reports"
        run_id = f"ref-{uuid.uuid4().hex[:6]}"
        proc = nox(
            "-s",
            "warm_start",
            "--",
            "--reference",
            str(baseline),
            matrix=_warm_matrix(tmp_path),
            run_id=run_id,
            envdir=envdir,
            reports=reports,
        )
    finally:
        server.shutdown()
    assert proc.returncode == 2, proc.stderr[-2000:]
    (line,) = _our_lines(proc.stderr)
    assert f"lock line 1 '{hostile}'" in line and "name==version" in line
    assert _Index.asked == []  # the index the line names was never queried
    assert not (reports / "runs" / run_id).exists()  # nothing planned, nothing built
