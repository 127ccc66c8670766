"""Issue 14, end to end: any package version as an axis of the matrix, and an application's
own load path (``entry:MODULE:FUNCTION``) as a model source, measured.

The entry cell is profiled through ``harness profile`` (one cold sample of conftest's
example application). The nox sessions are the session's shared backends-and-packages run
(tests/e2e/shared_runs.py, backends_packages_run): transformers 5.17.0 and 5.18.0 (both on
local disk) beside a combination uv cannot resolve (transformers 4.57.6 needs an older
sentence-transformers than the 6.0.1 pinned beside it), profiling the example application
installed by ``install:`` and a broken one; torch 2.13.0 only, one warm sample per cell.
The matrix and the entry points that fail before any load are checked in
tests/unit/test_packages_entry.py.
"""

from __future__ import annotations

import pytest
from conftest import harness, profile_entry

from harness.result import EnvRecord, FailureKind, read_report


def test_an_entry_cell_measures_the_applications_load_path(entry_app_dir, tmp_path):
    out = tmp_path / "app.json"
    proc = profile_entry(entry_app_dir, "load", out, "--mode", "cold")
    assert proc.returncode == 0, proc.stderr
    report = read_report(out)
    assert report.status == "complete" and report.cell.source == "entry:myapp:load"
    assert report.cell.model == "myapp" and report.model_info.kind == "entry"
    # A cold sample that another process kept warm is not counted; its figures are still there.
    metrics = next(s for s in report.samples if s.ok).metrics
    # (The steady-state encodes run in warm-ups only, outside a counted sample's clock.)
    assert {"import_app_s", "import_s", "init_s", "first_encode_s", "total_s"} <= set(metrics)
    # torch is the application's to import: the probe did not import it up front.
    assert "import_torch_s" not in metrics
    assert report.cold_cache is not None


@pytest.mark.alongside  # warm cells in environments built from uv's own cache, no statistic
def test_nox_profiles_the_app_per_transformers_version_and_fails_only_what_will_not_resolve(
    backends_packages_run, tmp_path
):
    proc, log = backends_packages_run["proc"], backends_packages_run["log"]
    assert proc.returncode != 0, log  # the unresolvable combination fails its session...
    run_dir = backends_packages_run["run_dir"]
    pins = "sentence-transformers6.0.1-transformers{}"
    for version in ("5.17.0", "5.18.0"):  # ...and the others ran
        report = read_report(run_dir / f"lazy-app-torch2.13.0-{pins.format(version)}-warm-cpu.json")
        assert report.status == "complete", (report.failure, log[-3000:])
        assert report.cell.packages == {"sentence-transformers": "6.0.1", "transformers": version}
        assert report.environment.packages["transformers"] == version
        record = EnvRecord.read(
            run_dir / f"env-torch-2.13.0-sentence-transformers-6.0.1-transformers-{version}.json"
        )
        assert record.status == "ok" and record.packages["transformers"] == version
        assert record.pins == {"sentence-transformers": "6.0.1", "transformers": version}
        assert "lazyapp" in record.packages  # install: put the application in
        broken = read_report(run_dir / f"broken-app-torch2.13.0-{pins.format(version)}-warm-cpu.json")
        assert broken.status == "failed" and broken.failure.kind is FailureKind.LOAD
        assert "load() returned an object of type int, which has no encode()" in broken.failure.detail
    # The tables give each environment its own column, named by its pins.
    merged = harness("merge", str(run_dir), "--no-history", "--output", str(tmp_path / "matrix.json"))
    header = next(line for line in merged.stdout.splitlines() if line.startswith("model "))
    for version in ("5.17.0", "5.18.0", "4.57.6"):
        assert f"2.13.0 sentence-transformers 6.0.1 transformers {version} warm" in header, header
    failed = read_report(run_dir / f"lazy-app-torch2.13.0-{pins.format('4.57.6')}-warm-cpu.json")
    assert failed.status == "failed" and failed.failure.kind is FailureKind.INSTALL
    reason = failed.failure.reason
    assert reason.startswith(
        "the environment for torch==2.13.0 sentence-transformers==6.0.1 transformers==4.57.6"
    )
    assert "could not be built: " in reason and "\n" not in reason, reason
