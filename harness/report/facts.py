"""What a page or a summary is about: the report, its baseline and comparison, and the facts
both show first (machine, dates, cells, samples, failures, cold cache, targets).

The HTML page (:mod:`harness.report.html`) and the Markdown summary
(:mod:`harness.report.summary`) read these facts from here, so the two never disagree, and
neither reaches into the other.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import msgspec

from harness.errors import UserError
from harness.report.format import MODE_ORDER, quantity, shortened, version_key
from harness.result import (
    DEFAULT_BACKEND,
    DEFAULT_DTYPE,
    CellReport,
    FailureKind,
    Machine,
    MatrixReport,
    cosine_threshold,
    read_any,
    read_cells,
)

# Why a cell has no figures, in a word or two (the tables' legend documents these words).
FAILURE_WORDS = {
    FailureKind.INSTALL: "install failed",
    FailureKind.LOAD: "load failed",
    FailureKind.CRASH: "crashed",
    FailureKind.TIMEOUT: "timeout",
    FailureKind.INTERRUPTED: "interrupted",
    FailureKind.NOT_RUN: "not run",
}
NOT_RUN_REASON = "no report: the run stopped before this cell"


# --------------------------------------------------------------------------- input


def load_input(path: str | os.PathLike) -> tuple[MatrixReport, str]:
    """A report to show, as a matrix report, and what it was read from.

    ``path`` is a merged matrix report, a run folder (merged in memory, nothing written),
    or a single cell report (shown as a one-cell run).
    """
    path = Path(path)
    if path.is_dir():
        from harness.analysis.merge import merge_run

        report, _warnings = merge_run(path)
        return report, f"run folder {path}"
    if not path.exists():
        raise UserError(
            f"{path}: no such file or folder; give a merged report (reports/matrix-<run id>.json), "
            f"a run folder (reports/runs/<run id>) or a cell report"
        )
    found = read_any(path)  # refuses anything but a matrix or a cell report
    if isinstance(found, MatrixReport):
        return found, f"merged report {path}"
    return MatrixReport(
        run_id=found.id,
        created=found.finished or found.started,
        harness=found.harness,
        cells={found.id: found},
    ), f"cell report {path}"


def baseline_for(
    spec: str | None, report: MatrixReport, root: str | os.PathLike
) -> tuple[Path | None, str | None]:
    """The baseline file to compare with, and a note when there is none to use.

    ``auto`` with no baseline stored for this machine is not an error (a first CI run has
    none): the page and the summary say so. A named file that is missing is an error.
    """
    from harness.analysis import baseline as baselines

    if not spec:
        return None, None
    if spec != "auto":
        path = Path(spec)
        if not path.is_file():
            raise UserError(f"--baseline {spec}: no such report file")
        return path, None
    prints = machines(report)
    if len(prints) != 1:
        return None, (
            f"no baseline: the cells come from {len(prints)} machines; "
            f"compare each machine with `python -m harness ci compare`"
        )
    fingerprint = next(iter(prints))
    found = baselines.find_for(fingerprint, root)
    if found is None:
        return None, f"no baseline stored for this machine ({fingerprint}) under {root}"
    return found, None


def compare_with(baseline_path: Path, report: MatrixReport):
    """The statistical comparison of the report's cells with the baseline's."""
    from harness.analysis.compare import compare_cells

    return compare_cells(
        read_cells(baseline_path),
        dict(report.cells),
        allow_cross_machine=True,
        baseline_label=str(baseline_path),
        current_label=str(report.run_id),
    )


def within_run(report: MatrixReport, axis: str = "torch"):
    """The paired comparison of the run's cells along ``axis`` (each against its reference
    cell, round by round: harness.analysis.paired), or None when no two cells pair."""
    from harness.analysis.paired import NoPairsError, compare_within

    axes = {key for cell in report.cells.values() for key in cell.cell.axes}
    if axis not in axes:
        return None
    try:
        return compare_within(report, axis)
    except NoPairsError:
        return None


# --------------------------------------------------------------------------- cells


def failure_word(cell: CellReport) -> str:
    """Why a cell has no figures, from its failure's kind (never from the message's words)."""
    if cell.failure is not None:
        return FAILURE_WORDS[cell.failure.kind]
    # A partial report without a failure: the profile stopped before writing its last state.
    return FAILURE_WORDS[FailureKind.INTERRUPTED if cell.status == "partial" else FailureKind.CRASH]


class FailedCell(msgspec.Struct, frozen=True):
    """A cell without figures: its id, why in a word, and the reason it gave."""

    cell: str
    word: str
    reason: str
    # Where the full reason is kept (the cell's report), named when a table shortens it.
    source: str | None = None

    def short_reason(self, limit: int = 100) -> str:
        """The reason on one line; cut at ``limit`` and then saying where the rest is."""
        return shortened(self.reason, limit, self.source and f"the cell report: {self.source}")

    def cells(self) -> list[str]:
        """Its row in a table of failed cells (``cell``, ``why``, ``reason``)."""
        return [self.cell, self.word, self.short_reason()]


def failed_cells(report: MatrixReport) -> list[FailedCell]:
    """Every cell that is not complete, and every planned cell that never reported."""
    out = [
        FailedCell(
            cid,
            failure_word(c),
            c.failure.reason if c.failure else c.status,
            str(Path(report.run_dir) / f"{cid}.json") if report.run_dir else None,
        )
        for cid, c in report.cells.items()
        if c.status != "complete"
    ]
    out += [FailedCell(m.id, FAILURE_WORDS[FailureKind.NOT_RUN], NOT_RUN_REASON) for m in report.missing]
    return out


def machines(report: MatrixReport) -> dict[str, Machine]:
    """Machine description by fingerprint, over every cell that recorded one."""
    out: dict[str, Machine] = {}
    for cell in report.cells.values():
        if cell.machine is not None:
            out.setdefault(cell.machine.fingerprint, cell.machine)
    return out


def machine_text(machine: Machine) -> str:
    parts = [machine.cpu or "unknown CPU"]
    if machine.cores:
        parts.append(f"{machine.cores} cores")
    if machine.memory_gb:
        parts.append(f"{machine.memory_gb:g} GB")
    parts.append(machine.os_release or machine.os or "")
    return ", ".join(p for p in parts if p) + f" (fingerprint {machine.fingerprint})"


def machine_fields(machine: Machine) -> list[tuple[str, str]]:
    """Every recorded field of a machine, as (name, value) text."""
    return [
        (name, str(value)) for name, value in msgspec.structs.asdict(machine).items() if value is not None
    ]


def ordered_cells(report: MatrixReport) -> list[CellReport]:
    """Cells grouped by model, then mode, then torch version: within a group the torch
    versions sit next to each other, which is the comparison a reader wants first."""

    def key(cell: CellReport):
        info = cell.cell
        return (
            info.model,
            MODE_ORDER.get(info.mode, len(MODE_ORDER)),
            version_key(info.torch),
            info.device,
            info.backend != DEFAULT_BACKEND,
            info.backend,
            info.dtype != DEFAULT_DTYPE,
            info.dtype,
        )

    return sorted(report.cells.values(), key=key)


# --------------------------------------------------------------------------- headline


@dataclass(frozen=True)
class ColdStatus:
    """Whether every counted cold sample started from a verified-cold page cache."""

    cells: int
    samples: int
    flagged: int
    verified: bool
    notes: list[str]


def cold_status(report: MatrixReport) -> ColdStatus:
    cold = [c for c in report.cells.values() if c.cell.mode == "cold" and c.status != "failed"]
    samples = [s for c in cold for s in c.counted]
    flagged = [s for s in samples if s.cache_flagged]
    unverified = [c for c in cold if not (c.cold_cache and c.cold_cache.verified)]
    notes = sorted(
        {(c.cold_cache.note if c.cold_cache else None) or "residency not checked" for c in unverified}
    )
    return ColdStatus(
        cells=len(cold),
        samples=len(samples),
        flagged=len(flagged),
        verified=bool(cold) and not flagged and not unverified,
        notes=notes,
    )


@dataclass(frozen=True)
class Headline:
    """The facts at the top of the page and of the CI summary."""

    run_id: str
    created: str
    started: str | None
    finished: str | None
    machines: dict[str, Machine]
    cells: int  # reported and missing
    complete: int
    samples: int  # counted samples that finished
    failed_samples: int
    failed: list[FailedCell]
    cold: ColdStatus
    total_target_missed: list[str]  # cell ids
    # (cell id, contended samples, counted samples) of each cell with a counted sample taken
    # under contention (Sample.contended; docs/measuring.md).
    contended: list[tuple[str, int, int]] = field(default_factory=list)


def headline(report: MatrixReport) -> Headline:
    cells = report.cells
    starts = sorted(c.started for c in cells.values() if c.started)
    ends = sorted(c.finished for c in cells.values() if c.finished)
    missed = [
        cid
        for cid, c in cells.items()
        if "total_s" in c.target_results and not c.target_results["total_s"].met
    ]
    return Headline(
        run_id=report.run_id,
        created=report.created,
        started=starts[0] if starts else None,
        finished=ends[-1] if ends else None,
        machines=machines(report),
        cells=len(cells) + len(report.missing),
        complete=sum(1 for c in cells.values() if c.status == "complete"),
        samples=sum(len(c.counted) for c in cells.values()),
        failed_samples=sum(c.failed_samples for c in cells.values()),
        failed=failed_cells(report),
        cold=cold_status(report),
        total_target_missed=missed,
        contended=[
            (cid, c.contended_samples, len(c.counted)) for cid, c in cells.items() if c.contended_samples
        ],
    )


# --------------------------------------------------------------------------- backends


class BackendLine(msgspec.Struct, frozen=True):
    """One backend or dtype against torch float32 in the same environment and mode: the
    speed and the agreement of its embeddings, side by side, every figure the report's own."""

    cell: str
    reference: str  # the torch float32 cell
    level: str  # "ok", or "warn" when the embeddings no longer agree
    text: str


def backend_lines(report: MatrixReport, thresholds: dict[str, float] | None = None) -> list[BackendLine]:
    """``onnx qint8 (warm): total 2.10 s against 3.40 s with torch float32, 180 MB less
    memory, cosine ≥ 0.9930``, for every measured cell off torch float32 that has a torch
    float32 cell differing from it in backend and dtype only."""

    def rest(cell: CellReport) -> tuple:
        axes = cell.cell.axes
        return tuple(sorted((k, str(v)) for k, v in axes.items() if k not in ("backend", "dtype")))

    def is_reference(cell: CellReport) -> bool:
        return (cell.cell.backend, cell.cell.dtype) == (DEFAULT_BACKEND, DEFAULT_DTYPE)

    measured = [c for c in ordered_cells(report) if c.median("total_s") is not None]
    references = {rest(c): c for c in measured if is_reference(c)}
    out = []
    for cell in measured:
        ref = references.get(rest(cell))
        if is_reference(cell) or ref is None:
            continue
        total, ref_total = cell.median("total_s"), ref.median("total_s")
        parts = [
            f"total {quantity('total_s', total)} against {quantity('total_s', ref_total)} with torch float32"
        ]
        memory, ref_memory = cell.median("memory_mb"), ref.median("memory_mb")
        if memory is not None and ref_memory is not None:
            less = ref_memory - memory
            parts.append(f"{quantity('memory_mb', abs(less))} {'less' if less >= 0 else 'more'} memory")
        if cell.export_s is not None:
            parts.append(f"export {quantity('total_s', cell.export_s)} once")
        cosine = cell.embedding_cosine_min
        level = "ok"
        if cosine is None:
            parts.append("embeddings not compared")
        else:
            floor = math.floor(cosine * 1e4) / 1e4
            threshold = cell.cosine_threshold or cosine_threshold(cell.cell.dtype, thresholds)
            if cosine < threshold:
                level = "warn"
                parts.append(f"cosine {floor:.4f}, below {threshold:g}: it changes the model's output")
            else:
                parts.append(f"cosine ≥ {floor:.4f}")
        text = f"{cell.cell.variant} ({cell.cell.mode}): " + ", ".join(parts)
        out.append(BackendLine(cell=cell.id, reference=ref.id, level=level, text=text))
    return out
