"""The stopping rule of harness.analysis.sequential, on synthetic data (numpy, seeded):
looked at after every round it keeps an A/A pair's false decisions at or below alpha, where
the fixed-sample t-test looked at after every round ("peeking") exceeds it; it still calls a
real +10% slowdown; and its fixed-sample form is exactly today's paired verdict.

The synthetic machine: per round, both cells' log times share a drift (a random walk, and a
load that switches on and off in spells of 4-12 rounds, adding 10% to both) and each sample
has its own Gaussian noise, whose sd doubles while the load is on. The ratio within a round
cancels the shared drift, not the load's extra noise: the per-round log ratios are
independent, but not identically distributed, which a rule built on Gaussian i.i.d. rounds
must survive.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from harness.analysis import sequential
from harness.analysis.paired import decide_paired, log_ratios
from harness.errors import UserError

ALPHA = 0.05
THRESHOLD = 0.05
RUNS = 4000
MAX_ROUNDS = 60
MIN_ROUNDS = 3


def machine(rng, runs: int, rounds: int, sd: float, slowdown: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-round times of A and B (B = A x (1 + slowdown) in expectation), ``runs`` rows."""
    walk = np.cumsum(rng.normal(0.0, 0.02, (runs, rounds)), axis=1)
    flips = rng.random((runs, rounds)) < 1 / 8  # spells of 8 rounds on average
    load = (np.cumsum(flips, axis=1) + rng.integers(0, 2, (runs, 1))) % 2 == 1
    drift = walk + np.where(load, math.log(1.10), 0.0)
    noise = np.where(load, 2 * sd, sd)
    log_a = math.log(2.0) + drift + noise * rng.standard_normal((runs, rounds))
    log_b = math.log(2.0) + math.log1p(slowdown) + drift + noise * rng.standard_normal((runs, rounds))
    return np.exp(log_a), np.exp(log_b)


def verdicts(logs: np.ndarray, critical: str) -> tuple[np.ndarray, np.ndarray]:
    """Per run: the state it stops in (an index into sequential.STATES) and the round."""
    mean, low, high = sequential.intervals(logs, alpha=ALPHA, critical=critical)
    state = sequential.states(mean, low, high, threshold=THRESHOLD)
    stop, _decided = sequential.stopping_rounds(state, min_rounds=MIN_ROUNDS, max_rounds=MAX_ROUNDS)
    return state[np.arange(len(stop)), stop - 1], stop


def test_aa_false_decisions_stay_within_alpha_where_peeking_exceeds_it():
    # Odds of a wrong outcome, from 200,000 runs of this machine per rule (sd 0.035 a sample,
    # so 0.05 a round's log ratio when quiet, 0.10 under the load): the rule's false-decision
    # rate is about 1.2%, peeking's about 10.6%. With 4,000 runs the test fails by chance only
    # if the rule's count passes 200 (5%) while ~48 are expected: binom(4000, 0.012).sf(200)
    # < 1e-50; or if peeking's falls to 200 or below while ~424 are expected: binom(4000,
    # 0.106).cdf(200) < 1e-30. And it cannot pass by chance for a rule that is wrong: a rule
    # whose true rate is 6.5% (1.5 points above alpha) stays at or below 200 with probability
    # binom(4000, 0.065).cdf(200) ~ 4e-5; peeking, the wrong rule here, is at 10.6%.
    a, b = machine(np.random.default_rng(20261208), RUNS, MAX_ROUNDS, 0.035, 0.0)
    logs = np.log(b / a)
    called = {}
    for name, critical in (("rule", sequential.SEQUENCE), ("peeking", sequential.FIXED_T)):
        state, _stop = verdicts(logs, critical)
        called[name] = int(np.isin(state, [sequential.SLOWER, sequential.FASTER]).sum())
    assert called["rule"] <= ALPHA * RUNS, called
    assert called["peeking"] > ALPHA * RUNS, called
    # The odds the comment quotes, so that they stay true if the sizes change.
    assert stats.binom(RUNS, 0.065).cdf(ALPHA * RUNS) < 1e-4


def test_a_ten_percent_slowdown_is_called_slower():
    # sd 0.05 a round's log ratio (0.035 a sample), no load: 200,000 runs call +10% slower in
    # 99.999% (median 6 rounds). 2,000 runs fall below 99% (20 misses, ~0.02 expected) with
    # probability below binom(2000, 1e-4).sf(19) < 1e-32.
    rng = np.random.default_rng(20261209)
    runs = 2000
    logs = math.log(1.10) + 0.05 * rng.standard_normal((runs, MAX_ROUNDS))
    state, stop = verdicts(logs, sequential.SEQUENCE)
    assert np.mean(state == sequential.SLOWER) >= 0.99
    assert np.median(stop) <= 10


def test_fixed_sample_form_is_todays_paired_verdict():
    rng = np.random.default_rng(7)
    for n in (2, 3, 5, 10, 30):
        for shift in (0.0, 0.03, 0.08, -0.08):
            for _ in range(20):
                a = np.exp(rng.normal(0.0, 0.05, n))
                b = a * np.exp(shift + rng.normal(0.0, 0.05, n))
                mean, low, high = sequential.intervals(log_ratios(a, b), critical=sequential.FIXED_T)
                state = sequential.states(mean, low, high, threshold=THRESHOLD)[-1]
                expected = decide_paired(a, b, threshold=THRESHOLD, alpha=ALPHA).verdict
                got = sequential.STATES[state] if state != sequential.OPEN else "inconclusive"
                assert got == expected, (n, shift)


def test_a_decision_keeps_its_round_and_says_what_it_rests_on():
    rng = np.random.default_rng(3)
    logs = math.log(1.20) + 0.03 * rng.standard_normal(20)
    decision = sequential.decide_sequential(logs, min_rounds=3, max_rounds=30)
    assert decision.state == "slower" and decision.decided and decision.changed
    assert decision.decided_at == decision.rounds < 20
    history = sequential.interval_history(logs)
    i = decision.decided_at - 1
    assert (history.ratio[i], history.low[i], history.high[i]) == (
        decision.ratio,
        decision.ci_low,
        decision.ci_high,
    )
    # Once drawn, the intervals hold the estimate and narrow as rounds come in.
    drawn = [k for k, high in enumerate(history.high) if math.isfinite(high)]
    assert drawn and all(history.low[k] <= history.ratio[k] <= history.high[k] for k in drawn)
    assert history.high[drawn[-1]] - history.low[drawn[-1]] < history.high[drawn[0]] - history.low[drawn[0]]
    assert "slower beyond the ±5% threshold" in decision.reason


def test_open_until_max_then_inconclusive_with_what_it_could_call():
    rng = np.random.default_rng(4)
    logs = 0.15 * rng.standard_normal(8)
    early = sequential.decide_sequential(logs[:5], min_rounds=3, max_rounds=8)
    assert early.state == "open" and early.decided_at is None
    late = sequential.decide_sequential(logs, min_rounds=3, max_rounds=8)
    assert late.state == "inconclusive" and late.min_detectable > THRESHOLD
    budget = sequential.decide_sequential(logs[:5], min_rounds=3, max_rounds=8, final=True)
    assert budget.state == "inconclusive"
    assert sequential.decide_sequential([]).state == "open"
    assert sequential.decide_sequential([], final=True).state == "inconclusive"
    # A/A on a quiet machine: decided "no change", within the band.
    quiet = sequential.decide_sequential(0.02 * rng.standard_normal(30), max_rounds=30)
    assert quiet.state == "no change" and quiet.ci_low >= 0.95 and quiet.ci_high <= 1.05


@pytest.mark.parametrize("rounds", [(1, 10), (5, 4)])
def test_bad_round_limits_are_a_one_line_error(rounds):
    with pytest.raises(UserError, match="MIN:MAX"):
        sequential.decide_sequential([0.0, 0.1], min_rounds=rounds[0], max_rounds=rounds[1])
