"""The result format: one place that defines, writes and checks every report.

A *cell report* is what one profile of one (model, torch, mode, device) writes. Later
stages (merge, compare, HTML) only read these files, through :func:`read_report`, which
validates them against :data:`CELL_SCHEMA` so a corrupt or foreign file fails with one line
naming the file instead of a KeyError three modules later.

Versioning: ``schema_version`` is an integer. Adding an optional key keeps the version;
renaming, removing or changing the meaning of a key bumps it, and readers refuse versions
they do not know (:data:`SUPPORTED_VERSIONS`).

Cell report, version 1 (keys marked * are always present)::

    schema_version*  1
    kind*            "cell"
    status*          "complete" | "partial" (written while samples run, or interrupted)
                     | "failed" (no sample succeeded, or the cell could not start)
    failure          {"reason": str, "detail": str}   when status is "failed"
    harness*         {"version", "commit"}
    started*, finished   ISO-8601 UTC timestamps (finished is null while partial)
    cell*            {"id", "model", "source", "mode", "device", "torch"}
    settings*        {"runs", "warmups", "timeout_s", "encode_repeats", "sentence"}
    environment      {"python", "executable", "packages": {name: version},
                      "freeze_sha256", "bytecode": {"compiled", "fraction", "checked"}}
    machine          {"cpu", "cores", "memory_gb", "os", "kernel", "fingerprint"}
    cold_cache       {"verified", "method", "threshold", "note", "evicted_files"}  (cold only)
    samples*         list of sample records (below), warm-ups included and marked
    stats            {metric: {"n", "mean", "median", "stdev", "min", "max", "ci95": [lo, hi]}}
    import_attribution  {"total_self_s", "packages": [{"package", "self_s", "share"}]}
    targets          {metric: threshold}
    target_results   {metric: {"target", "value", "met"}}   (value = median)
    recommendations  [{"level": "ok"|"warn"|"info", "text"}]
    model_info       {"path", "weights_bytes"}

Matrix report, version 1 (``merge`` writes it as reports/matrix-<run id>.json)::

    schema_version*  1
    kind*            "matrix"
    run_id*          the run folder's name
    created*         ISO-8601 UTC
    harness*         {"version", "commit"}
    matrix           the expanded matrix settings the run used (free-form)
    environments     {torch version: {"build_s", "packages": {name: version}, "status", "error"}}
    cells*           {cell id: cell report (above), whole}

Sample record::

    index, warmup, ok, exit_code, error, stderr_tail,
    metrics {metric: value}                  (see METRICS: what the probe measured, plus
                                              process_wall_s and startup_s from the runner)
    cache_residency                          (cold: max resident fraction of the checked files)
    residency_files {path: fraction}         (cold: each checked file)
    cache_flagged                            (cold: residency above the threshold)
"""

from __future__ import annotations

from harness.errors import UserError

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1
SUPPORTED_VERSIONS = {1}


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    unit: str  # "s" or "MB"
    # Lower is better for every metric here; kept explicit for readers of the catalogue.
    lower_is_better: bool = True


# Every figure a sample can carry, in display order. The probe fills the first group,
# the runner adds process_wall_s and startup_s.
METRICS: dict[str, Metric] = {m.key: m for m in [
    Metric("total_s", "Total load time", "s"),
    Metric("import_s", "Import time", "s"),
    Metric("import_torch_s", "import torch", "s"),
    Metric("import_st_s", "import sentence_transformers", "s"),
    Metric("init_s", "Model init time", "s"),
    Metric("first_encode_s", "First encode", "s"),
    Metric("encode_s", "Steady-state encode", "s"),
    Metric("cuda_init_s", "CUDA init", "s"),
    Metric("to_device_s", "Model to device", "s"),
    Metric("startup_s", "Interpreter start-up", "s"),
    Metric("process_wall_s", "Process wall time", "s"),
    Metric("rss_start_mb", "RSS at start", "MB"),
    Metric("rss_end_mb", "RSS at end", "MB"),
    Metric("memory_mb", "Memory delta (RSS)", "MB"),
    Metric("peak_rss_mb", "Peak RSS", "MB"),
    Metric("uss_mb", "USS at end", "MB"),
    Metric("cuda_max_allocated_mb", "CUDA max allocated", "MB"),
]}

# The metrics that tables, comparisons and gates are about.
HEADLINE_METRICS = ["total_s", "import_s", "init_s", "first_encode_s", "memory_mb", "process_wall_s"]

# The older in-house script's targets; overridable per run and per matrix model.
DEFAULT_TARGETS = {
    "total_s": 5.0,
    "import_s": 1.0,
    "init_s": 3.0,
    "first_encode_s": 0.2,
    "memory_mb": 500.0,
}

# A cold sample whose checked files are more resident than this was not cold.
COLD_RESIDENCY_THRESHOLD = 0.05

_NUM = {"type": "number"}
_NUM_OR_NULL = {"type": ["number", "null"]}
_STR_OR_NULL = {"type": ["string", "null"]}

_STATS_ENTRY = {
    "type": "object",
    "required": ["n", "mean", "median", "stdev", "min", "max", "ci95"],
    "properties": {
        "n": {"type": "integer", "minimum": 0},
        "mean": _NUM, "median": _NUM, "stdev": _NUM_OR_NULL, "min": _NUM, "max": _NUM,
        "ci95": {"type": ["array", "null"], "items": _NUM, "minItems": 2, "maxItems": 2},
    },
}

_SAMPLE = {
    "type": "object",
    "required": ["index", "warmup", "ok", "metrics"],
    "properties": {
        "index": {"type": "integer"},
        "warmup": {"type": "boolean"},
        "ok": {"type": "boolean"},
        "exit_code": {"type": ["integer", "null"]},
        "error": _STR_OR_NULL,
        "stderr_tail": _STR_OR_NULL,
        "metrics": {"type": "object", "additionalProperties": _NUM_OR_NULL},
        "cache_residency": _NUM_OR_NULL,
        "residency_files": {"type": "object", "additionalProperties": _NUM_OR_NULL},
        "cache_flagged": {"type": "boolean"},
    },
}

CELL_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "embedding-load-harness cell report",
    "type": "object",
    "required": ["schema_version", "kind", "status", "harness", "started", "cell", "settings", "samples"],
    "properties": {
        "schema_version": {"type": "integer"},
        "kind": {"const": "cell"},
        "status": {"enum": ["complete", "partial", "failed"]},
        "failure": {
            "type": ["object", "null"],
            "required": ["reason"],
            "properties": {"reason": {"type": "string"}, "detail": _STR_OR_NULL},
        },
        "harness": {"type": "object", "required": ["version"]},
        "started": {"type": "string"},
        "finished": _STR_OR_NULL,
        "cell": {
            "type": "object",
            "required": ["id", "model", "source", "mode", "device"],
            "properties": {
                "id": {"type": "string"},
                "model": {"type": "string"},
                "source": {"type": "string"},
                "mode": {"enum": ["cold", "warm"]},
                "device": {"type": "string"},
                "torch": _STR_OR_NULL,
            },
        },
        "settings": {"type": "object", "required": ["runs", "warmups", "timeout_s"]},
        "environment": {"type": ["object", "null"]},
        "machine": {
            "type": ["object", "null"],
            "properties": {"fingerprint": {"type": "string"}},
        },
        "cold_cache": {"type": ["object", "null"]},
        "samples": {"type": "array", "items": _SAMPLE},
        "stats": {"type": "object", "additionalProperties": _STATS_ENTRY},
        "import_attribution": {"type": ["object", "null"]},
        "targets": {"type": "object", "additionalProperties": _NUM},
        "target_results": {"type": "object"},
        "recommendations": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["level", "text"],
                "properties": {"level": {"enum": ["ok", "warn", "info"]}, "text": {"type": "string"}},
            },
        },
    },
}


MATRIX_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "embedding-load-harness matrix report",
    "type": "object",
    "required": ["schema_version", "kind", "run_id", "created", "harness", "cells"],
    "properties": {
        "schema_version": {"type": "integer"},
        "kind": {"const": "matrix"},
        "run_id": {"type": "string"},
        "created": {"type": "string"},
        "harness": {"type": "object"},
        "matrix": {"type": ["object", "null"]},
        "environments": {"type": ["object", "null"]},
        "cells": {"type": "object", "additionalProperties": CELL_SCHEMA},
    },
}


def cell_id(model: str, torch: str | None, mode: str, device: str) -> str:
    """Stable id of a cell, used as its file name and to match cells across reports."""
    return f"{model}-torch{torch or 'none'}-{mode}-{device}"


class ReportError(UserError):
    """A report file that cannot be used; the message is one line naming the file."""


def write_json_atomic(path: str | os.PathLike, data: dict) -> Path:
    """Write JSON so that a reader (or a Ctrl-C) never sees half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, indent=2, sort_keys=False)
            fh.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_json(path: str | os.PathLike) -> dict:
    """Read a JSON object, turning every way it can be unreadable into a ReportError."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ReportError(f"{path}: no such file") from None
    except OSError as exc:
        raise ReportError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ReportError(f"{path}: not valid JSON (corrupt or truncated at line {exc.lineno})") from None
    if not isinstance(data, dict):
        raise ReportError(f"{path}: not a report (top level is {type(data).__name__}, not an object)")
    return data


def check_version(data: dict, path: str | os.PathLike) -> None:
    version = data.get("schema_version")
    if version not in SUPPORTED_VERSIONS:
        raise ReportError(
            f"{path}: schema_version {version!r} is not supported by this harness "
            f"(reads {sorted(SUPPORTED_VERSIONS)})"
        )


def validate(data: dict, schema: dict, path: str | os.PathLike) -> None:
    import jsonschema

    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(data), key=lambda e: list(e.path))
    if errors:
        first = errors[0]
        where = ".".join(str(p) for p in first.absolute_path) or "(top level)"
        more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
        raise ReportError(f"{path}: invalid report at {where}: {first.message}{more}")


def read_report(path: str | os.PathLike) -> dict:
    """Load and check a cell report."""
    data = load_json(path)
    check_version(data, path)
    validate(data, CELL_SCHEMA, path)
    return data


def read_matrix(path: str | os.PathLike) -> dict:
    """Load and check a merged matrix report."""
    data = load_json(path)
    check_version(data, path)
    validate(data, MATRIX_SCHEMA, path)
    return data


_SCHEMA_OF_KIND = {"cell": CELL_SCHEMA, "matrix": MATRIX_SCHEMA}


def read_any(path: str | os.PathLike) -> dict:
    """Load and check a report of either kind, reading the file once."""
    data = load_json(path)
    check_version(data, path)
    kind = data.get("kind")
    if kind not in _SCHEMA_OF_KIND:
        raise ReportError(f"{path}: kind {kind!r} is neither 'cell' nor 'matrix'; not a harness report")
    validate(data, _SCHEMA_OF_KIND[kind], path)
    return data


def cells_of(report: dict) -> dict[str, dict]:
    """Cell reports by cell id, from a checked report of either kind."""
    return dict(report["cells"]) if report["kind"] == "matrix" else {report["cell"]["id"]: report}


def read_cells(path: str | os.PathLike) -> dict[str, dict]:
    """Cell reports by cell id from either kind of report file (what compare and report take)."""
    return cells_of(read_any(path))


def successful_samples(report: dict) -> list[dict]:
    """The samples that count: not warm-ups, and the probe finished."""
    return [s for s in report.get("samples", []) if s.get("ok") and not s.get("warmup")]


def metric_values(report: dict, metric: str) -> list[float]:
    """Every counted sample's value of one metric, in sample order."""
    values = []
    for sample in successful_samples(report):
        value = sample.get("metrics", {}).get(metric)
        if value is not None:
            values.append(float(value))
    return values


def failed_cell_report(cell: dict, settings: dict, reason: str, detail: str | None = None) -> dict:
    """A valid cell report for a cell that never produced a sample: its environment would
    not build, or its profile could not start. ``cell`` holds the cell block's keys (id,
    model, source, mode, device, torch); ``settings`` at least runs, warmups and timeout_s.
    """
    from datetime import datetime, timezone

    from harness import metadata  # late: the format module itself needs no psutil

    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    report = {
        "schema_version": SCHEMA_VERSION,
        "kind": "cell",
        "status": "failed",
        "failure": {"reason": reason, "detail": detail},
        "harness": metadata.harness_info(),
        "started": now,
        "finished": now,
        "cell": {key: cell.get(key) for key in ("id", "model", "source", "mode", "device", "torch")},
        "settings": dict(settings),
        "environment": None,
        "machine": metadata.machine(),
        "cold_cache": None,
        "samples": [],
        "stats": {},
        "targets": {},
        "target_results": {},
        "recommendations": [],
    }
    validate(report, CELL_SCHEMA, f"failed report of cell {cell.get('id')!r}")
    return report
