"""Schema version 3: a stored version-2 report reads through the migration; the contention
rule on synthetic figures (the rule is pure arithmetic, no measurement is mocked)."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from harness.measure.contention import CONTENDED_WAIT_SHARE, contended
from harness.result import CellReport, MatrixReport, read_report

DATA = Path(__file__).resolve().parent.parent / "data"
# Written by main's code at schema version 2 (from warm-8runs.json, itself version 1).
V2_REPORT = DATA / "warm-8runs-schema2.json"


def test_the_stored_report_is_version_2():
    assert json.loads(V2_REPORT.read_text())["schema_version"] == 2


def test_a_version_2_report_reads_as_version_3(tmp_path):
    stored = json.loads(V2_REPORT.read_text())
    report = read_report(V2_REPORT)
    assert report.schema_version == 3 and report.status == "complete"
    # Figures as they were measured: the upgrade renames nothing and invents no sample.
    assert len(report.counted) == 8
    walls = [s["metrics"]["process_wall_s"] for s in stored["samples"] if not s["warmup"]]
    assert report.values("process_wall_s") == walls
    # Version 2 measured the steady-state encode in every counted sample: its median.
    assert report.steady_encode_s == statistics.median(report.values("encode_s"))
    written = report.write(tmp_path / "v3.json")
    assert json.loads(written.read_text())["schema_version"] == 3
    assert read_report(written) == report


def test_a_version_2_matrix_upgrades_its_cells(tmp_path):
    cell = json.loads(V2_REPORT.read_text())
    matrix = {
        "kind": "matrix",
        "schema_version": 2,
        "run_id": "r1",
        "created": cell["started"],
        "harness": cell["harness"],
        "cells": {cell["cell"]["id"]: cell},
    }
    path = tmp_path / "matrix.json"
    path.write_text(json.dumps(matrix))
    report = MatrixReport.read(path)
    assert report.schema_version == 3
    (only,) = report.cells.values()
    assert isinstance(only, CellReport) and only.schema_version == 3
    assert only.steady_encode_s is not None


def test_the_contention_rule():
    wall = 10.0
    # Waiting for a CPU longer than the bound's share of the wall time is contention ...
    assert contended({"process_wall_s": wall, "runqueue_wait_s": wall * CONTENDED_WAIT_SHARE * 1.01}, 0.0)[0]
    # ... waiting less is not, and neither is waiting for the disk (not in run-queue wait).
    assert contended(
        {"process_wall_s": wall, "runqueue_wait_s": wall * CONTENDED_WAIT_SHARE * 0.99}, 0.0
    ) == (
        False,
        None,
    )
    # A hypervisor that steals counts too.
    assert contended({"process_wall_s": wall, "runqueue_wait_s": 0.0}, steal_s=wall * 2, cores=2)[0]
    # Nothing the kernel said: no verdict.
    assert contended({"process_wall_s": wall}, None) == (None, None)
