"""Comparison of a report against a baseline: how sure can we be that it changed?

Load times are few (each sample takes seconds) and noisy (shared machines), so a bare
percentage is not enough. For each cell present in both reports and each metric, the
comparison computes, from the counted samples:

* the **ratio of medians** current/baseline (the median, because load times have a long
  tail: one page fault or busy neighbour must not move the figure);
* a **bootstrap 95% confidence interval of that ratio**: both samples are resampled
  independently (scipy.stats.bootstrap, two samples, ``paired=False``, percentile method,
  fixed seed so the same samples always give the same interval);
* a **Mann-Whitney U p-value** (scipy.stats.mannwhitneyu, two-sided): a rank test, so it
  assumes no distribution and one outlier moves it by one rank at most.

Verdict (``threshold`` t, default 5%; ``alpha``, default 0.05):

* ``slower``: ratio > 1 + t, **and** p < alpha, **and** the interval's low end > 1;
* ``faster``: ratio < 1 - t, **and** p < alpha, **and** the interval's high end < 1;
* ``no change``: the whole interval lies inside [1 - t, 1 + t];
* ``inconclusive``: anything else; the samples cannot tell.

Why both tests: on five samples each, either one alone is fragile. The rank test ignores
how far apart the samples are (a 0.1% shift with no overlap is "significant"); the
threshold on the ratio takes care of that. The bootstrap interval of a median of five
is coarse and, alone, would call a change from one lucky resample pattern; requiring the
rank test to agree guards against it.

The busy-machine guard: on a shared machine a whole profile can run while a neighbour
compiles, and then every metric of it is slower, truly, for reasons that are not the
stack's. No test on those samples alone can tell that from a regression, so the
comparison also looks at a control metric the stack cannot affect: interpreter start-up
(``startup_s``, spawn to the probe's first line, before any import of the stack). When
the median start-up of one side is more than 25% slower (no significance test here: the
guard can only withhold a verdict, so it errs towards suspecting the machine; a quiet
start-up wobbles by a few per cent, a busy 2-core machine doubles it), a ``slower``
verdict there (or ``faster``, if the baseline was the busy side) becomes ``inconclusive``
with that reason. It can only withhold a verdict, never make one; a change that itself
slows interpreter start-up (a new ``.pth`` file in the environment) would be withheld too,
and the reason says why. A change is only called when the size (ratio), the ordering
(ranks) and the interval all point the same way, which keeps false alarms on an A/A
comparison at or below alpha (see README, "Reading a comparison", for measured rates).

``min_detectable`` answers "how many runs do I need?": the smallest slowdown that this very
comparison would have called ``slower`` with these sample sizes and the spread observed
here. It moves the current sample onto the baseline's median (keeping its spread) and
scales it up by a shift s. Two inputs of the decision then follow s exactly: the ratio and
the bootstrap interval both scale by 1 + s (the resampling draws depend only on the sample
sizes), so the ratio passes the threshold and the interval's low end passes 1 at shifts
computed from one bootstrap. The third, the rank test, only improves as s grows (each
x_i/y_j - 1 crossed adds one pair to U); so the first shift past both bounds at which
p < alpha is found by bisection on s: about 45 rank tests of O(n log n) each, to 1e-12, for
any sample sizes (never the n1 x n2 crossings, which are 10^8 for 10,000 samples a side).
The answer is exact, not a grid approximation: the shift just past the crossing where the
verdict turns ``slower``. When even a complete separation of the two samples cannot reach
p < alpha (the exact two-sided Mann-Whitney minimum is 2 / C(n1 + n2, n1): 0.33 for 2+2
runs, 0.10 for 3+3, 0.029 for 4+4, 0.008 for 5+5), no change can be detected at all and it
is None.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from harness.analysis.stats import median_interval
from harness.errors import UserError
from harness.result import HEADLINE_METRICS, METRICS, CellReport, read_cells, verdict_word

# Within this band a change is shown as "about the same" (≈) by the console's quick
# median-only view: below what five samples on a shared machine can tell apart.
NEUTRAL_BAND = 0.05

DEFAULT_THRESHOLD = 0.05
DEFAULT_ALPHA = 0.05
DEFAULT_FAIL_ON = ("total_s", "process_wall_s")

VERDICTS = ("slower", "faster", "no change", "inconclusive")

# The control metric: interpreter start-up (spawn to the probe's first line) runs before
# anything the stack under test imports, so when it is much slower on one side, that side's
# machine was busier. CONTROL_THRESHOLD is far above start-up's own jitter (a quiet start-up
# wobbles by a few ms of ~20 ms); a busy 2-core machine doubles it.
CONTROL_METRIC = "startup_s"
CONTROL_THRESHOLD = 0.25

# min_detectable's bisection stops when its bracket is this narrow (relative); the shift it
# returns lies just past the crossing: PAST_ABS + PAST_REL x the shift beyond it.
BISECT_TOLERANCE = 1e-12
PAST_ABS, PAST_REL = 1e-6, 1e-9


class NoCommonCellError(UserError):
    """Two reports that share no cell: nothing to compare."""


def _examples(cell_ids: list[str], shown: int = 2) -> str:
    """``a, b and 3 more`` (``no cell`` for none): a list of cells said in one short line."""
    if not cell_ids:
        return "no cell"
    more = len(cell_ids) - shown
    return ", ".join(cell_ids[:shown]) + (f" and {more} more" if more > 0 else "")


class CrossMachineError(UserError):
    """Two reports from different machines; their differences would be the machines'."""


@dataclass(frozen=True)
class MetricChange:
    metric: str
    current: float
    baseline: float

    @property
    def change(self) -> float:
        """Relative change of the median, (current - baseline) / baseline."""
        return (self.current - self.baseline) / self.baseline if self.baseline else 0.0

    @property
    def direction(self) -> str:
        if abs(self.change) < NEUTRAL_BAND:
            return "same"
        return "slower" if self.change > 0 else "faster"

    @property
    def word(self) -> str:
        """The direction as a person reads it for this metric (``larger`` for memory)."""
        return "same" if self.direction == "same" else verdict_word(self.metric, self.direction)


def percent_changes(
    current: CellReport, baseline: CellReport, metrics: list[str] = HEADLINE_METRICS
) -> list[MetricChange]:
    """Median of each metric in the current report against the baseline's (no statistics:
    the quick view the profile console prints; ``compare`` gives the verdict)."""
    out = []
    for metric in metrics:
        cur, base = current.stats.get(metric), baseline.stats.get(metric)
        if cur and base:
            out.append(MetricChange(metric, cur.median, base.median))
    return out


@dataclass(frozen=True)
class Decision:
    """The verdict on two samples of one metric, with the figures it rests on."""

    verdict: str  # one of VERDICTS
    reason: str  # one sentence: why the verdict
    ratio: float = math.nan
    ci_low: float = math.nan
    ci_high: float = math.nan
    p_value: float | None = None


@dataclass
class MetricVerdict:
    cell_id: str
    metric: str
    baseline_median: float
    current_median: float
    ratio: float
    ci_low: float
    ci_high: float
    p_value: float | None
    verdict: str  # one of VERDICTS
    min_detectable: float | None  # smallest detectable slowdown as a fraction (0.08 = 8%)
    n_baseline: int
    n_current: int
    reason: str  # one sentence: why the verdict

    @property
    def change(self) -> float:
        return self.ratio - 1.0

    @property
    def word(self) -> str:
        """The verdict as a person reads it for this metric: ``larger``/``smaller`` for a
        size (memory), ``slower``/``faster`` for a time; ``verdict`` keeps the gate's word."""
        return verdict_word(self.metric, self.verdict)


def verdict_dict(verdict: MetricVerdict) -> dict:
    """A verdict as JSON data: its fields (``verdict`` stays slower/faster/no change/
    inconclusive, what gates and readers key on) and ``word``, the display word beside it."""
    return {**asdict(verdict), "word": verdict.word}


@dataclass
class Comparison:
    verdicts: list[MetricVerdict]
    missing_in_current: list[str]
    missing_in_baseline: list[str]
    failed: dict[str, str]  # cell id -> reason
    cross_machine: bool
    threshold: float
    alpha: float
    gated_metrics: tuple[str, ...]
    baseline_label: str = "baseline"
    current_label: str = "current"
    fingerprints: dict[str, list[str]] = field(default_factory=dict)  # side -> machine fingerprints
    busy: dict[str, str] = field(default_factory=dict)  # cell id -> why one side's machine was busier
    # The cells both sides hold (compared, or failed on a side); none: nothing was compared.
    common_cells: list[str] = field(default_factory=list)

    def require_common_cells(self) -> Comparison:
        """This comparison, or a one-line error when the two sides share no cell: a gate
        that compared nothing must not pass as "no regression" (issue 27)."""
        if self.common_cells:
            return self
        raise NoCommonCellError(
            f"{self.baseline_label} and {self.current_label} have no cell in common "
            f"({_examples(self.missing_in_current)} against {_examples(self.missing_in_baseline)}): "
            "nothing was compared; compare two runs of the same cells (same model, torch, mode, device)"
        )

    def regressions(self) -> list[MetricVerdict]:
        """Verdicts that fail a CI job: slower on a gated metric."""
        return [v for v in self.verdicts if v.verdict == "slower" and v.metric in self.gated_metrics]

    def exit_code(self) -> int:
        return 1 if self.regressions() else 0

    def to_dict(self) -> dict:
        return {
            "kind": "comparison",
            "baseline": self.baseline_label,
            "current": self.current_label,
            "threshold": self.threshold,
            "alpha": self.alpha,
            "gated_metrics": list(self.gated_metrics),
            "cross_machine": self.cross_machine,
            "fingerprints": self.fingerprints,
            "verdicts": [verdict_dict(v) for v in self.verdicts],
            "missing_in_current": self.missing_in_current,
            "missing_in_baseline": self.missing_in_baseline,
            "failed": self.failed,
            "busy": self.busy,
            "regressions": [f"{v.cell_id} {v.metric}" for v in self.regressions()],
            "exit_code": self.exit_code(),
        }


# --- statistics -------------------------------------------------------------------------


def _pct(x: float) -> str:
    return f"{x * 100:+.1f}%"


def min_p_value(n1: int, n2: int) -> float:
    """Smallest two-sided p a Mann-Whitney U test can reach with these sizes (exact, no ties):
    the two samples completely separated, 2 of the C(n1+n2, n1) rank orderings. In log space,
    so that any size works (C(1030, 515) is past a float)."""
    log_orderings = math.lgamma(n1 + n2 + 1) - math.lgamma(n1 + 1) - math.lgamma(n2 + 1)
    return min(1.0, 2.0 * math.exp(-log_orderings))


def min_runs_for(alpha: float) -> int:
    """Fewest runs per side (equal sizes) with which any change can be significant."""
    n = 1
    while min_p_value(n, n) >= alpha:
        n += 1
    return n


def _rank_test(base, cur) -> tuple[float, float]:
    """Mann-Whitney U of ``cur`` against ``base`` less its mean under no change (> 0: cur
    ranks higher), and the two-sided p (1 when every value is tied: nothing to rank)."""
    import numpy as np
    from scipy import stats

    if np.all(base == base[0]) and np.all(cur == base[0]):
        return 0.0, 1.0
    result = stats.mannwhitneyu(cur, base, alternative="two-sided")
    p = float(result.pvalue)
    return float(result.statistic) - base.size * cur.size / 2, 1.0 if math.isnan(p) else p


def ratio_interval(base, cur) -> tuple[float, float]:
    """Bootstrap 95% interval of median(cur) / median(base), resampling each independently."""
    import numpy as np

    base, cur = np.asarray(base, float), np.asarray(cur, float)
    ratio = float(np.median(cur) / np.median(base))
    if np.ptp(base) == 0 and np.ptp(cur) == 0:
        return ratio, ratio  # no spread: nothing to resample

    low, high = median_interval(base, cur, combine=lambda base_median, cur_median: cur_median / base_median)
    return min(low, ratio), max(high, ratio)


def decide(
    base,
    cur,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    alpha: float = DEFAULT_ALPHA,
    metric: str | None = None,
) -> Decision:
    """The verdict on two samples of one metric, and the figures it rests on."""
    import numpy as np

    base, cur = np.asarray(base, float), np.asarray(cur, float)
    if base.size < 2 or cur.size < 2:
        return Decision(
            "inconclusive",
            f"{base.size} baseline and {cur.size} current samples: need at least 2 "
            f"on each side (and {min_runs_for(alpha)} to detect anything at alpha "
            f"{alpha:g})",
        )
    base_median, cur_median = float(np.median(base)), float(np.median(cur))
    if base_median <= 0:
        return Decision(
            "inconclusive", f"the baseline median is {base_median:g}: a ratio to it means nothing"
        )
    ratio = cur_median / base_median
    low, high = ratio_interval(base, cur)
    p = _rank_test(base, cur)[1]
    floor = min_p_value(base.size, cur.size)
    cannot = None
    if floor >= alpha:
        cannot = (
            f"with {base.size} and {cur.size} samples no change can reach p < {alpha:g} (the smallest "
            f"possible p is {floor:.2g}); run at least {min_runs_for(alpha)} samples on each side"
        )
    return verdict_for(ratio, low, high, p, threshold=threshold, alpha=alpha, cannot=cannot, metric=metric)


def verdict_for(
    ratio: float,
    low: float,
    high: float,
    p: float,
    *,
    threshold: float,
    alpha: float,
    centre: str = "median",
    more: str = "add runs",
    cannot: str | None = None,
    metric: str | None = None,
) -> Decision:
    """The verdict words from a ratio, its 95% interval and a test's p (the rules in the
    module docstring), shared by every comparison. ``centre`` names what the ratio is of,
    ``more`` what to add to narrow it, ``cannot`` why no p could reach alpha (if so);
    ``metric`` words the reason for its kind (``larger`` for memory, see verdict_word)."""
    up, down = (verdict_word(metric or "", w) for w in ("slower", "faster"))
    figures = {"ratio": ratio, "ci_low": low, "ci_high": high, "p_value": p}
    ci = f"95% CI {_pct(low - 1)} to {_pct(high - 1)}"
    band = f"±{threshold * 100:g}%"
    if p < alpha and ratio > 1 + threshold and low > 1:
        return Decision(
            "slower",
            f"{centre} {_pct(ratio - 1)} ({ci}), p={p:.3g} < {alpha:g}: {up} beyond the {band} threshold",
            **figures,
        )
    if p < alpha and ratio < 1 - threshold and high < 1:
        return Decision(
            "faster",
            f"{centre} {_pct(ratio - 1)} ({ci}), p={p:.3g} < {alpha:g}: {down} beyond the {band} threshold",
            **figures,
        )
    if 1 - threshold <= low and high <= 1 + threshold:
        return Decision(
            "no change", f"the {ci} lies inside {band}: any change is smaller than the threshold", **figures
        )
    if cannot:
        why = cannot
    elif abs(ratio - 1) > threshold and p >= alpha:
        why = (
            f"{centre} {_pct(ratio - 1)} but p={p:.3g} ≥ {alpha:g}: the samples overlap too much to tell; "
            f"{more}"
        )
    elif abs(ratio - 1) > threshold:
        why = f"{centre} {_pct(ratio - 1)} and p={p:.3g}, but the {ci} includes no change; {more}"
    else:
        why = (
            f"{centre} {_pct(ratio - 1)} is inside {band}, but the {ci} reaches beyond it; "
            f"{more} to narrow it"
        )
    return Decision("inconclusive", why, **figures)


def min_detectable(
    base,
    cur,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    alpha: float = DEFAULT_ALPHA,
    ci_low: float | None = None,
) -> float | None:
    """Smallest slowdown (fraction) that :func:`decide` would call ``slower`` with these sample
    sizes and the spread observed here; None when no change can be significant. ``ci_low``:
    the low end of ``ratio_interval(base, cur)`` when the caller has it (saves a bootstrap).
    Method in the module docstring."""
    import numpy as np

    base, cur = np.asarray(base, float), np.asarray(cur, float)
    if base.size < 2 or cur.size < 2 or min_p_value(base.size, cur.size) >= alpha:
        return None
    base_median, cur_median = float(np.median(base)), float(np.median(cur))
    if base_median <= 0 or cur_median <= 0:
        return None
    scale = base_median / cur_median
    noise = cur * scale  # the current spread, centred on the baseline
    # Shifted by s, the ratio and the interval are (1 + s) times their values at s = 0.
    ratio0 = float(np.median(noise)) / base_median
    low0 = (ratio_interval(base, cur)[0] if ci_low is None else ci_low) * scale
    if low0 <= 0:
        return None
    start = max((1 + threshold) / ratio0, 1 / low0) - 1

    def past(shift: float) -> float:
        return shift + PAST_ABS + PAST_REL * abs(shift)

    def ranks_say_slower(shift: float) -> bool:
        above_mean, p = _rank_test(base, noise * (1 + shift))
        return above_mean > 0 and p < alpha

    low = past(start)
    if ranks_say_slower(low):
        return low
    # The rank test improves as the shift grows: double it until the samples separate enough,
    # then bisect down to the crossing where the verdict turns.
    high = low
    for _ in range(64):
        high = 2 * (1 + high) - 1
        if ranks_say_slower(high):
            break
    else:
        return None
    while high - low > BISECT_TOLERANCE * (1 + high):
        middle = (low + high) / 2
        low, high = (low, middle) if ranks_say_slower(middle) else (middle, high)
    return past(high)


# --- reports ----------------------------------------------------------------------------


def _fingerprints(cells: dict[str, CellReport]) -> list[str]:
    return sorted({c.fingerprint for c in cells.values() if c.fingerprint is not None})


def _failure(report: CellReport) -> str | None:
    if report.status != "failed":
        return None
    return report.failure.reason if report.failure else "failed"


def check_options(threshold: float, alpha: float, metrics) -> None:
    """A threshold, an alpha and metric names any comparison can use, or a one-line error."""
    if not 0 < threshold < 1:
        raise UserError(f"threshold {threshold:g}: use a fraction between 0 and 1 (0.05 = 5%)")
    if not 0 < alpha < 1:
        raise UserError(f"alpha {alpha:g}: use a probability between 0 and 1 (e.g. 0.05)")
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise UserError(f"unknown metric {unknown[0]!r}; known: {', '.join(METRICS)}")


def compare_cells(
    baseline: dict[str, CellReport],
    current: dict[str, CellReport],
    *,
    threshold: float = DEFAULT_THRESHOLD,
    alpha: float = DEFAULT_ALPHA,
    fail_on=DEFAULT_FAIL_ON,
    metrics=HEADLINE_METRICS,
    allow_cross_machine: bool = False,
    baseline_label: str = "baseline",
    current_label: str = "current",
) -> Comparison:
    """Compare cell reports (by cell id) of two runs, cell by cell and metric by metric."""
    check_options(threshold, alpha, [*fail_on, *metrics])
    fps = {"baseline": _fingerprints(baseline), "current": _fingerprints(current)}
    cross = bool(fps["baseline"] and fps["current"] and fps["baseline"] != fps["current"])
    if cross and not allow_cross_machine:
        raise CrossMachineError(
            f"{baseline_label} and {current_label} come from different machines (fingerprints "
            f"{', '.join(fps['baseline'])} vs {', '.join(fps['current'])}); compare runs of one machine, "
            f"or pass --allow-cross-machine"
        )
    comparison = Comparison(
        verdicts=[],
        missing_in_current=sorted(set(baseline) - set(current)),
        missing_in_baseline=sorted(set(current) - set(baseline)),
        failed={},
        cross_machine=cross,
        threshold=threshold,
        alpha=alpha,
        gated_metrics=tuple(fail_on),
        baseline_label=baseline_label,
        current_label=current_label,
        fingerprints=fps,
        common_cells=sorted(set(baseline) & set(current)),
    )
    for cell_id in comparison.common_cells:
        base_report, cur_report = baseline[cell_id], current[cell_id]
        failures = [
            f"{side}: {why}"
            for side, why in (("baseline", _failure(base_report)), ("current", _failure(cur_report)))
            if why
        ]
        if failures:
            comparison.failed[cell_id] = "; ".join(failures)
            continue
        busier, why_busy = busier_side(base_report, cur_report)
        if busier:
            comparison.busy[cell_id] = why_busy
        for metric in metrics:
            base, cur = base_report.values(metric), cur_report.values(metric)
            if not base and not cur:
                continue  # not measured on either side (e.g. CUDA figures on CPU)
            verdict = _verdict(cell_id, metric, base, cur, threshold, alpha)
            # A change in the direction the busy machine explains is not the stack's.
            if (busier, verdict.verdict) in (("current", "slower"), ("baseline", "faster")):
                verdict.verdict = "inconclusive"
                verdict.reason = f"{verdict.reason}; but {why_busy}"
            comparison.verdicts.append(verdict)
    return comparison


def busier_side(base_report: CellReport, cur_report: CellReport) -> tuple[str | None, str]:
    """Which side ran on a busier machine, by the control metric: ('current'|'baseline', why)
    when its median start-up was more than CONTROL_THRESHOLD slower, else (None, '')."""
    import numpy as np

    base, cur = base_report.values(CONTROL_METRIC), cur_report.values(CONTROL_METRIC)
    if len(base) < 2 or len(cur) < 2 or min(np.median(base), np.median(cur)) <= 0:
        return None, ""
    ratio = float(np.median(cur) / np.median(base))
    if ratio > 1 + CONTROL_THRESHOLD:
        side, change = "current", ratio - 1
    elif 1 / ratio > 1 + CONTROL_THRESHOLD:
        side, change = "baseline", 1 / ratio - 1
    else:
        return None, ""
    return side, (
        f"interpreter start-up, which runs before the stack loads, took {change * 100:+.0f}% in the "
        f"{side} run: its machine was busier; re-run on a quiet machine"
    )


def _verdict(
    cell_id: str, metric: str, base: list[float], cur: list[float], threshold: float, alpha: float
) -> MetricVerdict:
    import numpy as np

    if base and cur:
        decision = decide(base, cur, threshold=threshold, alpha=alpha, metric=metric)
        detectable = min_detectable(
            base,
            cur,
            threshold=threshold,
            alpha=alpha,
            ci_low=None if math.isnan(decision.ci_low) else decision.ci_low,
        )
    else:
        decision = Decision(
            "inconclusive",
            f"no counted samples of {metric} in the {'current' if base else 'baseline'} report",
        )
        detectable = None
    return MetricVerdict(
        cell_id=cell_id,
        metric=metric,
        baseline_median=float(np.median(base)) if base else math.nan,
        current_median=float(np.median(cur)) if cur else math.nan,
        ratio=decision.ratio,
        ci_low=decision.ci_low,
        ci_high=decision.ci_high,
        p_value=decision.p_value,
        verdict=decision.verdict,
        min_detectable=detectable,
        n_baseline=len(base),
        n_current=len(cur),
        reason=decision.reason,
    )


def compare_files(baseline_path, current_path, **options) -> Comparison:
    """compare_cells on two report files (cell or matrix reports, of any version this harness
    reads). A file that is not a usable report, or two machines (unless allow_cross_machine),
    is a one-line error."""
    baseline, current = read_cells(baseline_path), read_cells(current_path)
    options.setdefault("baseline_label", str(baseline_path))
    options.setdefault("current_label", str(current_path))
    return compare_cells(baseline, current, **options)
