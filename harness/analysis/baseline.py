"""Stored baselines: one report per machine fingerprint under ``reports/baselines/``.

A load time only means something on the machine that measured it, so a baseline is kept
per machine: ``<root>/<fingerprint>.json`` is a validated copy of the report (a single
cell report or a merged matrix report) saved last on that machine. ``compare auto`` (and
``merge --baseline auto``) look up the current report's fingerprint here. The fingerprint
comes from the report, so it is checked as a file name before any path is built from it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TypeVar

from harness.errors import UserError
from harness.result import MatrixReport, Report, cells_of, read_any, safe_name

DEFAULT_ROOT = "reports/baselines"
# A cell report or a matrix report, given and returned as the same kind.
AnyReport = TypeVar("AnyReport", bound=Report)


class BaselineError(UserError):
    """No usable baseline: none stored for this machine, or a report without a machine."""


def fingerprint_of(report_path: str | os.PathLike, report: Report | None = None) -> str:
    """The machine fingerprint of a report (every cell of a matrix report must share it)."""
    cells = cells_of(report if report is not None else read_any(report_path))
    prints = {c.fingerprint for c in cells.values() if c.fingerprint is not None}
    if not prints:
        raise BaselineError(
            f"{report_path}: no machine fingerprint in the report (no cell recorded its machine)"
        )
    if len(prints) > 1:
        raise BaselineError(
            f"{report_path}: cells from {len(prints)} machines ({', '.join(sorted(prints))}); "
            "a baseline belongs to one machine"
        )
    return prints.pop()


def path_for(fingerprint: str, root: str | os.PathLike = DEFAULT_ROOT) -> Path:
    """Where a machine's baseline lives; the fingerprint must be a safe file name."""
    return Path(root) / f"{safe_name(fingerprint, 'machine fingerprint')}.json"


def without_reference(report: AnyReport) -> AnyReport:
    """A report as a baseline keeps it: a reference run's ``<cell id>@baseline`` cells and
    its rebuilt reference environments left out (they are the previous baseline's)."""
    import msgspec

    if not isinstance(report, MatrixReport):
        return report
    return msgspec.structs.replace(
        report,
        cells={cid: c for cid, c in report.cells.items() if not c.cell.stack},
        environments={key: env for key, env in report.environments.items() if not env.reference},
    )


def save(report_path: str | os.PathLike, root: str | os.PathLike = DEFAULT_ROOT) -> Path:
    """Store a report as the baseline of the machine that measured it; returns the stored path."""
    report = without_reference(read_any(report_path))
    return report.write(path_for(fingerprint_of(report_path, report), root))


def find_for(fingerprint: str, root: str | os.PathLike = DEFAULT_ROOT) -> Path | None:
    """The stored baseline of a machine, or None."""
    path = path_for(fingerprint, root)
    return path if path.is_file() else None


def resolve(
    spec: str | os.PathLike, current_path: str | os.PathLike, root: str | os.PathLike = DEFAULT_ROOT
) -> Path:
    """A baseline argument as a path: ``auto`` is the stored baseline of the current report's
    machine; anything else is a report path."""
    if str(spec) != "auto":
        return Path(spec)
    fingerprint = fingerprint_of(current_path)
    found = find_for(fingerprint, root)
    if found is None:
        raise BaselineError(
            f"no baseline stored for this machine (fingerprint {fingerprint}) under {root}; "
            f"store one with `python -m harness baseline save REPORT`"
        )
    return found


def stored(root: str | os.PathLike = DEFAULT_ROOT) -> list[Path]:
    return sorted(Path(root).glob("*.json"))


# --- the reference of a run (issue 16) -----------------------------------------------------

# REFERENCE=baseline (--reference baseline, the matrix key reference_run: baseline): rebuild
# the newest stored baseline's environments from their locks and measure their cells in the
# same rounds as the current ones. REFERENCE=numbers: compare with the stored numbers only.
# REFERENCE may also name one stored baseline file.
REFERENCE_BASELINE, REFERENCE_NUMBERS = "baseline", "numbers"
REFERENCE_CHOICES = (REFERENCE_BASELINE, REFERENCE_NUMBERS)


def newest(root: str | os.PathLike = DEFAULT_ROOT) -> Path | None:
    """The stored baseline accepted last (its ``created``; any machine's: a lock rebuilds on
    any runner, so a runner without a baseline of its own still gets a reference), or None."""
    from harness.result import MatrixReport, ReportError

    found = []
    for path in stored(root):
        try:
            report = read_any(path)
        except (ReportError, UserError):
            continue
        if isinstance(report, MatrixReport):
            found.append((report.created, path.name, path))
    return max(found)[2] if found else None


def reference_for(spec: str, root: str | os.PathLike = DEFAULT_ROOT) -> Path | None:
    """The stored baseline a reference run rebuilds: ``baseline``: the newest under ``root``
    (None when none is stored yet: the very first run); ``numbers``: None (no rebuild);
    else a stored baseline file, which must be a readable merged matrix report. Anything
    else is a one-line BaselineError."""
    from harness.result import MatrixReport, ReportError

    if spec == REFERENCE_NUMBERS:
        return None
    if spec == REFERENCE_BASELINE:
        return newest(root)
    path = Path(spec)
    if not path.is_file():
        raise BaselineError(
            f"REFERENCE={spec}: not {' or '.join(REFERENCE_CHOICES)} and not a stored baseline file "
            f"(stored ones: {', '.join(str(p) for p in stored(root)) or f'none under {root}'})"
        )
    try:
        report = read_any(path)
    except (ReportError, UserError) as exc:
        raise BaselineError(f"REFERENCE={spec}: not a stored baseline: {exc}") from None
    if not isinstance(report, MatrixReport):
        raise BaselineError(
            f"REFERENCE={spec}: a single cell report keeps no environment; name a stored matrix baseline"
        )
    return path
