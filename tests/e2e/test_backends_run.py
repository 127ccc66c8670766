"""Issue 13, end to end: backends (torch, onnx, openvino) and dtypes as matrix axes, each
cell with its one-off export time and its embeddings' agreement with the torch float32
model.

The run is the session's shared backends-and-packages run (tests/e2e/shared_runs.py,
backends_packages_run), offline, on the real model: an environment pinned to
sentence-transformers 5.7.0 and transformers 4.57.6 (what optimum-onnx allows) that
installs the onnx and openvino extras and runs a torch float32, a torch float16, an onnx
float32, an onnx qint8 and an openvino cell, one warm sample each; beside it
sentence-transformers 5.7.0 with transformers 5.17.0, which resolves alone but not with
the onnx extra (optimum-onnx caps transformers below 4.58): its onnx cell fails with uv's
reason while the others run. The matrix and the command line are checked in
tests/unit/test_backends.py.
"""

from __future__ import annotations

import pytest
from conftest import harness

from harness.result import FailureKind, read_report

MODEL = "all-MiniLM-L6-v2"
PINS = "sentence-transformers5.7.0-transformers4.57.6"

# Warm cells in environments built from uv's own cache, and no statistic: beside the rest.
pytestmark = pytest.mark.alongside


@pytest.mark.parametrize(
    "variant, export",
    [
        ("", False),
        ("-torch-float16", False),
        ("-onnx-float32", True),
        ("-onnx-qint8", True),
        ("-openvino-float32", True),
    ],
)
def test_every_backend_runs_with_its_export_time_and_its_cosine(backends_packages_run, variant, export):
    run_dir, log = backends_packages_run["run_dir"], backends_packages_run["log"]
    report = read_report(run_dir / f"{MODEL}-torch2.13.0-{PINS}-warm-cpu{variant}.json")
    assert report.status == "complete", (report.failure, log[-3000:])
    assert (report.export_s is not None) == export
    assert report.export_s is None or report.export_s > 0
    cosine = report.embedding_cosine_min
    # Against the torch float32 model of the same environment: float dtypes agree closely,
    # qint8 less; the threshold the report marks is the floor here.
    assert cosine is not None and cosine >= (0.95 if "qint8" in variant else 0.99), cosine
    # Measured in the warm-up, after its end mark: no counted sample's clock holds it.
    (warm_up,) = [s for s in report.samples if s.warmup]
    assert warm_up.metrics["embedding_cosine_min"] == cosine
    # The export went under the run, never into the model's own folder.
    if export:
        assert any((run_dir / "exports").rglob("*.onnx" if "onnx" in variant else "*.xml"))


def test_an_environment_whose_extra_will_not_resolve_fails_only_its_cells(backends_packages_run):
    run_dir, log = backends_packages_run["run_dir"], backends_packages_run["log"]
    pins = "sentence-transformers5.7.0-transformers5.17.0"
    # The torch cell, in the stack's own environment, runs; the onnx extra's fails alone.
    torch_cell = read_report(run_dir / f"{MODEL}-torch2.13.0-{pins}-warm-cpu.json")
    assert torch_cell.status == "complete", (torch_cell.failure, log[-3000:])
    report = read_report(run_dir / f"{MODEL}-torch2.13.0-{pins}-warm-cpu-onnx-qint8.json")
    assert report.status == "failed" and report.failure.kind is FailureKind.INSTALL, log[-3000:]
    reason = report.failure.reason
    assert "sentence-transformers[onnx]" in reason and "could not be built: " in reason
    assert "optimum-onnx" in reason and "\n" not in reason, reason  # uv's own reason: the extra


def test_tables_and_the_html_report_show_the_agreement_next_to_the_speed(backends_packages_run, tmp_path):
    run_dir = backends_packages_run["run_dir"]
    merged = tmp_path / "merged.json"
    proc = harness("merge", str(run_dir), "--output", str(merged), "--history", str(tmp_path / "history"))
    assert proc.returncode == 1, proc.stderr  # the unresolvable environment's cells have no figures
    out = proc.stdout
    assert "Embedding cosine (min)" in out and "onnx qint8" in out  # a column per backend and dtype
    assert "Backends and dtypes against torch float32" in out
    line = next(ln for ln in out.splitlines() if "onnx qint8 (warm): total " in ln)
    assert "with torch float32" in line and "memory" in line and "export " in line and "cosine " in line
    page = tmp_path / "page.html"
    proc = harness("report", str(merged), "--html", str(page), "--history", str(tmp_path / "history"))
    assert proc.returncode in (0, 1), proc.stderr
    html = page.read_text()
    assert "Backends and dtypes against torch float32" in html and "onnx qint8 (warm): total " in html
