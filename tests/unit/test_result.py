"""The result format: typed documents, their versions, schemas, and the files they live in."""

from __future__ import annotations

import json
import os
import stat
import threading

import msgspec
import pytest
from conftest import REPO

from harness.result import (
    CellInfo,
    CellReport,
    FailureKind,
    MatrixReport,
    ReportError,
    Settings,
    TargetError,
    WriteError,
    read_any,
    read_report,
    safe_name,
    write_atomic,
)
from harness.result.schema import rendered

V1_REPORT = REPO / "tests" / "data" / "warm-8runs.json"


def test_committed_schemas_are_the_ones_the_types_generate():
    for name, text in rendered().items():
        committed = REPO / "docs" / "schema" / name
        assert committed.is_file(), f"run python -m harness.result.schema ({name} missing)"
        assert committed.read_text() == text, f"{name} is stale: run python -m harness.result.schema"


def test_a_version_1_report_reads_as_version_2(tmp_path):
    report = read_report(V1_REPORT)
    assert report.schema_version == 3 and report.status == "complete"
    assert len(report.counted) == 8 and report.values("total_s") == [
        s.metrics["total_s"] for s in report.counted
    ]
    written = report.write(tmp_path / "v2.json")
    assert json.loads(written.read_text())["schema_version"] == 3
    assert read_report(written) == report


@pytest.mark.parametrize(
    "reason, detail, kind",
    [
        ("every sample failed", "timed out after 1 s (--timeout)", FailureKind.TIMEOUT),
        ("torch==9.9 could not be installed: no matching distribution", None, FailureKind.INSTALL),
        ("could not start: model 'x' is not a directory", None, FailureKind.LOAD),
        ("crashed", "the profile process exited -9", FailureKind.CRASH),
        ("no report came back from the runner of this cell", None, FailureKind.NOT_RUN),
    ],
)
def test_version_1_failures_get_their_kind_once_on_reading(tmp_path, reason, detail, kind):
    data = json.loads(V1_REPORT.read_text())
    data.update(status="failed", failure={"reason": reason, "detail": detail})
    path = tmp_path / "failed.json"
    path.write_text(json.dumps(data))
    assert read_report(path).failure.kind is kind


def _write_variant(tmp_path, change) -> os.PathLike:
    data = json.loads(V1_REPORT.read_text())
    change(data)
    path = tmp_path / "variant.json"
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize(
    "change, words",
    [
        (lambda d: d["samples"][1]["metrics"].update(total_s=float("nan")), "variant.json: "),
        (lambda d: d["samples"][1]["metrics"].update(total_s=float("inf")), "variant.json: "),
        (lambda d: d["samples"][1]["metrics"].update(total_s=-1.0), "a time cannot be negative"),
        (lambda d: d["cell"].update(id="../../escaped"), "is not usable in a file name"),
        (lambda d: d["cell"].update(id="x\x00y"), "is not usable in a file name"),
        (lambda d: d["machine"].update(fingerprint="../../../tmp/x"), "is not usable in a file name"),
        (lambda d: d.update(kind="comparison"), "not a harness cell file"),
        (lambda d: d.update(schema_version=99), "schema_version 99 is not supported"),
    ],
)
def test_reports_that_pass_json_but_not_the_format_are_refused(tmp_path, change, words):
    with pytest.raises(ReportError, match=words):
        read_report(_write_variant(tmp_path, change))


def test_unreadable_files_are_one_line_errors_not_hangs(tmp_path):
    fifo = tmp_path / "pipe.json"
    os.mkfifo(fifo)
    opened = threading.Event()

    def read_fifo():
        with pytest.raises(ReportError, match="not a regular file"):
            read_any(fifo)
        opened.set()

    reader = threading.Thread(target=read_fifo, daemon=True)
    reader.start()
    reader.join(timeout=30)
    assert opened.is_set(), "reading a FIFO blocked"
    zero = tmp_path / "zero.json"
    zero.symlink_to("/dev/zero")
    with pytest.raises(ReportError, match="not a regular file"):
        read_any(zero)
    latin = tmp_path / "latin.json"
    latin.write_bytes(b'{"kind": "cell", "name": "caf\xe9"}')
    with pytest.raises(ReportError, match="not UTF-8"):
        read_any(latin)
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ReportError, match="deep.json: "):
        read_any(deep)
    with pytest.raises(ReportError, match="is a folder"):
        read_any(tmp_path)


def test_atomic_writes_replace_only_regular_files_and_follow_the_umask(tmp_path):
    with pytest.raises(TargetError, match="not a regular file"):
        write_atomic("/dev/null", b"{}")
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    with pytest.raises(TargetError, match="is a folder"):
        write_atomic(tmp_path, b"{}")
    with pytest.raises(WriteError) as failure:
        write_atomic("/proc/harness-cannot/x.json", b"{}")
    assert failure.value.exit_code == 3
    old = os.umask(0o027)
    try:
        path = write_atomic(tmp_path / "r.json", b"{}")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]  # no temporary file left behind


def test_names_from_data_are_single_safe_path_components():
    for good in ("all-MiniLM-L6-v2-torch2.13.0-cold-cpu", "m-torch2.13.0+cpu-warm-cuda:0", "x@baseline"):
        assert safe_name(good, "cell id") == good
    for bad in ("../x", "a/b", "x\n", " x", "x y", "", "..", "a..b", "x\x00", "[/x]"):
        with pytest.raises(Exception, match="is not usable in a file name"):
            safe_name(bad, "cell id")


def test_settings_are_bounded_once_for_every_caller():
    assert Settings.checked(runs=3, warmups=0, timeout_s=60).runs == 3
    for values, words in (
        ({"runs": 0}, "runs: 0 must be 1 or more"),
        ({"runs": 10**9}, "must be 10000 or less"),
        ({"timeout_s": float("nan")}, "must be a finite number"),
        ({"timeout_s": float("inf")}, "must be a finite number"),
        ({"timeout_s": 0}, "must be above 0"),
        ({"warmups": 1.5}, "is not a whole number"),
    ):
        with pytest.raises(ValueError, match=words):
            Settings.checked(**values)


def test_a_failed_cell_report_and_a_matrix_report_round_trip(tmp_path):
    cell = CellInfo(
        id="m-torch2.13.0-warm-cpu", model="m", source="package:x", mode="warm", device="cpu", torch="2.13.0"
    )
    failed = CellReport.failed(
        cell, Settings.checked(), FailureKind.INSTALL, "torch==2.13.0 could not be installed"
    )
    matrix = MatrixReport(
        run_id="r1",
        created="2026-11-25T00:00:00+00:00",
        harness=failed.harness,
        cells={cell.id: failed, "v1": read_report(V1_REPORT)},
    )
    path = matrix.write(tmp_path / "matrix.json")
    again = read_any(path)
    assert isinstance(again, MatrixReport) and again == matrix
    assert again.cells[cell.id].failure.kind is FailureKind.INSTALL
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert(
            {"id": "../x", "model": "m", "source": "s", "mode": "warm", "device": "cpu"}, CellInfo
        )
