"""The verdict of a reference run (issue 16): each current cell against its reference cell.

A reference run (``make profile-matrix REFERENCE=baseline``, nox ``-- --reference
baseline``, the matrix key ``reference_run: baseline``) rebuilds, beside each current
environment, the stored baseline's environment from its lock, and measures its cells as
``<cell id>@baseline`` in the same interleaved rounds. The machine's drift, and which
runner CPU this is, fall on both sides of every round alike, so the paired within-run
verdict (:mod:`harness.analysis.paired`, per-round log ratios) answers "did tonight's
dependency releases slow the load?" on any runner.

Per environment, one of:

* **rebuilt**, the lock identical to the current one: "the stack did not change"; its
  cells are an A/A check. A ``slower`` or ``faster`` there is no regression (nothing
  changed): it says the runner's noise exceeds the threshold, and is reported as a failed
  A/A check, not gated.
* **rebuilt**, some versions differ: those packages are listed with the verdicts, the
  suspects of a ``slower``; its verdicts are gated.
* **not rebuilt** (a version yanked from the index, a baseline stored before locks were
  kept): the one-line reason, and the cells are compared with the stored numbers of this
  machine's baseline instead (:func:`harness.analysis.compare.compare_cells`), said so.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from harness.analysis.compare import (
    DEFAULT_ALPHA,
    DEFAULT_FAIL_ON,
    DEFAULT_THRESHOLD,
    Comparison,
    MetricVerdict,
    check_options,
    compare_cells,
)
from harness.analysis.paired import CellPair, PairedComparison, judge_pair
from harness.result import (
    HEADLINE_METRICS,
    REFERENCE_SUFFIX,
    CellReport,
    EnvRecord,
    MatrixReport,
    PackageChange,
    lock_changes,
)

AXIS = "stack"  # the axis a reference cell differs in (CellInfo.stack)
SAME_STACK = "the stack did not change"
REBUILT, FALLBACK = "rebuilt", "stored numbers"


@dataclass
class EnvReference:
    """One current environment and what it was compared against."""

    env_id: str
    how: str  # REBUILT or FALLBACK
    reason: str = ""  # FALLBACK: why no reference cells
    baseline: str | None = None  # the stored baseline the lock came from
    changes: list[PackageChange] = field(default_factory=list)
    cells: list[str] = field(default_factory=list)  # the current cells of this environment

    @property
    def same_stack(self) -> bool:
        return self.how == REBUILT and not self.changes


@dataclass
class ReferenceComparison:
    run_id: str
    envs: list[EnvReference]
    paired: PairedComparison  # cells whose stack changed: gated
    aa: PairedComparison  # cells whose stack did not change: the A/A check, never gated
    numbers: Comparison | None = None  # the fallback environments' cells against stored numbers
    pairs: int = 0  # current cells that had their reference cell (judged, or failed on a side)

    @property
    def compared_nothing(self) -> bool:
        """No current cell met its reference cell, nor a cell of the stored numbers: a
        verdict of "no regression" would rest on nothing (issue 27)."""
        return not self.pairs and (self.numbers is None or not self.numbers.common_cells)

    def aa_failures(self):
        """Slower/faster verdicts where the stack did not change: the A/A check failed."""
        return [v for v in self.aa.verdicts if v.verdict in ("slower", "faster")]

    @property
    def verdicts(self):
        return self.paired.verdicts + self.aa.verdicts

    def regressions(self):
        return self.paired.regressions() + (self.numbers.regressions() if self.numbers else [])

    def exit_code(self) -> int:
        return 1 if self.regressions() else 0

    def slower_suspects(self) -> list[tuple[MetricVerdict, list[PackageChange]]]:
        """Each gated ``slower`` verdict with the versions that differ beside it, where any do."""
        found = [(v, self.suspects(v.cell_id)) for v in self.paired.verdicts if v.verdict == "slower"]
        return [(v, changes) for v, changes in found if changes]

    def suspects(self, cell_id: str) -> list[PackageChange]:
        for env in self.envs:
            if cell_id in env.cells:
                return env.changes
        return []


def is_reference(cell: CellReport) -> bool:
    return cell.cell.stack is not None


def has_reference(report: MatrixReport) -> bool:
    """Whether the run built or tried to build any reference environment."""
    return any(env.reference for env in report.environments.values()) or any(
        is_reference(c) for c in report.cells.values()
    )


def compare_reference(
    report: MatrixReport,
    *,
    stored_numbers: dict[str, CellReport] | None = None,
    stored_label: str = "stored baseline",
    threshold: float = DEFAULT_THRESHOLD,
    alpha: float = DEFAULT_ALPHA,
    fail_on=DEFAULT_FAIL_ON,
    metrics=HEADLINE_METRICS,
) -> ReferenceComparison:
    """Every current cell against its ``@baseline`` cell, environment by environment;
    environments without reference cells against ``stored_numbers`` (this machine's stored
    baseline's cells; None: none stored, noted)."""
    check_options(threshold, alpha, [*fail_on, *metrics])
    current = [c for c in report.cells.values() if not is_reference(c)]
    refs = {c.id: c for c in report.cells.values() if is_reference(c)}
    records: dict[str, EnvRecord] = {r.name: r for r in report.environments.values()}

    def paired_comparison(gated: tuple[str, ...], label: str) -> PairedComparison:
        return PairedComparison.empty(report.run_id, AXIS, "baseline", label, gated, threshold, alpha)

    changed = paired_comparison(tuple(fail_on), "its baseline environment rebuilt from the lock")
    # Nothing resolved differently: a slower or faster here is the runner's noise, not a change.
    aa = paired_comparison((), f"its baseline environment ({SAME_STACK}: an A/A check, not gated)")
    envs: dict[str, EnvReference] = {}
    fallback_cells: dict[str, CellReport] = {}
    pairs = 0
    for cell in current:
        env_id = cell.cell.env_id
        env = envs.get(env_id)
        if env is None:
            env = envs[env_id] = _env_reference(env_id, records)
        env.cells.append(cell.id)
        ref = refs.get(f"{cell.id}{REFERENCE_SUFFIX}")
        paired = aa if env.same_stack else changed
        if env.how != REBUILT or ref is None:
            if env.how == REBUILT:  # rebuilt, but this cell has no reference report
                paired.missing_in_baseline.append(cell.id)
            fallback_cells[cell.id] = cell
            continue
        pairs += 1
        failures = [
            f"{c.id}: {c.failure.reason if c.failure else c.status}"
            for c in (ref, cell)
            if c.status == "failed"
        ]
        if failures:
            paired.failed[cell.id] = "; ".join(failures)
            continue
        pair = CellPair(AXIS, ref, cell)
        paired.verdicts.extend(
            judge_pair(pair, metric, threshold=threshold, alpha=alpha)
            for metric in metrics
            if ref.values(metric) or cell.values(metric)
        )
    numbers = None
    if fallback_cells and stored_numbers is not None:
        numbers = compare_cells(
            {cid: c for cid, c in stored_numbers.items() if cid in fallback_cells},
            fallback_cells,
            threshold=threshold,
            alpha=alpha,
            fail_on=fail_on,
            metrics=metrics,
            baseline_label=stored_label,
            current_label=f"run {report.run_id}",
        )
    return ReferenceComparison(report.run_id, list(envs.values()), changed, aa, numbers, pairs)


def _env_reference(env_id: str, records: dict[str, EnvRecord]) -> EnvReference:
    ref = records.get(f"{env_id}{REFERENCE_SUFFIX}")
    cur = records.get(env_id)
    if ref is None:
        return EnvReference(env_id, FALLBACK, "no reference environment was built in this run")
    if ref.status != "ok":
        return EnvReference(env_id, FALLBACK, ref.error or "the reference environment failed", ref.reference)
    if cur is None or not cur.lock:
        # Without the current lock nothing can be said about what changed; the pairs stand.
        return EnvReference(
            env_id, REBUILT, "", ref.reference, [PackageChange(name="(current lock unknown)")]
        )
    return EnvReference(env_id, REBUILT, "", ref.reference, lock_changes(ref.lock, cur.lock))


def stored_numbers_for(
    report: MatrixReport, root: str | os.PathLike
) -> tuple[dict[str, CellReport] | None, str]:
    """This machine's stored baseline's cells (the fallback) and its path; (None, "") when
    none is stored, or the cells come from more than one machine."""
    from harness.analysis.baseline import find_for
    from harness.result import cells_of, read_any

    prints = {
        c.fingerprint for c in report.cells.values() if not is_reference(c) and c.fingerprint is not None
    }
    path = find_for(prints.pop(), root) if len(prints) == 1 else None
    return (cells_of(read_any(path)), str(path)) if path is not None else (None, "")


def judge_against_stored(
    report: MatrixReport,
    root: str | os.PathLike,
    threshold: float = DEFAULT_THRESHOLD,
    alpha: float = DEFAULT_ALPHA,
    fail_on=DEFAULT_FAIL_ON,
) -> ReferenceComparison:
    """compare_reference with this machine's stored baseline under ``root`` as the fallback
    for environments whose lock was not rebuilt (what `harness reference` and `ci compare`
    both judge)."""
    numbers, label = stored_numbers_for(report, root)
    return compare_reference(
        report, stored_numbers=numbers, stored_label=label, threshold=threshold, alpha=alpha, fail_on=fail_on
    )
