"""The result format: typed, versioned documents (cell and matrix reports, environment
records, run plans), their files, names and settings. Imports: the standard library and msgspec.

Every stage writes and reads results only through these types; the JSON Schemas in
docs/schema/ are generated from them (``python -m harness.result.schema``).
"""

from __future__ import annotations

import os

from harness.result.catalogue import (
    BACKEND_DTYPES,
    BACKENDS,
    CHANGE_WORDS,
    COLD_RESIDENCY_THRESHOLD,
    COSINE_THRESHOLDS,
    CPU_METRICS,
    DEFAULT_BACKEND,
    DEFAULT_DTYPE,
    DEFAULT_TARGETS,
    DTYPES,
    HEADLINE_METRICS,
    METRICS,
    MODES,
    TARGET_FLAGS,
    Metric,
    backend_problem,
    cosine_threshold,
    verdict_word,
)
from harness.result.cell import (
    Bytecode,
    CellInfo,
    CellReport,
    ColdCache,
    Environment,
    Failure,
    FailureKind,
    HarnessInfo,
    ImportAttribution,
    Machine,
    ModelInfo,
    PackageShare,
    ReadsCellAxes,
    Recommendation,
    Sample,
    Stats,
    TargetResult,
    now_iso,
)
from harness.result.document import decode_header
from harness.result.files import (
    PathLoopError,
    ReportError,
    TargetError,
    WriteError,
    append_bytes,
    check_target,
    read_bytes,
    real_path,
    write_atomic,
)
from harness.result.matrix import MatrixReport
from harness.result.names import (
    REFERENCE_SUFFIX,
    UnsafeNameError,
    cell_id,
    env_id,
    extra_env_id,
    is_safe_name,
    reference_id,
    safe_name,
)
from harness.result.run import (
    ENV_PREFIX,
    EXPORTS_DIR,
    RUN_FILE,
    EnvRecord,
    PackageChange,
    PlannedCell,
    RunPlan,
    lock_changes,
    version_changes,
)
from harness.result.settings import Settings
from harness.result.sources import DEFAULT_MODEL, ModelSource, SourceError

Report = CellReport | MatrixReport


def read_report(path: str | os.PathLike) -> CellReport:
    """A checked cell report."""
    return CellReport.read(path)


def read_matrix(path: str | os.PathLike) -> MatrixReport:
    """A checked matrix report."""
    return MatrixReport.read(path)


def read_any(path: str | os.PathLike) -> Report:
    """A checked report of either kind, reading the file once."""
    data = read_bytes(path)
    header = decode_header(path, data)
    if header.kind == MatrixReport.KIND:
        return MatrixReport.decode(path, data, header)
    if header.kind == CellReport.KIND:
        return CellReport.decode(path, data, header)
    raise ReportError(f"{path}: kind {header.kind!r} is neither 'cell' nor 'matrix'; not a harness report")


def cells_of(report: Report) -> dict[str, CellReport]:
    """Cell reports by cell id, from a report of either kind."""
    return dict(report.cells) if isinstance(report, MatrixReport) else {report.id: report}


def read_cells(path: str | os.PathLike) -> dict[str, CellReport]:
    """Cell reports by cell id from either kind of report file (what compare and report take)."""
    return cells_of(read_any(path))


__all__ = [
    "BACKENDS",
    "BACKEND_DTYPES",
    "COLD_RESIDENCY_THRESHOLD",
    "COSINE_THRESHOLDS",
    "DEFAULT_BACKEND",
    "DEFAULT_DTYPE",
    "DTYPES",
    "DEFAULT_MODEL",
    "DEFAULT_TARGETS",
    "ENV_PREFIX",
    "EXPORTS_DIR",
    "CPU_METRICS",
    "HEADLINE_METRICS",
    "METRICS",
    "MODES",
    "REFERENCE_SUFFIX",
    "RUN_FILE",
    "TARGET_FLAGS",
    "CHANGE_WORDS",
    "Bytecode",
    "CellInfo",
    "ReadsCellAxes",
    "CellReport",
    "ColdCache",
    "EnvRecord",
    "Environment",
    "Failure",
    "FailureKind",
    "HarnessInfo",
    "ImportAttribution",
    "Machine",
    "MatrixReport",
    "Metric",
    "ModelInfo",
    "ModelSource",
    "PackageChange",
    "PackageShare",
    "PlannedCell",
    "Recommendation",
    "Report",
    "PathLoopError",
    "ReportError",
    "RunPlan",
    "Sample",
    "Settings",
    "SourceError",
    "Stats",
    "TargetError",
    "TargetResult",
    "UnsafeNameError",
    "WriteError",
    "append_bytes",
    "backend_problem",
    "cosine_threshold",
    "verdict_word",
    "cell_id",
    "cells_of",
    "env_id",
    "extra_env_id",
    "check_target",
    "is_safe_name",
    "lock_changes",
    "now_iso",
    "read_any",
    "reference_id",
    "read_bytes",
    "real_path",
    "read_cells",
    "read_matrix",
    "read_report",
    "safe_name",
    "version_changes",
    "write_atomic",
]
