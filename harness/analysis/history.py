"""History of merged matrix runs, and step detection over it.

``record`` appends one line per merged run to ``<root>/index.jsonl``: the run id, its time,
the machine, and per cell the status and the median of each headline metric. The line
holds the figures themselves, so the history survives the deletion of old reports. A run
id already in the index is not added twice.

Step detection (``trends``) is a small, robust version of what asv does: fit the series of
median totals with piecewise-constant segments by exact dynamic programming, minimising
the sum of absolute deviations from each segment's median plus a penalty per segment (an
L1 "Potts" fit; absolute deviations and medians, so one wild run pulls nothing). Each
segment must hold at least two runs, so a single outlier is never a step: a new level is
flagged once a second run confirms it. The penalty is ``max(3 sigma, threshold x median)``
per point of the shorter side, where sigma is a robust noise estimate (1.4826 x the median
absolute successive difference / sqrt 2, which a step barely moves). A boundary is
reported as a step only if the two segments' medians differ by more than the threshold
(5%) and by more than 3 sigma.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from harness.result import HEADLINE_METRICS, metric_values, read_matrix

DEFAULT_ROOT = "reports/history"
INDEX = "index.jsonl"
STEP_THRESHOLD = 0.05
MIN_SEGMENT = 2


def _median(values: list[float]) -> float | None:
    values = sorted(values)
    if not values:
        return None
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2


def _cell_summary(report: dict) -> dict:
    out = {"status": report.get("status"), "n": len(metric_values(report, "total_s")),
           "fingerprint": (report.get("machine") or {}).get("fingerprint"), "medians": {}}
    for metric in HEADLINE_METRICS:
        median = _median(metric_values(report, metric))
        if median is not None:
            out["medians"][metric] = median
    return out


def record(matrix_report_path: str | os.PathLike, root: str | os.PathLike = DEFAULT_ROOT) -> Path:
    """Append a merged matrix run to the history index; returns the index path."""
    report = read_matrix(matrix_report_path)
    index = Path(root) / INDEX
    if any(e["run_id"] == report["run_id"] for e in load(root)):
        return index
    entry = {
        "run_id": report["run_id"], "created": report["created"], "report": str(matrix_report_path),
        "commit": (report.get("harness") or {}).get("commit"),
        "cells": {cell_id: _cell_summary(cell) for cell_id, cell in report["cells"].items()},
    }
    index.parent.mkdir(parents=True, exist_ok=True)
    # One write of one line in append mode: an interrupted run never corrupts earlier lines.
    with open(index, "a") as fh:
        fh.write(json.dumps(entry, sort_keys=True) + "\n")
    return index


def load(root: str | os.PathLike = DEFAULT_ROOT) -> list[dict]:
    """Every recorded run, oldest first. A line cut short by a crash is skipped."""
    index = Path(root) / INDEX
    if not index.is_file():
        return []
    entries = []
    for line in index.read_text().splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(entry, dict) and "run_id" in entry and isinstance(entry.get("cells"), dict):
            entries.append(entry)
    return sorted(entries, key=lambda e: (e.get("created") or "", e["run_id"]))


def noise(values: list[float]) -> float:
    """Robust noise of a series: from successive differences, so a step barely moves it."""
    diffs = [abs(b - a) for a, b in zip(values, values[1:])]
    if not diffs:
        return 0.0
    return 1.4826 * _median(diffs) / math.sqrt(2)


def segments(values: list[float], penalty: float, min_size: int = MIN_SEGMENT) -> list[int]:
    """Start indices of the optimal L1 piecewise-constant fit (exact DP, O(n^2 log n))."""
    n = len(values)
    if n < 2 * min_size:
        return [0]
    cost = {}

    def seg_cost(i: int, j: int) -> float:  # values[i:j]
        if (i, j) not in cost:
            m = _median(values[i:j])
            cost[(i, j)] = sum(abs(v - m) for v in values[i:j])
        return cost[(i, j)]

    best = [math.inf] * (n + 1)
    start = [0] * (n + 1)
    best[0] = -penalty  # the first segment carries no penalty
    for j in range(min_size, n + 1):
        for i in range(0, j - min_size + 1):
            if i and i < min_size or best[i] == math.inf:
                continue
            c = best[i] + penalty + seg_cost(i, j)
            if c < best[j]:
                best[j], start[j] = c, i
    starts, j = [], n
    while j > 0:
        starts.append(start[j])
        j = start[j]
    return sorted(starts)


def steps(values: list[float], threshold: float = STEP_THRESHOLD) -> list[int]:
    """Indices of the runs at which a step change happened (the first run of a new level)."""
    clean = [v for v in values if v is not None]
    if len(clean) != len(values) or len(values) < 2 * MIN_SEGMENT:
        return []
    level = _median(values)
    sigma = noise(values)
    penalty = max(3 * sigma, threshold * abs(level)) * MIN_SEGMENT
    starts = segments(values, penalty)
    out = []
    for k in range(1, len(starts)):
        before = _median(values[starts[k - 1]:starts[k]])
        after = _median(values[starts[k]:starts[k + 1] if k + 1 < len(starts) else len(values)])
        if before and abs(after - before) > max(threshold * abs(before), 3 * sigma):
            out.append(starts[k])
    return out


def trends(entries: list[dict], metric: str = "total_s") -> dict[str, dict]:
    """Per cell: the points (run_id, created, median) in run order and the step indices."""
    out: dict[str, dict] = {}
    for entry in entries:
        for cell_id, cell in entry["cells"].items():
            value = (cell.get("medians") or {}).get(metric)
            if value is None:
                continue
            out.setdefault(cell_id, {"points": [], "steps": []})["points"].append(
                (entry["run_id"], entry.get("created"), value))
    for trend in out.values():
        trend["steps"] = steps([p[2] for p in trend["points"]])
    return out
