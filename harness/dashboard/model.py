"""What the dashboard shows, decided from the history index and the merged reports kept.

* **Trends**: per cell and gated metric, each run's median with its 95% interval (from the
  index, so they outlive the reports), and every step that history's detection finds
  (:func:`harness.analysis.history.step_changes`): a regression that later recovered stays
  listed, marked with the run it recovered at.
* **Package moves at a step**: the resolved sets the index keeps per run and environment,
  compared between the run before the step and the run it began at (``transformers 5.17.0
  → 5.18.0``).
* **Latest verdicts**: the newest run against the run before it, when both merged reports
  are present: the verdicts of :mod:`harness.analysis.compare` (or, where the newest run
  rebuilt the older one's environments from their locks and measured them in the same
  rounds, the paired verdicts of :mod:`harness.analysis.reference`).
* **A cell is regressed** when its latest verdict is ``slower`` on a gated metric, or the
  last step history found on a gated metric went up and has not come back.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from harness.analysis import history
from harness.analysis.compare import DEFAULT_ALPHA, DEFAULT_FAIL_ON, DEFAULT_THRESHOLD
from harness.errors import UserError
from harness.result import REFERENCE_SUFFIX, MatrixReport, PackageChange, is_safe_name, version_changes

REPORT_PREFIX = "matrix-"


class DashboardError(UserError):
    """Input the dashboard cannot be built from; one line naming it."""


@dataclass(frozen=True)
class Point:
    run_id: str
    created: str | None
    median: float
    low: float | None = None
    high: float | None = None


def move_text(change: PackageChange) -> str:
    """``transformers 5.17.0 → 5.18.0`` (``(none)`` where a side lacks it)."""
    return f"{change.name} {change.reference or '(none)'} → {change.current or '(none)'}"


@dataclass
class StepView:
    """One detected step of one cell's metric."""

    cell_id: str
    metric: str
    index: int  # in the cell's points
    run_before: str
    run_at: str  # the first run of the new level
    created: str | None
    before: float
    after: float
    env: str | None
    # The versions that moved between the run before and the run at; None: a side's
    # resolved set was not recorded.
    moves: list[PackageChange] | None
    recovered_at: str | None = None  # a later step back down, for a regression

    @property
    def change(self) -> float:
        return (self.after - self.before) / self.before if self.before else 0.0

    @property
    def direction(self) -> str:
        return "slower" if self.after > self.before else "faster"

    @property
    def moves_text(self) -> str:
        if self.moves is None:
            return "resolved sets not recorded"
        return ", ".join(move_text(m) for m in self.moves) or "no package moved"


@dataclass
class MetricTrend:
    metric: str
    points: list[Point]
    steps: list[StepView]

    @property
    def open_regression(self) -> StepView | None:
        """The last step, when it went up: the cell is still on the slower level."""
        if self.steps and self.steps[-1].direction == "slower":
            return self.steps[-1]
        return None


@dataclass
class Verdict:
    """A cell's metric in the newest comparison."""

    verdict: str
    change: float | None
    reason: str
    gated: bool = True  # False in an A/A check (the stack did not change): never a regression


@dataclass
class CellView:
    cell_id: str
    env: str | None
    latest_run: str
    latest_created: str | None
    latest_status: str | None
    trends: dict[str, MetricTrend]
    verdicts: dict[str, Verdict] = field(default_factory=dict)

    @property
    def regressed(self) -> bool:
        return any(v.verdict == "slower" and v.gated for v in self.verdicts.values()) or any(
            t.open_regression is not None for t in self.trends.values()
        )

    @property
    def steps(self) -> list[StepView]:
        return [s for t in self.trends.values() for s in t.steps]


@dataclass
class RunView:
    run_id: str
    created: str | None
    cells: int
    incomplete: int
    packages: dict[str, dict[str, str]]
    # Per environment, the versions moved since the run before that had it; None: new.
    moves: dict[str, list[PackageChange] | None]
    report: Path | None = None


@dataclass
class Dashboard:
    runs: list[RunView]  # oldest first
    cells: dict[str, CellView]
    gated: tuple[str, ...]
    threshold: float
    alpha: float
    warnings: list[str]
    latest_pair: tuple[str, str] | None = None  # (older, newer) the latest verdicts compare
    latest_paired: bool = False
    # Comparisons made so far, by (baseline, current): each pair is compared once a build.
    comparisons: dict = field(default_factory=dict)

    @property
    def run_ids(self) -> list[str]:
        return [r.run_id for r in self.runs]

    def run(self, run_id: str) -> RunView | None:
        return next((r for r in self.runs if r.run_id == run_id), None)

    @property
    def with_reports(self) -> list[RunView]:
        return [r for r in self.runs if r.report is not None]

    @property
    def steps(self) -> list[StepView]:
        """Every step of every cell, newest first."""
        found = [s for c in self.cells.values() for s in c.steps]
        order = {run_id: k for k, run_id in enumerate(self.run_ids)}
        return sorted(found, key=lambda s: (-order.get(s.run_at, -1), s.cell_id, s.metric))


def find_reports(runs_dir: str | os.PathLike | None, run_ids: list[str]) -> dict[str, Path]:
    """The merged reports present for recorded runs: ``<runs_dir>/matrix-<run id>.json``."""
    if runs_dir is None:
        return {}
    root = Path(runs_dir)
    if root.exists() and not root.is_dir():
        raise DashboardError(f"{root}: not a folder; give the folder holding the merged matrix-<run id>.json")
    out = {}
    for run_id in run_ids:
        path = root / f"{REPORT_PREFIX}{run_id}.json"
        if is_safe_name(run_id) and path.is_file():
            out[run_id] = path
    return out


def _moves(before: dict[str, str] | None, after: dict[str, str] | None) -> list[PackageChange] | None:
    if before is None or after is None:
        return None
    return version_changes(before, after)


def _points(metric: str, series) -> tuple[list[Point], list[str | None]]:
    """A cell's runs that have the metric: each run's median and interval, and its environment."""
    points, envs = [], []
    for entry, summary in series:
        value = summary.medians.get(metric)
        if value is None:
            continue
        interval = summary.intervals.get(metric)
        points.append(
            Point(entry.run_id, entry.created, value, *(interval if interval is not None else (None, None)))
        )
        envs.append(summary.env)
    return points, envs


def _step_changes(values: list[float], threshold: float) -> list[history.Step]:
    return history.step_changes(values, threshold)


def parallel_map(function, *arguments) -> list:
    """``list(map(function, *arguments))``, in as many worker processes as there are CPUs
    when there is more than one item and more than one CPU (step detection and comparisons
    are CPU-bound, pure, and independent)."""
    items = len(arguments[0])
    workers = min(items, os.cpu_count() or 1)
    if workers < 2:
        return list(map(function, *arguments))
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(workers) as pool:
        return list(pool.map(function, *arguments, chunksize=max(1, items // (4 * workers))))


def _trend(
    cell_id: str, metric: str, points: list[Point], envs: list, found: list[history.Step], entries_by_id
) -> MetricTrend:
    steps = []
    for step in found:
        before, at = points[step.index - 1], points[step.index]
        env = envs[step.index]
        steps.append(
            StepView(
                cell_id=cell_id,
                metric=metric,
                index=step.index,
                run_before=before.run_id,
                run_at=at.run_id,
                created=at.created,
                before=step.before,
                after=step.after,
                env=env,
                moves=_moves(
                    entries_by_id[before.run_id].packages.get(envs[step.index - 1] or ""),
                    entries_by_id[at.run_id].packages.get(env or ""),
                ),
            )
        )
    for earlier, later in zip(steps, steps[1:]):
        if earlier.direction == "slower" and later.direction == "faster":
            earlier.recovered_at = later.run_at
    return MetricTrend(metric, points, steps)


def _runs(entries: list[history.RunEntry], reports: dict[str, Path]) -> list[RunView]:
    out = []
    last_seen: dict[str, dict[str, str]] = {}
    for entry in entries:
        moves = {env: _moves(last_seen.get(env), packages) for env, packages in entry.packages.items()}
        for env, packages in entry.packages.items():
            last_seen[env] = packages
        out.append(
            RunView(
                run_id=entry.run_id,
                created=entry.created,
                cells=len(entry.cells),
                incomplete=sum(1 for c in entry.cells.values() if c.status != "complete"),
                packages=entry.packages,
                moves=moves,
                report=reports.get(entry.run_id),
            )
        )
    return out


def build(
    history_root: str | os.PathLike,
    runs_dir: str | os.PathLike | None,
    *,
    gated: tuple[str, ...] = DEFAULT_FAIL_ON,
    threshold: float = DEFAULT_THRESHOLD,
    alpha: float = DEFAULT_ALPHA,
) -> Dashboard:
    """The dashboard's content from a history folder and the folder of merged reports."""
    index = Path(history_root) / history.INDEX
    if not index.is_file():
        raise DashboardError(
            f"{index}: no history index (merge records each run into it; run make profile-matrix, "
            "or name the history folder with --history)"
        )
    warnings: list[str] = []
    entries = history.load(history_root, warnings)
    if not gated:
        raise DashboardError("no gated metric: name at least one with --fail-on (total_s,process_wall_s)")
    reports = find_reports(runs_dir, [e.run_id for e in entries])
    entries_by_id = {e.run_id: e for e in entries}
    series: dict[str, list] = {}
    for entry in entries:
        for cell_id, summary in entry.cells.items():
            # A reference run's <cell id>@baseline cells are the previous stack, measured
            # beside tonight's: they belong to the comparison, not to the trend.
            if not cell_id.endswith(REFERENCE_SUFFIX) and is_safe_name(cell_id):
                series.setdefault(cell_id, []).append((entry, summary))
    keys = [(cell_id, metric) for cell_id in sorted(series) for metric in gated]
    found_points = {key: _points(key[1], series[key[0]]) for key in keys}
    found_steps = parallel_map(
        _step_changes, [[p.median for p in found_points[key][0]] for key in keys], [threshold] * len(keys)
    )
    steps_of = dict(zip(keys, found_steps))
    cells = {}
    for cell_id, runs in sorted(series.items()):
        last_entry, last = runs[-1]
        cells[cell_id] = CellView(
            cell_id=cell_id,
            env=last.env,
            latest_run=last_entry.run_id,
            latest_created=last_entry.created,
            latest_status=last.status,
            trends={
                metric: _trend(
                    cell_id, metric, *found_points[cell_id, metric], steps_of[cell_id, metric], entries_by_id
                )
                for metric in gated
            },
        )
    dashboard = Dashboard(
        runs=_runs(entries, reports),
        cells=cells,
        gated=tuple(gated),
        threshold=threshold,
        alpha=alpha,
        warnings=warnings,
    )
    _latest_verdicts(dashboard)
    return dashboard


def _latest_verdicts(dashboard: Dashboard) -> None:
    """The newest run against the run before it, when both reports are present."""
    from harness.dashboard.pairs import compare_runs

    if len(dashboard.runs) < 2:
        return
    older, newer = dashboard.runs[-2], dashboard.runs[-1]
    if older.report is None or newer.report is None:
        return
    result = compare_runs(dashboard, older.run_id, newer.run_id)
    dashboard.latest_pair = (older.run_id, newer.run_id)
    dashboard.latest_paired = result.paired
    for v, gated in result.verdicts:
        cell = dashboard.cells.get(v.cell_id)
        if cell is not None and v.metric in dashboard.gated:
            change = None if math.isnan(v.ratio) else v.ratio - 1
            cell.verdicts[v.metric] = Verdict(v.verdict, change, v.reason, gated)


def read_report(path: Path) -> MatrixReport:
    from harness.result import read_matrix

    return read_matrix(path)
