"""History of merged matrix runs, and step detection over it.

``record`` appends one line per merged run to ``<root>/index.jsonl``: the run id, its time,
the machine, per cell the status, the median of each headline metric with its 95% interval
and the environment it ran in, and per environment the resolved package set. The line holds
the figures themselves, so the history survives the deletion of old reports.

A history of any length stays correct:

* A new run is appended with one ``write`` on an ``O_APPEND`` descriptor, then fsync'd: a
  reader sees the whole line or none of it, and the lines before it are never rewritten.
* A run id is never added twice. Merging a run again (a resumed run, ``RESUME=<run id>``,
  merged after its interrupted first part) updates its entry in place: the whole index is
  written to a temporary file and renamed over the old one, so a crash leaves the old index
  or the new one, never half of either. Both happen under a lock file (``.index.lock``), so
  two merges at once do not lose each other's line.
* A line cut short (a killed writer, a full disk) is reported in one warning and skipped;
  the lines before it are kept, and the next append starts on a fresh line rather than
  gluing itself onto the torn one.

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

import contextlib
import math
import os
import statistics
from dataclasses import dataclass
from pathlib import Path

import msgspec

from harness.result import (
    HEADLINE_METRICS,
    MatrixReport,
    WriteError,
    append_bytes,
    read_bytes,
    write_atomic,
)

DEFAULT_ROOT = "reports/history"
INDEX = "index.jsonl"
LOCK = ".index.lock"
# An index is read whole; a run of 50 cells and a few environments is some 20 kB a line, so
# this holds tens of thousands of runs.
MAX_INDEX_BYTES = 1024 * 1024 * 1024
STEP_THRESHOLD = 0.05
MIN_SEGMENT = 2
WINDOW = 20  # as asv's solve_potts_approx


class CellSummary(msgspec.Struct, kw_only=True):
    """One cell of one recorded run: what the trend needs, not the samples."""

    status: str | None = None
    n: int = 0
    fingerprint: str | None = None
    medians: dict[str, float] = {}
    # The 95% interval of each median, as the cell's statistics give it (none for one sample).
    intervals: dict[str, tuple[float, float]] = {}
    # The environment it ran in (a key of RunEntry.packages): ``torch-2.13.0``.
    env: str | None = None


class RunEntry(msgspec.Struct, kw_only=True):
    """One line of the index: one merged run."""

    run_id: str
    created: str | None = None
    report: str | None = None
    commit: str | None = None
    cells: dict[str, CellSummary] = {}
    # Per environment (its name, ``torch-2.13.0`` or ``torch-2.13.0@baseline``), the resolved
    # package set: what changed between two runs is read from here, reports or not.
    packages: dict[str, dict[str, str]] = {}


@dataclass
class Index:
    """What the index holds: the runs, oldest first, and what was wrong with it (one line each)."""

    entries: list[RunEntry]
    warnings: list[str]
    torn_tail: bool = False  # the last line has no newline: the next append starts a fresh one


def _summary(cell) -> CellSummary:
    medians, intervals = {}, {}
    for metric in HEADLINE_METRICS:
        values = cell.values(metric)
        if values:
            medians[metric] = statistics.median(values)
        stats = cell.stats.get(metric)
        if stats is not None and stats.ci95 is not None:
            intervals[metric] = tuple(stats.ci95)
    return CellSummary(
        status=cell.status,
        n=len(cell.values("total_s")),
        fingerprint=cell.fingerprint,
        medians=medians,
        intervals=intervals,
        env=cell.cell.env_id,
    )


def _packages(report: MatrixReport) -> dict[str, dict[str, str]]:
    """Per environment, the resolved set: the record merge keeps, else what a cell's probe saw."""
    out: dict[str, dict[str, str]] = {}
    for env in report.environments.values():
        if env.packages:
            out[env.name] = dict(env.packages)
    for cell in report.cells.values():
        if cell.environment is not None and cell.cell.env_id not in out:
            seen = {name: version for name, version in cell.environment.packages.items() if version}
            if seen:
                out[cell.cell.env_id] = seen
    return out


def entry_of(report: MatrixReport, path: str | os.PathLike | None = None) -> RunEntry:
    """The index line of a merged run (read from ``path``, when given)."""
    return RunEntry(
        run_id=report.run_id,
        created=report.created,
        report=str(path) if path else None,
        commit=report.harness.commit,
        cells={cell_id: _summary(cell) for cell_id, cell in report.cells.items()},
        packages=_packages(report),
    )


def encode_entry(entry: RunEntry) -> bytes:
    """One line of the index, its newline included."""
    return msgspec.json.encode(entry, order="sorted") + b"\n"


@contextlib.contextmanager
def _locked(root: Path):
    """The history's lock, held while its index is read and written (fcntl; where there is
    none, no lock: one writer at a time is then the caller's to keep)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    try:
        root.mkdir(parents=True, exist_ok=True)
        fd = os.open(root / LOCK, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as exc:
        raise WriteError(f"{root / LOCK}: cannot be written ({exc.strerror or exc})") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def record(
    report: MatrixReport,
    root: str | os.PathLike = DEFAULT_ROOT,
    *,
    path: str | os.PathLike | None = None,
    warnings: list[str] | None = None,
) -> Path:
    """Add a merged matrix run (read from ``path``, when given) to the history index, or
    update its entry when the run id is already there (a resumed run merged again); returns
    the index path. What was wrong with the index (a torn line, skipped) is added to
    ``warnings``. An index that cannot be written is WriteError (exit 3)."""
    root = Path(root)
    index = root / INDEX
    entry = entry_of(report, path)
    with _locked(root):
        found = read_index(root)
        if warnings is not None:
            warnings.extend(found.warnings)
        previous = next((e for e in found.entries if e.run_id == entry.run_id), None)
        if previous is None:
            # One write of one line in append mode, on a fresh line after a torn one.
            return append_bytes(index, (b"\n" if found.torn_tail else b"") + encode_entry(entry), sync=True)
        # The run was merged before (interrupted, now resumed): its entry takes the new
        # figures and keeps its place (its first merge's time) in the history.
        entry = msgspec.structs.replace(entry, created=previous.created or entry.created)
        if entry == previous:
            return index
        lines = [encode_entry(entry if e.run_id == entry.run_id else e) for e in found.entries]
        return write_atomic(index, b"".join(lines))


def read_index(root: str | os.PathLike = DEFAULT_ROOT) -> Index:
    """Every recorded run, oldest first, and a warning for each line that is not one (a line
    cut short by a killed writer or a full disk is skipped, never fatal). A run id on two
    lines (an index written by two older harnesses at once) counts once: its last line."""
    index = Path(root) / INDEX
    if not index.exists():
        return Index([], [])
    data = read_bytes(index, MAX_INDEX_BYTES, noun="history index")
    lines = data.split(b"\n")
    torn = bool(lines[-1])  # text after the last newline: a line whose writer never finished
    by_id: dict[str, RunEntry] = {}
    bad: list[int] = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            entry = msgspec.json.decode(line, type=RunEntry)
        except (msgspec.DecodeError, RecursionError):
            bad.append(number)
            continue
        by_id[entry.run_id] = entry
    warnings = []
    if torn and bad and bad[-1] == len(lines):
        warnings.append(
            f"{index}: line {len(lines)} is cut short (a writer was killed or the disk filled); "
            f"skipped, the {len(by_id)} run(s) before it are kept"
        )
        bad.pop()
    if bad:
        shown = ", ".join(str(n) for n in bad[:5]) + (", …" if len(bad) > 5 else "")
        warnings.append(f"{index}: {len(bad)} line(s) are not history entries (line {shown}); skipped")
    entries = sorted(by_id.values(), key=lambda e: (e.created or "", e.run_id))
    return Index(entries, warnings, torn_tail=torn)


def load(root: str | os.PathLike = DEFAULT_ROOT, warnings: list[str] | None = None) -> list[RunEntry]:
    """Every recorded run, oldest first; what was wrong with the index is added to ``warnings``."""
    found = read_index(root)
    if warnings is not None:
        warnings.extend(found.warnings)
    return found.entries


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


@dataclass(frozen=True)
class Step:
    """One detected step: the first run of a new level, the median level of the segment
    before it and of its own segment."""

    index: int
    before: float
    after: float

    @property
    def change(self) -> float:
        """Relative change of the level, (after - before) / before."""
        return (self.after - self.before) / self.before if self.before else 0.0


def step_changes(values: list[float], threshold: float = STEP_THRESHOLD, window: int = WINDOW) -> list[Step]:
    """Every step of the series, oldest first: a regression that later recovered is two
    steps (up, then down), and both are kept. ``window`` at least ``len(values)`` makes the
    fit exact."""
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
            out.append(Step(starts[k], before, after))
    return out


def steps(values: list[float], threshold: float = STEP_THRESHOLD, window: int = WINDOW) -> list[int]:
    """Indices of the runs at which a step change happened (the first run of a new level);
    ``window`` at least ``len(values)`` makes the fit exact."""
    return [step.index for step in step_changes(values, threshold, window)]


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
