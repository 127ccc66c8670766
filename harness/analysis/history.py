"""History of merged matrix runs, and step detection over it.

``record`` appends one line per merged run to ``<root>/index.jsonl``: the run id, its time,
the machine, and per cell the status and the median of each headline metric. The line
holds the figures themselves, so the history survives the deletion of old reports. A run
id already in the index is not added twice.

Step detection (``trends``) is a small, robust version of what asv does: fit the series of
median totals with piecewise-constant segments, minimising the sum of absolute deviations
from each segment's median plus a penalty per segment (an L1 "Potts" fit; absolute
deviations and medians, so one wild run pulls nothing). Each segment must hold at least
two runs, so a single outlier is never a step: a new level is flagged once a second run
confirms it. The penalty is ``max(3 sigma, threshold x median)`` per point of the shorter
side, where sigma is a robust noise estimate (1.4826 x the median absolute successive
difference / sqrt 2, which a step barely moves). A boundary is reported as a step only if
the two segments' medians differ by more than the threshold (5%) and by more than 3 sigma.

The fit is asv's ``solve_potts_approx``: the exact dynamic programme, with segments of at
most ``WINDOW`` runs, and then neighbouring segments merged while merging lowers the cost;
last, each boundary is moved (within ``WINDOW`` runs) to where its two segments cost least.
A series of up to ``WINDOW`` runs gets the exact optimum; a longer one costs about
O(n x WINDOW^2) rather than the exact programme's O(n^3), so 1,000 runs take tens of
milliseconds per cell.
"""

from __future__ import annotations

import math
import os
import statistics
from pathlib import Path

import msgspec

from harness.result import HEADLINE_METRICS, MatrixReport, append_bytes, read_bytes

DEFAULT_ROOT = "reports/history"
INDEX = "index.jsonl"
STEP_THRESHOLD = 0.05
MIN_SEGMENT = 2
WINDOW = 20  # as asv's solve_potts_approx


class CellSummary(msgspec.Struct, kw_only=True):
    """One cell of one recorded run: what the trend needs, not the samples."""

    status: str | None = None
    n: int = 0
    fingerprint: str | None = None
    medians: dict[str, float] = {}


class RunEntry(msgspec.Struct, kw_only=True):
    """One line of the index: one merged run."""

    run_id: str
    created: str | None = None
    report: str | None = None
    commit: str | None = None
    cells: dict[str, CellSummary] = {}


def _summary(cell) -> CellSummary:
    medians = {}
    for metric in HEADLINE_METRICS:
        values = cell.values(metric)
        if values:
            medians[metric] = statistics.median(values)
    return CellSummary(
        status=cell.status, n=len(cell.values("total_s")), fingerprint=cell.fingerprint, medians=medians
    )


def record(
    report: MatrixReport, root: str | os.PathLike = DEFAULT_ROOT, *, path: str | os.PathLike | None = None
) -> Path:
    """Append a merged matrix run (read from ``path``, when given) to the history index;
    returns the index path. An index that cannot be written is WriteError (exit 3)."""
    index = Path(root) / INDEX
    if any(entry.run_id == report.run_id for entry in load(root)):
        return index
    entry = RunEntry(
        run_id=report.run_id,
        created=report.created,
        report=str(path) if path else None,
        commit=report.harness.commit,
        cells={cell_id: _summary(cell) for cell_id, cell in report.cells.items()},
    )
    # One write of one line in append mode: an interrupted run never corrupts earlier lines.
    return append_bytes(index, msgspec.json.encode(entry, order="sorted") + b"\n")


def load(root: str | os.PathLike = DEFAULT_ROOT) -> list[RunEntry]:
    """Every recorded run, oldest first. A line cut short by a crash is skipped."""
    index = Path(root) / INDEX
    if not index.exists():
        return []
    entries = []
    for line in read_bytes(index).splitlines():
        try:
            entries.append(msgspec.json.decode(line, type=RunEntry))
        except (msgspec.DecodeError, RecursionError):
            continue
    return sorted(entries, key=lambda e: (e.created or "", e.run_id))


def noise(values: list[float]) -> float:
    """Robust noise of a series: from successive differences, so a step barely moves it."""
    diffs = [abs(b - a) for a, b in zip(values, values[1:])]
    if not diffs:
        return 0.0
    return 1.4826 * statistics.median(diffs) / math.sqrt(2)


def _l1_cost(values) -> float:
    """Sum of absolute deviations from the median: the cost of one segment."""
    import numpy as np

    return float(np.abs(values - np.median(values)).sum())


def _window_costs(values, window: int):
    """costs[L, i]: the cost of values[i:i + L], for L up to ``window`` (inf where there is none)."""
    import numpy as np
    from numpy.lib.stride_tricks import sliding_window_view

    costs = np.full((window + 1, len(values)), math.inf)
    for length in range(MIN_SEGMENT, min(window, len(values)) + 1):
        windows = sliding_window_view(values, length)
        costs[length, : len(windows)] = np.abs(windows - np.median(windows, axis=1, keepdims=True)).sum(
            axis=1
        )
    return costs


def segments(
    values: list[float], penalty: float, min_size: int = MIN_SEGMENT, window: int = WINDOW
) -> list[int]:
    """Start indices of the L1 piecewise-constant fit: exact for segments of up to ``window``
    runs, then neighbours merged while that lowers the cost (asv's approximation)."""
    import numpy as np

    data = np.asarray(values, dtype=float)
    n = len(data)
    if n < 2 * min_size:
        return [0]
    costs = _window_costs(data, window)
    best = np.full(n + 1, math.inf)
    start = np.zeros(n + 1, dtype=int)
    best[0] = -penalty  # the first segment carries no penalty
    for j in range(min_size, n + 1):
        # The last segment is data[i:j], of min_size..window runs; it starts at 0 or after a
        # segment of its own (i >= min_size).
        lengths = np.arange(min_size, min(window, j) + 1)
        starts = j - lengths
        allowed = (starts == 0) | (starts >= min_size)
        lengths, starts = lengths[allowed], starts[allowed]
        total = best[starts] + penalty + costs[lengths, starts]
        k = int(np.argmin(total))
        best[j], start[j] = total[k], starts[k]
    bounds, j = [], n
    while j > 0:
        bounds.append(int(start[j]))
        j = int(start[j])
    return _moved(data, _merged(data, sorted(bounds) + [n], penalty), min_size, window)[:-1]


def _merged(data, bounds: list[int], penalty: float) -> list[int]:
    """Merge neighbouring segments, the best gain first, while a merge lowers the cost."""
    cost = [_l1_cost(data[a:b]) for a, b in zip(bounds, bounds[1:])]

    def gain(k: int) -> float:  # of merging segment k with segment k + 1
        return cost[k] + cost[k + 1] + penalty - _l1_cost(data[bounds[k] : bounds[k + 2]])

    gains = [gain(k) for k in range(len(cost) - 1)]
    while gains and max(gains) > 0:
        k = max(range(len(gains)), key=gains.__getitem__)
        cost[k : k + 2] = [_l1_cost(data[bounds[k] : bounds[k + 2]])]
        del bounds[k + 1]
        del gains[k]
        for neighbour in (k - 1, k):
            if 0 <= neighbour < len(gains):
                gains[neighbour] = gain(neighbour)
    return bounds


def _moved(data, bounds: list[int], min_size: int, window: int) -> list[int]:
    """Each boundary moved, within ``window`` runs, to where its two segments cost least: a
    merge leaves the boundary where the short segments had it, not where the long ones want it."""
    for k in range(1, len(bounds) - 1):
        before, here, after = bounds[k - 1], bounds[k], bounds[k + 1]
        candidates = range(max(before + min_size, here - window), min(after - min_size, here + window) + 1)
        # The cost of each place, then (on a tie) whether it moves: a tie keeps it where it is.
        costs = [(_l1_cost(data[before:b]) + _l1_cost(data[b:after]), b != here, b) for b in candidates]
        bounds[k] = min(costs)[2]
    return bounds


def steps(values: list[float], threshold: float = STEP_THRESHOLD, window: int = WINDOW) -> list[int]:
    """Indices of the runs at which a step change happened (the first run of a new level);
    ``window`` at least ``len(values)`` makes the fit exact."""
    if any(v is None for v in values) or len(values) < 2 * MIN_SEGMENT:
        return []
    level = statistics.median(values)
    sigma = noise(values)
    penalty = max(3 * sigma, threshold * abs(level)) * MIN_SEGMENT
    starts = segments(values, penalty, window=window)
    out = []
    for k in range(1, len(starts)):
        before = statistics.median(values[starts[k - 1] : starts[k]])
        after = statistics.median(values[starts[k] : starts[k + 1] if k + 1 < len(starts) else len(values)])
        if before and abs(after - before) > max(threshold * abs(before), 3 * sigma):
            out.append(starts[k])
    return out


def trends(entries: list[RunEntry], metric: str = "total_s") -> dict[str, dict]:
    """Per cell: the points (run_id, created, median) in run order and the step indices."""
    out: dict[str, dict] = {}
    for entry in entries:
        for cell_id, cell in entry.cells.items():
            value = cell.medians.get(metric)
            if value is None:
                continue
            out.setdefault(cell_id, {"points": [], "steps": []})["points"].append(
                (entry.run_id, entry.created, value)
            )
    for trend in out.values():
        trend["steps"] = steps([p[2] for p in trend["points"]])
    return out
