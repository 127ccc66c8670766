"""Two runs compared, as ``harness compare`` compares them, for the dashboard's pages.

Two runs were *interleaved against each other* when the current one is a reference run
whose rebuilt ``@baseline`` environments are the baseline run's environments (the same
lock, environment by environment): then the comparison is the reference run's paired
verdict (:func:`harness.analysis.reference.compare_reference`, with the baseline run's
numbers for environments not rebuilt). Otherwise it is the comparison of two sessions,
unpaired (:func:`harness.analysis.compare.compare_cells`), said so. The verdicts, the tables
and the verdict line are the existing ones (:mod:`harness.report.comparison`,
:mod:`harness.report.reference`); this module only picks which.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from harness.analysis.baseline import without_reference
from harness.analysis.compare import Comparison, MetricVerdict, compare_cells
from harness.analysis.reference import compare_reference
from harness.result import MatrixReport, read_matrix

UNPAIRED = "two sessions, unpaired"


@dataclass
class RunComparison:
    baseline: str  # run ids
    current: str
    paired: bool
    note: str  # what kind of comparison, one sentence
    text: str  # what `harness compare` (or `harness reference`) prints
    sections: list[tuple[str, Comparison]]  # titled comparisons whose tables the page shows
    environments: list[str]  # a paired comparison: per environment, what it was compared against

    @property
    def verdicts(self) -> list[tuple[MetricVerdict, bool]]:
        """Every verdict, and whether its comparison gates its metric (an A/A check gates none)."""
        return [(v, v.metric in c.gated_metrics) for _title, c in self.sections for v in c.verdicts]

    @property
    def banner(self) -> str:
        """The verdict line, the last line the command prints."""
        return self.text.rstrip().splitlines()[-1]

    @property
    def regressed(self) -> bool:
        return self.banner.startswith("REGRESSION")


@functools.lru_cache(maxsize=64)
def _report(path: Path) -> MatrixReport:
    return read_matrix(path)


def interleaved(baseline: MatrixReport, current: MatrixReport) -> bool:
    """Whether ``current`` measured ``baseline``'s environments, rebuilt from their locks, in
    its own rounds."""
    rebuilt = [e for e in current.environments.values() if e.reference and e.status == "ok" and e.lock]
    locks = {e.env_id: sorted(e.lock) for e in baseline.environments.values() if not e.reference and e.lock}
    return bool(rebuilt) and all(locks.get(e.env_id) == sorted(e.lock) for e in rebuilt)


@dataclass(frozen=True)
class Runs:
    """What a comparison needs of the dashboard, small enough to hand to a worker process:
    the runs in history order with their merged reports, and the verdict options."""

    reports: tuple[tuple[str, Path | None], ...]
    gated: tuple[str, ...]
    threshold: float
    alpha: float

    @classmethod
    def of(cls, dashboard) -> Runs:
        return cls(
            tuple((r.run_id, r.report) for r in dashboard.runs),
            tuple(dashboard.gated),
            dashboard.threshold,
            dashboard.alpha,
        )

    def report(self, run_id: str) -> Path:
        path = dict(self.reports).get(run_id, ...)
        if path is ...:
            raise _error(f"run {run_id!r} is not in the history")
        if path is None:
            raise _error(f"run {run_id}: its merged report (matrix-{run_id}.json) is not under --runs")
        return path


def _rebuilt_from(runs: Runs, current_id: str, current: MatrixReport) -> str | None:
    """The run whose environments a reference run rebuilt: the newest run before it, with
    its report here, whose locks are the rebuilt ones (the baseline a run stores is its
    newest accepted run; an older run with the same locks is the same stack, not the one
    measured)."""
    ids = [run_id for run_id, _path in runs.reports]
    before = [(run_id, path) for run_id, path in runs.reports[: ids.index(current_id)] if path is not None]
    for run_id, path in reversed(before):
        if interleaved(_report(path), current):
            return run_id
    return None


def compare_runs(dashboard, baseline_id: str, current_id: str) -> RunComparison:
    """Run ``current_id`` against run ``baseline_id``; both must have their merged report."""
    return compare_many(dashboard, [(baseline_id, current_id)])[(baseline_id, current_id)]


def compare_many(dashboard, pairs: list[tuple[str, str]]) -> dict[tuple[str, str], RunComparison]:
    """Each (baseline, current) pair compared once a build; several at once in as many worker
    processes as there are CPUs (each comparison bootstraps every cell and metric: about a
    second for 50 cells)."""
    runs = Runs.of(dashboard)
    todo = list(dict.fromkeys(pair for pair in pairs if pair not in dashboard.comparisons))
    for baseline_id, current_id in todo:  # a pair that cannot be compared stops here, in one line
        runs.report(baseline_id), runs.report(current_id)
    from harness.dashboard.model import parallel_map

    done = parallel_map(_compare, [runs] * len(todo), *zip(*todo)) if todo else []
    dashboard.comparisons.update(zip(todo, done))
    return {pair: dashboard.comparisons[pair] for pair in pairs}


def _compare(runs: Runs, baseline_id: str, current_id: str) -> RunComparison:
    from harness.report import comparison as comparison_text
    from harness.report import reference as reference_text
    from harness.report.reference import environment_line

    paths = {run_id: runs.report(run_id) for run_id in (baseline_id, current_id)}
    baseline, current = _report(paths[baseline_id]), _report(paths[current_id])
    stored = without_reference(baseline).cells
    if _rebuilt_from(runs, current_id, current) == baseline_id:
        result = compare_reference(
            current,
            stored_numbers=dict(stored),
            stored_label=f"run {baseline_id}",
            threshold=runs.threshold,
            alpha=runs.alpha,
            fail_on=runs.gated,
        )
        sections: list[tuple[str, Comparison]] = [
            ("Where the stack changed (gated)", result.paired),
            ("Where the stack did not change: the A/A check (never gated)", result.aa),
        ]
        if result.numbers is not None:
            sections.append(
                (f"Environments not rebuilt, against run {baseline_id}'s numbers", result.numbers)
            )
        return RunComparison(
            baseline_id,
            current_id,
            True,
            f"paired: run {current_id} rebuilt run {baseline_id}'s environments from their locks and "
            "measured both in the same interleaved rounds",
            reference_text.render(result, "text"),
            [(title, c) for title, c in sections if c.verdicts or c.failed],
            [environment_line(env) for env in result.envs],
        )
    comparison = compare_cells(
        stored,
        without_reference(current).cells,
        allow_cross_machine=True,
        baseline_label=f"run {baseline_id}",
        current_label=f"run {current_id}",
        threshold=runs.threshold,
        alpha=runs.alpha,
        fail_on=runs.gated,
    )
    return RunComparison(
        baseline_id,
        current_id,
        False,
        f"{UNPAIRED}: neither run measured the other's environments, so whatever changed on the "
        "machine between the two sessions is part of every change",
        comparison_text.render(comparison, "text", colour=False),
        [("Verdicts", comparison)],
        [],
    )


def _error(message: str):
    from harness.dashboard.model import DashboardError

    return DashboardError(message)
