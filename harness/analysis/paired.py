"""Paired comparisons within one run: each cell against the cell that differs from it in one
axis only (the torch version, say), judged round by round.

Why paired: a stored-baseline comparison, or a run that measures every cell of one torch
version and then every cell of the next, compares two *blocks* of time. On a shared machine
the drift between two blocks (a neighbour's build starting, the CPU clocking down) is as
large as the changes we look for, and no test on the two blocks alone can tell it from a
change of the stack: more samples only make the test surer of the drift. A run measured in
**interleaved rounds** gives every cell one sample per round, in a shuffled order, so both
samples of a round saw the same machine; the ratio *within* a round cancels the drift, and
the comparison is made on those per-round ratios.

For each pair (reference cell, other cell) and metric:

* the **per-round log ratio** log(other / reference), over the rounds where both samples
  are good (a failed sample drops its round, never shifts the pairing);
* the **geometric-mean ratio** exp(mean log ratio), with a **95% t-interval** on the mean
  log ratio (scipy.stats.t, n - 1 degrees of freedom), exponentiated: ratios multiply, so
  their logs are what averages, and a t-interval needs no resampling (the same rounds
  always give the same interval) and works from 2 rounds;
* a **paired t-test** on the log ratios (scipy.stats.ttest_1samp against 0), two-sided.
  Why not the Wilcoxon signed-rank test: its exact smallest two-sided p is 2 / 2^n, 0.0625
  with 5 rounds (the default ``runs``), so at the default it could never call anything;
  the t-test works at any n >= 2. What would hurt a t-test, a heavy tail (one round where a
  neighbour woke up between the two samples), widens its interval and raises its p: it
  costs detection power, not false alarms.

The verdict words, threshold and alpha are ``compare``'s (:mod:`harness.analysis.compare`):
``slower`` when the ratio is beyond 1 + threshold, p < alpha and the interval's low end is
above 1 (``faster`` mirrored); ``no change`` when the whole interval lies inside ±threshold;
else ``inconclusive``, with *detects ≥*: the smallest slowdown these rounds could have
called ``slower``. With the spread of the log ratios kept and their mean moved to s, the
ratio passes the threshold at s = log(1 + threshold), the interval's low end passes 1 at
s = t(0.975, n-1) x se and the test at s = t(1 - alpha/2, n-1) x se; the largest of the
three, exactly (no bisection: all three are closed forms).

**Unpaired.** A run measured sequentially (its samples carry no round) is still compared,
its samples paired by their order, but each verdict is labelled ``unpaired``: the two
cells' samples were taken in two blocks, so the drift between the blocks is in every
pair, exactly as in a stored-baseline comparison; for such a pair the busy-machine guard
of ``compare`` (interpreter start-up as a control metric) applies too. Interleaved pairs
do not need it: both samples of a round share the machine's state.

The reference side: for the torch axis the run's reference torch version (the matrix key
``reference``; by default the first torch version listed, or the lowest version when the
report records neither), for any other axis the first value in the run's order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from harness.analysis.compare import (
    DEFAULT_ALPHA,
    DEFAULT_FAIL_ON,
    DEFAULT_THRESHOLD,
    PAST_ABS,
    PAST_REL,
    Comparison,
    Decision,
    MetricVerdict,
    busier_side,
    check_options,
    verdict_dict,
    verdict_for,
)
from harness.analysis.stats import CONFIDENCE
from harness.errors import UserError
from harness.result import DEFAULT_BACKEND, DEFAULT_DTYPE, HEADLINE_METRICS, CellReport, MatrixReport

REFERENCE_KEY = "reference"  # the matrix summary's key for the reference torch version
PAIRED, UNPAIRED = "paired", "unpaired"


class NoPairsError(UserError):
    """A paired comparison asked of a report that has no pair along that axis."""


# --- statistics -------------------------------------------------------------------------


def log_ratios(reference, other):
    """log(other / reference) of each pair with both values positive (numpy array)."""
    import numpy as np

    ref, cur = np.asarray(reference, float), np.asarray(other, float)
    usable = (ref > 0) & (cur > 0)
    return np.log(cur[usable] / ref[usable])


def _t_figures(logs) -> tuple[float, float, float, float]:
    """Mean log ratio, its standard error, the 95% interval's half width, and the paired
    t-test's two-sided p (1 when every round agrees on no change, 0 when every round agrees
    on the same change: a spread of zero)."""
    import numpy as np
    from scipy import stats

    n = logs.size
    mean = float(np.mean(logs))
    se = float(np.std(logs, ddof=1) / math.sqrt(n))
    if se == 0:
        return mean, 0.0, 0.0, 1.0 if mean == 0 else 0.0
    half = float(stats.t.ppf(0.5 + CONFIDENCE / 2, n - 1)) * se
    p = float(stats.ttest_1samp(logs, 0.0).pvalue)
    return mean, se, half, p


def decide_paired(
    reference,
    other,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    alpha: float = DEFAULT_ALPHA,
    metric: str | None = None,
) -> Decision:
    """The verdict on paired samples of one metric (reference[i] and other[i] measured in
    the same round), with the figures it rests on; ``metric`` words its reason."""
    logs = log_ratios(reference, other)
    if logs.size < 2:
        return Decision(
            "inconclusive",
            f"{logs.size} round{'s' if logs.size != 1 else ''} with both samples good: need at least 2",
        )
    mean, _se, half, p = _t_figures(logs)
    return verdict_for(
        math.exp(mean),
        math.exp(mean - half),
        math.exp(mean + half),
        p,
        threshold=threshold,
        alpha=alpha,
        centre="geometric mean",
        more="add rounds",
        metric=metric,
    )


def min_detectable_paired(
    reference, other, *, threshold: float = DEFAULT_THRESHOLD, alpha: float = DEFAULT_ALPHA
) -> float | None:
    """Smallest slowdown (fraction) that :func:`decide_paired` would call ``slower`` with
    these rounds and the spread of their log ratios (method in the module docstring)."""
    from scipy import stats

    logs = log_ratios(reference, other)
    n = logs.size
    if n < 2:
        return None
    _mean, se, _half, _p = _t_figures(logs)
    needed = max(
        math.log1p(threshold),
        float(stats.t.ppf(0.5 + CONFIDENCE / 2, n - 1)) * se,
        float(stats.t.ppf(1 - alpha / 2, n - 1)) * se,
    )
    needed += PAST_ABS + PAST_REL * needed  # just past the crossing, as compare's
    return math.expm1(needed)


# --- pairs of cells ---------------------------------------------------------------------


@dataclass(frozen=True)
class CellPair:
    """Two cells that differ in ``axis`` only; ``reference`` is the side compared against."""

    axis: str
    reference: CellReport
    other: CellReport


def axes_of(cells) -> list[str]:
    """Every axis the cells record, in the order CellInfo.axes gives them."""
    out: dict[str, None] = {}
    for cell in cells:
        out.update(dict.fromkeys(cell.cell.axes))
    return list(out)


def reference_value(report: MatrixReport, axis: str) -> str | None:
    """The reference side of ``axis`` in this run (see the module docstring)."""
    from packaging.version import InvalidVersion, Version

    found = dict.fromkeys(c.cell.axes.get(axis) for c in report.cells.values())
    values = [v for v in found if v is not None]
    if not values:
        return None
    if axis == "torch":
        matrix = report.matrix or {}
        listed = [t.get("version") for t in matrix.get("torch") or [] if isinstance(t, dict)]
        for named in (matrix.get(REFERENCE_KEY), *listed):
            if isinstance(named, str) and named in values:
                return named

        def version(text: str):
            try:
                return (0, Version(text), text)
            except InvalidVersion:
                return (1, None, text)

        return min(values, key=version)
    # Backends and dtypes are compared against torch and float32, what a user starts from.
    default = {"backend": DEFAULT_BACKEND, "dtype": DEFAULT_DTYPE}.get(axis)
    return default if default in values else values[0]


def pairs_along(cells: list[CellReport], axis: str, reference: str) -> list[CellPair]:
    """Every (reference cell, other cell) whose axes differ in ``axis`` only, the reference
    cell having ``reference`` there; in the order of the other cells."""

    def rest(cell: CellReport) -> tuple:
        return tuple(sorted((k, str(v)) for k, v in cell.cell.axes.items() if k != axis))

    references = {rest(c): c for c in cells if c.cell.axes.get(axis) == reference}
    out = []
    for cell in cells:
        value = cell.cell.axes.get(axis)
        if value is None or value == reference:
            continue
        ref = references.get(rest(cell))
        if ref is not None:
            out.append(CellPair(axis, ref, cell))
    return out


def paired_values(pair: CellPair, metric: str) -> tuple[list[float], list[float], bool]:
    """The two cells' values of ``metric``, aligned: by round when both cells recorded
    rounds (paired), else by the order of their counted attempts (unpaired). A round or
    position where either sample failed or lacks the metric is left out of both."""
    ref, cur = pair.reference.counted_attempts, pair.other.counted_attempts
    # Paired when every sample either cell has carries its round (a cell still without
    # samples does not make the other one sequential).
    rounds = bool(ref or cur) and all(s.round is not None for s in (*ref, *cur))
    if rounds:
        ref_by = {s.round: s for s in ref if s.round is not None}
        cur_by = {s.round: s for s in cur if s.round is not None}
        keys = sorted(set(ref_by) & set(cur_by))
        aligned = [(ref_by[k], cur_by[k]) for k in keys]
    else:
        aligned = list(zip(sorted(ref, key=lambda s: s.index), sorted(cur, key=lambda s: s.index)))
    both = [
        (a, b) for a, b in aligned if a.counted and b.counted and metric in a.metrics and metric in b.metrics
    ]
    return [a.metrics[metric] for a, _ in both], [b.metrics[metric] for _, b in both], rounds


# --- the comparison ---------------------------------------------------------------------


@dataclass
class PairedVerdict(MetricVerdict):
    """A MetricVerdict (``baseline`` is the reference cell) with what it was paired on."""

    reference_id: str = ""
    axis: str = ""
    pairing: str = PAIRED  # PAIRED (by round) or UNPAIRED (a sequential run, by order)
    # The median of the per-round ratios, shown beside ``ratio`` (their geometric mean, the
    # estimate judged) so that a reader who compares medians sees both (NaN: under 2 rounds).
    median_ratio: float = math.nan


@dataclass
class PairedComparison(Comparison):
    """Every pair of one run along one axis. ``verdicts`` are PairedVerdicts."""

    axis: str = ""
    reference: str = ""
    run_id: str = ""

    @classmethod
    def empty(
        cls,
        run_id: str,
        axis: str,
        reference: str,
        label: str,
        gated: tuple[str, ...],
        threshold: float,
        alpha: float,
    ) -> PairedComparison:
        """No verdicts yet: the pairs of ``run_id`` along ``axis`` against ``reference``
        (shown as ``label``), judged at ``threshold`` and ``alpha``, ``gated`` failing the check."""
        return cls(
            verdicts=[],
            missing_in_current=[],
            missing_in_baseline=[],
            failed={},
            cross_machine=False,
            threshold=threshold,
            alpha=alpha,
            gated_metrics=gated,
            baseline_label=label,
            current_label=run_id,
            axis=axis,
            reference=reference,
            run_id=run_id,
        )

    @property
    def paired_verdicts(self) -> list[PairedVerdict]:
        """``verdicts``, typed as what they are."""
        return [v for v in self.verdicts if isinstance(v, PairedVerdict)]

    @property
    def pairings(self) -> set[str]:
        return {v.pairing for v in self.verdicts if isinstance(v, PairedVerdict)}

    def to_dict(self) -> dict:
        return {
            "kind": "paired comparison",
            "run_id": self.run_id,
            "axis": self.axis,
            "reference": self.reference,
            "threshold": self.threshold,
            "alpha": self.alpha,
            "gated_metrics": list(self.gated_metrics),
            "verdicts": [verdict_dict(v) for v in self.verdicts],
            "failed": self.failed,
            "busy": self.busy,
            "regressions": [f"{v.cell_id} {v.metric}" for v in self.regressions()],
            "exit_code": self.exit_code(),
        }


def _median(values: list[float]) -> float:
    import numpy as np

    return float(np.median(values)) if values else math.nan


def judge_pair(
    pair: CellPair, metric: str, *, threshold: float = DEFAULT_THRESHOLD, alpha: float = DEFAULT_ALPHA
) -> PairedVerdict:
    ref, cur, by_round = paired_values(pair, metric)
    decision = decide_paired(ref, cur, threshold=threshold, alpha=alpha, metric=metric)
    logs = log_ratios(ref, cur)
    pairing = PAIRED if by_round else UNPAIRED
    reason = decision.reason
    if not by_round:
        reason += "; unpaired: measured sequentially, so the drift between the two blocks is in every pair"
    return PairedVerdict(
        cell_id=pair.other.id,
        metric=metric,
        baseline_median=_median(pair.reference.values(metric)),
        current_median=_median(pair.other.values(metric)),
        ratio=decision.ratio,
        ci_low=decision.ci_low,
        ci_high=decision.ci_high,
        p_value=decision.p_value,
        verdict=decision.verdict,
        min_detectable=min_detectable_paired(ref, cur, threshold=threshold, alpha=alpha),
        n_baseline=len(ref),
        n_current=len(cur),
        reason=reason,
        reference_id=pair.reference.id,
        axis=pair.axis,
        pairing=pairing,
        median_ratio=_median([math.exp(x) for x in logs]) if logs.size >= 2 else math.nan,
    )


def compare_within(
    report: MatrixReport,
    axis: str,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    alpha: float = DEFAULT_ALPHA,
    fail_on=DEFAULT_FAIL_ON,
    metrics=HEADLINE_METRICS,
) -> PairedComparison:
    """Every cell of the run against its reference along ``axis``, metric by metric. An
    axis the cells do not record, or one along which no two cells pair, is a one-line
    error (NoPairsError)."""
    check_options(threshold, alpha, [*fail_on, *metrics])
    cells = list(report.cells.values())
    known = axes_of(cells)
    if axis not in known:
        raise UserError(f"--within {axis}: no such axis; the cells have {', '.join(known) or 'none'}")
    reference = reference_value(report, axis)
    pairs = pairs_along(cells, axis, reference) if reference is not None else []
    if reference is None or not pairs:
        values = sorted({str(c.cell.axes.get(axis)) for c in cells})
        raise NoPairsError(
            f"--within {axis}: no two cells of run {report.run_id} differ in {axis} alone "
            f"({axis}: {', '.join(values) or 'none'}); measure at least two {axis} values of one cell"
        )
    comparison = PairedComparison.empty(
        report.run_id, axis, reference, f"{axis} {reference}", tuple(fail_on), threshold, alpha
    )
    for pair in pairs:
        failures = [
            f"{cell.id}: {cell.failure.reason if cell.failure else cell.status}"
            for cell in (pair.reference, pair.other)
            if cell.status == "failed"
        ]
        if failures:
            comparison.failed[pair.other.id] = "; ".join(failures)
            continue
        verdicts = [
            judge_pair(pair, metric, threshold=threshold, alpha=alpha)
            for metric in metrics
            if pair.reference.values(metric) or pair.other.values(metric)
        ]
        if any(v.pairing == UNPAIRED for v in verdicts):
            # Two blocks of time: the stored-baseline comparison's busy-machine guard applies.
            busier, why = busier_side(pair.reference, pair.other)
            if busier:
                comparison.busy[pair.other.id] = why
                for v in verdicts:
                    if (busier, v.verdict) in (("current", "slower"), ("baseline", "faster")):
                        v.verdict, v.reason = "inconclusive", f"{v.reason}; but {why}"
        comparison.verdicts.extend(verdicts)
    return comparison


def describe(comparison: PairedComparison) -> str:
    """One line: what was paired with what, and how."""
    how = {
        frozenset({PAIRED}): "paired by round (interleaved)",
        frozenset({UNPAIRED}): "UNPAIRED (measured sequentially: drift between blocks counts)",
    }.get(frozenset(comparison.pairings), "partly paired by round, partly unpaired")
    return (
        f"each cell against {comparison.axis} {comparison.reference} in the same run, {how}; "
        f"change = geometric mean of per-round ratios, 95% t-interval, paired t-test on the logs"
    )
