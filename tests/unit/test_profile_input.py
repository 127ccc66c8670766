"""`harness profile` refusing what it cannot do, before any sample: one line, exit 2 (the
make profile variables too); the report file's round trip and the corrupt copies every
reader refuses; what the probe imports before its clock. Nothing here measures:
tests/e2e/test_profile.py measures one cell for real."""

from __future__ import annotations

import ast
import json
import os
import stat
import subprocess
import sys

import pytest
from conftest import REPO, WARM_8RUNS, harness

from harness.result import ReportError, read_cells, read_report


@pytest.fixture
def stored_report_path(tmp_path):
    """The stored real warm profile, as the current format writes it."""
    return read_report(WARM_8RUNS).write(tmp_path / "warm.json")


def test_round_trip_and_corrupt_files(tmp_path, stored_report_path):
    report = read_report(stored_report_path)
    copy = report.write(tmp_path / "copy.json")
    assert read_report(copy) == report
    assert list(read_cells(copy)) == [report.id]
    data = json.loads(stored_report_path.read_text())

    truncated = tmp_path / "truncated.json"
    truncated.write_text(stored_report_path.read_text()[:500])
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
