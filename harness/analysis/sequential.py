"""Rounds until decided: an anytime-valid verdict on a pair of cells, looked at after every
round, that may stop as soon as it is decided (docs/statistics.md says it for users).

The quantity judged is the one :mod:`harness.analysis.paired` judges: the mean per-round log
ratio log(B / A) of two cells measured in the same rounds (:func:`paired.log_ratios`), shown
as the geometric-mean ratio exp(mean). A fixed-sample t-interval on it is valid once, at a
round count fixed in advance; looked at after every round and stopped at the first verdict
("peeking") it calls an A/A pair slower or faster several times more often than alpha. The
interval here is a **confidence sequence**: with probability at least 1 - alpha it holds the
true mean log ratio at *every* round at once, so a run may stop whenever it likes (when every
pair is decided, at ``max``, when the budget runs out) and every interval it shows keeps its
promise.

The confidence sequence: the scale-invariant t-test martingale of Lai (1976), in the form of
Wang & Ramdas ("Anytime-valid t-tests and confidence sequences for Gaussian means with
unknown variance", arXiv:2310.03722, 2023, section 4): for each candidate mean
m, the likelihood ratio of the maximal scale invariant of the centred data x_i - m (which
does not depend on the unknown spread sigma), mixed over the standardized effect
delta = (mu - m) / sigma ~ N(0, g). Under mu = m it is a nonnegative martingale with mean 1
(in the filtration of that invariant), so by Ville's inequality it ever reaches 1 / alpha
with probability at most alpha, whatever the spread and however the looks are chosen. Its
closed form, with n rounds and R = n (mean - m)^2 / sum (x_i - m)^2:

    M_n(m) = (1 + n g)^((n - 1) / 2) * (1 + n g (1 - R))^(-n / 2)

The set {m : M_n(m) < 1 / alpha} is the interval mean ± c_n * s / sqrt(n) (s the sample sd),
with c_n = sqrt((n - 1) (1 - q_n) / q_n) and q_n = (alpha^(2/n) (1 + n g)^((n-1)/n) - 1) / (n g);
while q_n <= 0 (too few rounds for any evidence to reach 1 / alpha) it is the whole line. So
it is a t-interval whose critical value c_n replaces Student's quantile: about 3.4 from 20
rounds on (Student's is 2.1), the price of looking after every round. It is exact for
independent Gaussian log ratios of any spread; for the drift and the switching load of a
shared machine its error rates are measured by bench/stopping.py on real traces.

Why this one: it needs no bound on the log ratios (the empirical-Bernstein and betting
sequences of Waudby-Smith & Ramdas 2023 need one, and pay for a loose bound with width at
the 5-60 rounds a run has), and it needs no horizon fixed in advance (a group-sequential
design with Lan-DeMets spending spreads alpha over the looks min..max and has its
O'Brien-Fleming boundaries out of reach in the first rounds, where a quiet machine should
decide). ``MIXTURE_VARIANCE`` g sets where it is tightest: with g = 2 and alpha 0.05 an
interval is first drawn at the 4th round (q_n > 0 needs alpha^2 (1 + n g)^(n - 1) > 1), a
quiet machine's +10% is called at the 5th, and c_n at 60 rounds is within 6% of the
tightest any g gives there (g = 0.5, which draws nothing before the 6th round).

The verdict at a round (threshold t, the band [log(1 - t), log(1 + t)] as compare's):

* ``slower``: the interval's low end is above 0 (a change is seen) and the estimate is above
  log(1 + t); ``faster`` mirrored;
* ``no change``: the whole interval lies inside the band;
* otherwise the pair is **open**: more rounds are wanted. That includes a change seen whose
  estimate is inside the band ("changed, below threshold"): its interval still reaches past
  the threshold, so more rounds either push the estimate past it or fit the interval inside
  the band; at ``max`` it ends inconclusive with ``changed`` true.

A pair is **decided** at the first round from ``min_rounds`` on where it is slower, faster or
no change, and keeps that round's verdict, estimate and interval (its stopping time) even if
the run goes on for other pairs. A pair still open at ``max_rounds``, or when the run ends
for its budget, is **inconclusive**, with the smallest slowdown these rounds could have called.

The same functions compute the fixed-sample t-interval (``critical="t"``), so that
bench/stopping.py judges "peeking" and the fixed-count rules with exactly the rule today's
paired verdict applies (:func:`harness.analysis.paired.decide_paired`; a unit test checks
that the two agree).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from harness.analysis.compare import (
    DEFAULT_ALPHA,
    DEFAULT_THRESHOLD,
    PAST_ABS,
    PAST_REL,
    _pct,
    check_options,
)
from harness.errors import UserError

# g, the variance of the standardized effect the mixture weighs (module docstring).
MIXTURE_VARIANCE = 2.0
DEFAULT_MIN_ROUNDS = 3
DEFAULT_MAX_ROUNDS = 30

# The state of a pair at one round; arrays of them hold the index into STATES.
OPEN, SLOWER, FASTER, NO_CHANGE = 0, 1, 2, 3
STATES = ("open", "slower", "faster", "no change")
INCONCLUSIVE = "inconclusive"
DECIDED = frozenset(STATES[1:])

# The two ways an interval is drawn: the confidence sequence, and the fixed-sample
# t-interval of paired.py (valid at one round count fixed in advance, only).
SEQUENCE, FIXED_T = "sequence", "t"


def critical_values(rounds, *, alpha: float = DEFAULT_ALPHA, critical: str = SEQUENCE):
    """The multiplier of s / sqrt(n) that gives the interval's half width after n rounds
    (numpy array, one per entry of ``rounds``); inf where no interval can be drawn yet."""
    import numpy as np
    from scipy import stats

    n = np.asarray(rounds, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        if critical == FIXED_T:
            out = stats.t.ppf(1 - alpha / 2, n - 1)
        elif critical == SEQUENCE:
            g = MIXTURE_VARIANCE
            q = (alpha ** (2 / n) * (1 + n * g) ** ((n - 1) / n) - 1) / (n * g)
            out = np.sqrt((n - 1) * (1 - q) / q)
            out = np.where(q > 0, out, np.inf)
        else:
            raise ValueError(f"critical: {critical!r}")
    return np.where(n >= 2, out, np.inf)


def intervals(logs, *, alpha: float = DEFAULT_ALPHA, critical: str = SEQUENCE):
    """After every round: the mean log ratio and the interval's ends (log scale), three
    arrays of the shape of ``logs``, whose last axis is the rounds (so a 2-D array is many
    runs at once, one per row). The first round has no interval (-inf, inf)."""
    import numpy as np

    x = np.asarray(logs, float)
    n = np.arange(1, x.shape[-1] + 1, dtype=float)
    # Sums of deviations from the first round, not of raw values: the same variance, without
    # the cancellation a sum of squares of values far from zero would suffer.
    d = x - x[..., :1]
    s1, s2 = np.cumsum(d, axis=-1), np.cumsum(d * d, axis=-1)
    mean = x[..., :1] + s1 / n
    with np.errstate(divide="ignore", invalid="ignore"):
        var = np.maximum(s2 - s1 * s1 / n, 0.0) / (n - 1)
        half = critical_values(n, alpha=alpha, critical=critical) * np.sqrt(var / n)
    # An interval of no spread (every round the same) is the point itself, once any is drawn.
    half = np.where(np.isnan(half), np.inf, half)
    return mean, mean - half, mean + half


def states(mean, low, high, *, threshold: float = DEFAULT_THRESHOLD):
    """The state (an index into STATES) of each interval, by the rule in the module docstring."""
    import numpy as np

    up, down = math.log1p(threshold), math.log1p(-threshold)
    out = np.full(np.shape(mean), OPEN, dtype=np.int8)
    out[(low >= down) & (high <= up)] = NO_CHANGE
    out[(low > 0) & (mean > up)] = SLOWER
    out[(high < 0) & (mean < down)] = FASTER
    return out


def stopping_rounds(state, *, min_rounds: int, max_rounds: int):
    """Per run (rows of ``state``, one column per round): the round at which it stops, the
    first from ``min_rounds`` on that is decided, else ``max_rounds`` (or its last round, if it
    has fewer); and whether it was decided then. Two arrays."""
    import numpy as np

    state = np.atleast_2d(state)[:, :max_rounds]
    last = state.shape[-1]
    decided = state != OPEN
    decided[:, : max(min_rounds - 1, 0)] = False
    any_decided = decided.any(axis=-1)
    first = np.argmax(decided, axis=-1) + 1
    return np.where(any_decided, first, last), any_decided


@dataclass(frozen=True)
class IntervalHistory:
    """The estimate and interval after each round, as ratios (for the narrowing plot):
    ``rounds[i]`` rounds gave ``ratio[i]`` within [``low[i]``, ``high[i]``]; an interval not
    drawn yet is [0, inf]."""

    rounds: tuple[int, ...]
    ratio: tuple[float, ...]
    low: tuple[float, ...]
    high: tuple[float, ...]


def interval_history(logs, *, alpha: float = DEFAULT_ALPHA) -> IntervalHistory:
    """The confidence sequence round by round for these per-round log ratios."""
    import numpy as np

    x = np.asarray(logs, float)
    if x.ndim != 1:
        raise ValueError("logs: one run's per-round log ratios (1-D)")
    if x.size == 0:
        return IntervalHistory((), (), (), ())
    mean, low, high = (np.exp(a) for a in intervals(x, alpha=alpha))
    return IntervalHistory(
        tuple(range(1, x.size + 1)), tuple(map(float, mean)), tuple(map(float, low)), tuple(map(float, high))
    )


@dataclass(frozen=True)
class SequentialDecision:
    """Where a pair's metric stands after the rounds so far.

    ``state``: slower, faster, no change (decided), open (more rounds wanted, and allowed)
    or inconclusive (open at ``max_rounds`` or at the end of the budget). ``ratio``,
    ``ci_low``, ``ci_high``: the geometric-mean ratio and its confidence-sequence interval at
    round ``rounds`` (the round it was decided at, or the last one). ``changed``: that
    interval excludes no change (1). ``min_detectable``: the smallest slowdown (fraction)
    these rounds could have called slower, for a pair not decided."""

    state: str
    changed: bool
    ratio: float
    ci_low: float
    ci_high: float
    rounds: int
    decided_at: int | None
    min_detectable: float | None
    reason: str

    @property
    def decided(self) -> bool:
        return self.state in DECIDED


def check_rounds(min_rounds: int, max_rounds: int) -> None:
    """Round limits a sequential verdict can use, or a one-line error."""
    if not 2 <= min_rounds <= max_rounds:
        raise UserError(f"rounds {min_rounds}:{max_rounds}: use MIN:MAX with 2 <= MIN <= MAX (e.g. 3:30)")


def _figures(ratio: float, ci: str, level: float, rounds: int) -> str:
    return f"geometric mean {_pct(ratio - 1)} (anytime {level:.0%} interval {ci}) after {rounds} rounds"


def decide_sequential(
    logs,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    alpha: float = DEFAULT_ALPHA,
    min_rounds: int = DEFAULT_MIN_ROUNDS,
    max_rounds: int = DEFAULT_MAX_ROUNDS,
    final: bool = False,
) -> SequentialDecision:
    """The verdict on one pair's metric from its per-round log ratios so far (oldest first;
    paired.log_ratios gives them). ``final``: no more rounds will come (the budget ran out),
    so a pair still open is inconclusive. Rounds past ``max_rounds`` are not looked at."""
    import numpy as np

    check_options(threshold, alpha, [])
    check_rounds(min_rounds, max_rounds)
    x = np.asarray(logs, float)[:max_rounds]
    if x.ndim != 1 or not np.all(np.isfinite(x)):
        raise ValueError("logs: one run's finite per-round log ratios (1-D)")
    n = x.size
    if n == 0:
        return SequentialDecision(
            INCONCLUSIVE if final else "open",
            False,
            math.nan,
            math.nan,
            math.nan,
            0,
            None,
            None,
            "no round with both samples good yet",
        )
    mean, low, high = intervals(x, alpha=alpha)
    state = states(mean, low, high, threshold=threshold)
    stop, decided = stopping_rounds(state, min_rounds=min_rounds, max_rounds=max_rounds)
    at = int(stop[0])
    i = at - 1
    ratio, ci_low, ci_high = math.exp(mean[i]), math.exp(low[i]), math.exp(high[i])
    changed = bool(low[i] > 0 or high[i] < 0)
    ci = f"{_pct(ci_low - 1)} to {_pct(ci_high - 1)}"
    band = f"±{threshold * 100:g}%"
    if decided[0]:
        word = STATES[state[i]]
        why = {
            "slower": f"slower beyond the {band} threshold",
            "faster": f"faster beyond the {band} threshold",
            "no change": f"the interval lies inside {band}",
        }[word]
        return SequentialDecision(
            word,
            changed,
            ratio,
            ci_low,
            ci_high,
            at,
            at,
            None,
            f"{_figures(ratio, ci, 1 - alpha, at)}: {why}",
        )
    c = float(critical_values([n], alpha=alpha)[0])
    se = float(np.std(x, ddof=1) / math.sqrt(n)) if n >= 2 else math.inf
    needed = max(math.log1p(threshold), c * se)
    min_detectable = math.expm1(needed + PAST_ABS + PAST_REL * needed) if math.isfinite(needed) else None
    ended = final or n >= max_rounds
    if n < min_rounds:
        why = f"{n} of at least {min_rounds} rounds"
    elif changed:
        why = f"changed, but the estimate is inside {band} and the interval reaches beyond it"
    elif abs(ratio - 1) > threshold:
        why = "the estimate is beyond the threshold, but the interval includes no change"
    else:
        why = f"the interval reaches beyond {band}"
    detects = f"; these rounds could call {min_detectable:.1%} or more" if min_detectable is not None else ""
    return SequentialDecision(
        INCONCLUSIVE if ended else "open",
        changed,
        ratio,
        ci_low,
        ci_high,
        n,
        None,
        min_detectable,
        f"{_figures(ratio, ci, 1 - alpha, n)}: {why}" + (detects if ended else "; add rounds"),
    )
