"""Summary statistics over samples.

The interval is a bootstrap 95% confidence interval of the median (scipy.stats.bootstrap,
percentile method): load times are skewed (a stray page fault or a busy neighbour makes a
long tail), so the median is the figure we report and compare, and the bootstrap makes no
normality assumption. The resampling seed is fixed so that the same samples always give
the same interval.
"""

from __future__ import annotations

from collections.abc import Sequence

from harness.result import METRICS, metric_values

CONFIDENCE = 0.95
N_RESAMPLES = 9999
SEED = 20261124


def summarize(values: Sequence[float]) -> dict | None:
    """n, mean, median, stdev, min, max and ci95 of one metric; None for no values."""
    import numpy as np
    from scipy import stats

    data = np.asarray(values, dtype=float)
    n = int(data.size)
    if n == 0:
        return None
    summary = {
        "n": n,
        "mean": float(data.mean()),
        "median": float(np.median(data)),
        "stdev": float(data.std(ddof=1)) if n > 1 else None,
        "min": float(data.min()),
        "max": float(data.max()),
        "ci95": None,
    }
    if n == 1 or float(data.min()) == float(data.max()):
        # No spread to resample: the interval is the value itself (n>1), or unknown (n=1).
        summary["ci95"] = [summary["median"], summary["median"]] if n > 1 else None
        return summary
    result = stats.bootstrap(
        (data,), np.median, confidence_level=CONFIDENCE, n_resamples=N_RESAMPLES,
        method="percentile", vectorized=True, axis=-1, random_state=np.random.default_rng(SEED),
    )
    summary["ci95"] = [float(result.confidence_interval.low), float(result.confidence_interval.high)]
    return summary


def report_stats(report: dict) -> dict[str, dict]:
    """Statistics of every metric that the report's counted samples carry."""
    out: dict[str, dict] = {}
    for key in METRICS:
        summary = summarize(metric_values(report, key))
        if summary is not None:
            out[key] = summary
    return out
