"""A run folder -> one merged matrix report (``reports/matrix-<run id>.json``).

A run folder (``reports/runs/<run id>/``) holds what the nox sessions wrote as they went:
one ``<cell id>.json`` per cell (complete, partial or failed, a :class:`CellReport`), one
``env-<environment>.json`` per environment built (:class:`EnvRecord`), and ``run.json``
(:class:`RunPlan`) with the matrix and the cells planned. The merged report
(:class:`MatrixReport`) takes every cell report whole, so nothing a cell measured is lost,
and lists the planned cells that never wrote a report.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

from harness.errors import UserError
from harness.result import (
    ENV_PREFIX,
    RUN_FILE,
    CellReport,
    EnvRecord,
    MatrixReport,
    ReportError,
    now_iso,
)


class MergeError(UserError):
    """A run folder that cannot be merged; the message is one line naming it."""


def cell_files(run_dir: Path) -> list[Path]:
    return sorted(
        p
        for p in Path(run_dir).glob("*.json")
        if not p.name.startswith(".") and p.name != RUN_FILE and not p.name.startswith(ENV_PREFIX)
    )


def env_files(run_dir: Path) -> list[Path]:
    return sorted(Path(run_dir).glob(f"{ENV_PREFIX}*.json"))


def merge_run(run_dir: str | os.PathLike, *, skip_bad: bool = False) -> tuple[MatrixReport, list[str]]:
    """The merged report of a run folder, and warnings (unreadable files skipped).

    An unreadable cell file (corrupt, not UTF-8, a FIFO, a device) is an error naming it,
    unless ``skip_bad``; then it is left out and named in the warnings. An unreadable
    environment record is only a warning: the cells do not depend on it. Two cell files
    with the same cell id are always an error: which one counts is not ours to guess.
    """
    from harness.measure import metadata
    from harness.measure.manager import read_plan

    run_dir = Path(run_dir)
    if not run_dir.exists():
        raise MergeError(f"{run_dir}: no such run folder (runs are under reports/runs/)")
    if not run_dir.is_dir():
        raise MergeError(f"{run_dir}: not a folder; give a run folder such as reports/runs/<run id>")
    plan = read_plan(run_dir)
    files = cell_files(run_dir)
    if not files and not plan.planned:
        raise MergeError(f"{run_dir}: empty run folder, no cell reports to merge")

    warnings: list[str] = []
    found: dict[str, CellReport] = {}
    source: dict[str, Path] = {}
    for path in files:
        try:
            report = CellReport.read(path)
        except ReportError as exc:
            if not skip_bad:
                raise MergeError(f"{exc}; move it away, or merge the other cells with --skip-bad") from None
            warnings.append(f"skipped {exc}")
            continue
        if report.id in found:
            raise MergeError(
                f"cell {report.id} is in two files ({source[report.id]} and {path}); move one away"
            )
        found[report.id], source[report.id] = report, path

    environments: dict[str, EnvRecord] = {}
    for path in env_files(run_dir):
        try:
            record = EnvRecord.read(path)
        except ReportError as exc:
            warnings.append(f"skipped environment record {exc}")
            continue
        environments[record.key] = record

    # Planned order first (the matrix's), then anything else in the folder.
    order = [cell.id for cell in plan.planned if cell.id in found]
    order += [cid for cid in found if cid not in order]
    merged = MatrixReport(
        run_id=run_dir.name,
        created=_measured_at(found.values()) or now_iso(),
        harness=metadata.harness_info(),
        matrix=plan.matrix,
        environments=environments,
        cells={cid: found[cid] for cid in order},
        # Planned cells with no report at all (the run stopped before them).
        missing=[cell.info for cell in plan.planned if cell.id not in found],
        run_dir=str(run_dir),
    )
    return merged, warnings


def _measured_at(reports: Iterable[CellReport]) -> str | None:
    """When the run's measuring ended: its last cell's end. A run merged again later (after a
    resume, or into another history) keeps its own date, so the history stays in run order."""
    stamps = [r.finished or r.started for r in reports if r.finished or r.started]
    return max(stamps, key=datetime.fromisoformat) if stamps else None


def default_output(run_dir: str | os.PathLike) -> Path:
    return Path("reports") / f"matrix-{Path(run_dir).name}.json"
