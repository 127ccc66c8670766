"""`make docs-figures` (bench/docs_figures.py), smoke-tested on stored reports: the figures
file and its page from a report, the screenshots from its HTML page in Chromium, and the
committed docs/figures.md made from the committed docs/figures.json. The full generation
(a run of the default matrix) is not run here: it takes minutes."""

from __future__ import annotations

import importlib.util
import json
import shutil
import struct
from pathlib import Path

import pytest
from synthetic_pair import STORED, pair_report

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "bench" / "docs_figures.py"


def _script():
    spec = importlib.util.spec_from_file_location("docs_figures", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def test_figures_name_machine_date_command_and_verdicts():
    script = _script()
    figures = script.figures_of(pair_report(modes=("cold", "warm")), "make profile-matrix RUNS=2")
    page = script.figures_page(figures)
    assert "**Machine:** Intel" in page and "**Date:** 20" in page and "make profile-matrix RUNS=2" in page
    assert "| 2.14.1 warm | 2.14.1 |" in page and "| 2.13.0 cold | 2.13.0+cpu |" in page
    assert "torch 2.14.1 vs 2.13.0, warm" in page and "Builds differ" in page
    assert json.loads(json.dumps(figures)) == figures  # plain data: what figures.json holds


def test_the_script_writes_figures_from_a_stored_report(tmp_path):
    out = tmp_path / "docs"
    assert (
        _script().main(
            [
                "--from-report",
                str(STORED),
                "--out",
                str(out),
                "--scratch",
                str(tmp_path / "s"),
                "--no-screenshot",
            ]
        )
        == 0
    )
    figures = json.loads((out / "figures.json").read_text())
    assert [c["id"] for c in figures["cells"]] == ["all-MiniLM-L6-v2-torch2.13.0-warm-cpu"]
    assert (out / "figures.md").read_text() == _script().figures_page(figures)
    assert not (out / "report-screenshot.png").exists()


def test_the_script_takes_both_screenshots(tmp_path):
    if shutil.which("chromium") is None:
        pytest.skip("chromium is not on PATH: run `make browser`")
    merged = tmp_path / "matrix.json"
    pair_report(modes=("cold", "warm")).write(merged)
    out = tmp_path / "docs"
    arguments = ["--from-report", str(merged), "--out", str(out), "--scratch", str(tmp_path / "s")]
    assert _script().main(arguments) == 0
    assert _png_size(out / "report-screenshot.png") == (1280, 900)
    width, height = _png_size(out / "report-matrix.png")
    assert width == 1280 and height > 900  # the whole page, longer than one screen


def test_committed_figures_page_is_made_from_the_committed_figures():
    page = (REPO / "docs" / "figures.md").read_text()
    data = REPO / "docs" / "figures.json"
    if data.is_file():
        assert page == _script().figures_page(json.loads(data.read_text()))
    else:
        assert "make docs-figures" in page
