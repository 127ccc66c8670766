"""A run folder -> one merged matrix report (``reports/matrix-<run id>.json``).

A run folder (``reports/runs/<run id>/``) holds what the nox sessions wrote as they went:
one ``<cell id>.json`` per cell (complete, partial or failed), ``env-torch-<version>.json``
per environment built, and ``run.json`` with the matrix and the cells planned. The merged
report (format: harness/result.py, MATRIX_SCHEMA) takes every cell report whole, so
nothing a cell measured is lost, and lists the planned cells that never wrote a report.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path

from harness.errors import UserError
from harness.result import MATRIX_SCHEMA, SCHEMA_VERSION, ReportError, read_report, validate
from harness.measure.manager import ENV_PREFIX, RUN_FILE, environments_in


class MergeError(UserError):
    """A run folder that cannot be merged; the message is one line naming it."""


def cell_files(run_dir: Path) -> list[Path]:
    return sorted(p for p in Path(run_dir).glob("*.json")
                  if not p.name.startswith(".") and p.name != RUN_FILE and not p.name.startswith(ENV_PREFIX))


def merge_run(run_dir: str | os.PathLike, *, skip_bad: bool = False) -> tuple[dict, list[str]]:
    """The merged report of a run folder, and warnings (unreadable files skipped).

    An unreadable cell file is an error naming it, unless ``skip_bad``; then it is left out
    and named in the warnings.
    """
    from harness.measure import metadata

    run_dir = Path(run_dir)
    if not run_dir.exists():
        raise MergeError(f"{run_dir}: no such run folder (runs are under reports/runs/)")
    if not run_dir.is_dir():
        raise MergeError(f"{run_dir}: not a folder; give a run folder such as reports/runs/<run id>")
    plan = _read_plan(run_dir)
    files = cell_files(run_dir)
    if not files and not plan.get("planned"):
        raise MergeError(f"{run_dir}: empty run folder, no cell reports to merge")

    warnings: list[str] = []
    found: dict[str, dict] = {}
    for path in files:
        try:
            report = read_report(path)
        except ReportError as exc:
            if not skip_bad:
                raise MergeError(f"{exc}; move it away, or merge the other cells with --skip-bad") from None
            warnings.append(f"skipped {exc}")
            continue
        found[report["cell"]["id"]] = report

    # Planned order first (the matrix's), then anything else in the folder.
    planned = [entry for entry in plan.get("planned", []) if isinstance(entry, dict) and entry.get("id")]
    order = [entry["id"] for entry in planned if entry["id"] in found]
    order += [cid for cid in found if cid not in order]
    environments = {}
    for torch, env in environments_in(run_dir).items():
        environments[torch] = {**env, "build_s": env.get("build_s"), "packages": env.get("packages") or {},
                               "status": env.get("status"), "error": env.get("error")}
    report = {
        "schema_version": SCHEMA_VERSION,
        "kind": "matrix",
        "run_id": run_dir.name,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "harness": metadata.harness_info(),
        "matrix": plan.get("matrix"),
        "environments": environments,
        "cells": {cid: found[cid] for cid in order},
        # Planned cells with no report at all (the run stopped before them).
        "missing": [entry for entry in planned if entry["id"] not in found],
        "run_dir": str(run_dir),
    }
    validate(report, MATRIX_SCHEMA, f"merged report of {run_dir}")
    return report, warnings


def _read_plan(run_dir: Path) -> dict:
    path = run_dir / RUN_FILE
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def default_output(run_dir: str | os.PathLike) -> Path:
    return Path("reports") / f"matrix-{Path(run_dir).name}.json"
