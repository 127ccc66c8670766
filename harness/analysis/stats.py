"""Summary statistics over samples, and the one bootstrap every interval is drawn with.

The interval is a bootstrap 95% confidence interval of the median (percentile method):
load times are skewed (a stray page fault or a busy neighbour makes a long tail), so the
median is the figure we report and compare, and the bootstrap makes no normality
assumption. The resampling seed is fixed so that the same samples always give the same
interval.

Up to ``DIRECT_ABOVE`` values a sample is resampled by scipy.stats.bootstrap (9,999
resamples). Each of those costs as many draws as there are values, which for 10,000 values
a side takes seconds and gigabytes, so a larger sample's resample medians are drawn from
their exact distribution instead: a resample of n values is n uniform draws mapped onto the
sorted values, so its k-th smallest value is the value at ``floor(n * U_(k))``, and the
order statistic U_(k) of n uniforms is Beta(k, n - k + 1) (the next one above it is
U_(k) + (1 - U_(k)) Beta(1, n - k)). Same distribution, same 9,999 resamples, a cost that
does not grow with n.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from harness.result import METRICS, CellReport, Stats

CONFIDENCE = 0.95
N_RESAMPLES = 9999
SEED = 20261124
DIRECT_ABOVE = 200  # values; larger samples get their resample medians drawn directly


def _resampled_medians(data, rng, resamples: int):
    """The medians of ``resamples`` bootstrap resamples of ``data``, drawn directly."""
    import numpy as np

    ordered = np.sort(data)
    n = ordered.size

    def value_at(order_statistic):
        return ordered[np.minimum((order_statistic * n).astype(np.intp), n - 1)]

    middle = (n + 1) // 2 if n % 2 else n // 2
    lower = rng.beta(middle, n - middle + 1, resamples)
    if n % 2:
        return value_at(lower)
    upper = lower + (1 - lower) * rng.beta(1, n - middle, resamples)
    return (value_at(lower) + value_at(upper)) / 2


def median_interval(*samples, combine: Callable | None = None) -> tuple[float, float]:
    """The percentile bootstrap interval (CONFIDENCE) of ``combine(median of each sample)``
    (the median itself for one sample), each sample resampled independently, fixed seed."""
    import numpy as np
    from scipy import stats

    combine = combine or (lambda median: median)
    rng = np.random.default_rng(SEED)
    if max(len(s) for s in samples) > DIRECT_ABOVE:
        statistics = combine(*(_resampled_medians(np.asarray(s, float), rng, N_RESAMPLES) for s in samples))
        low, high = np.percentile(statistics, [50 * (1 - CONFIDENCE), 50 * (1 + CONFIDENCE)])
        return float(low), float(high)

    def statistic(*resamples, axis=-1):
        return combine(*(np.median(r, axis=axis) for r in resamples))

    result = stats.bootstrap(
        samples,
        statistic,
        paired=False,
        vectorized=True,
        axis=-1,
        confidence_level=CONFIDENCE,
        n_resamples=N_RESAMPLES,
        method="percentile",
        random_state=rng,
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def summarize(values: Sequence[float]) -> Stats | None:
    """n, mean, median, stdev, min, max and ci95 of one metric; None for no values."""
    import numpy as np

    data = np.asarray(values, dtype=float)
    n = int(data.size)
    if n == 0:
        return None
    median = float(np.median(data))
    if n == 1:
        ci95 = None  # one value: no interval
    elif float(data.min()) == float(data.max()):
        ci95 = (median, median)  # no spread to resample: the interval is the value itself
    else:
        ci95 = median_interval(data)
    return Stats(
        n=n,
        mean=float(data.mean()),
        median=median,
        stdev=float(data.std(ddof=1)) if n > 1 else None,
        min=float(data.min()),
        max=float(data.max()),
        ci95=ci95,
    )


def report_stats(report: CellReport) -> dict[str, Stats]:
    """Statistics of every metric that the report's counted samples carry."""
    out: dict[str, Stats] = {}
    for key in METRICS:
        summary = summarize(report.values(key))
        if summary is not None:
            out[key] = summary
    return out
