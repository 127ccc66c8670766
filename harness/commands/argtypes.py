"""Argument types and options that several verbs share, so that every verb says the same
thing, in one line, about the same mistake.

Runs, warm-ups and timeouts are checked with the bounds of harness.result.settings, the same
rule matrix.yaml and the noxfile use: ``--timeout inf`` or ``--runs 1000000000`` is refused
here, before anything runs, never at the first sample.
"""

from __future__ import annotations

import argparse
import math

from harness.analysis.baseline import DEFAULT_ROOT as DEFAULT_BASELINES
from harness.result.settings import RUNS, TIMEOUT, WARMUPS, Bound


def _bounded(bound: Bound):
    def parse(text: str):
        try:
            return bound.parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


# Counted samples (--runs), warm-ups and other counts (--warmups, --encode-repeats), and
# seconds per sample (--timeout): finite, and within the settings' bounds.
positive_int = _bounded(RUNS)
non_negative_int = _bounded(WARMUPS)
timeout_seconds = _bounded(TIMEOUT)


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} must be a finite number")
    return value


def positive_float(text: str) -> float:
    """A finite number above 0 (targets; seconds and megabytes)."""
    value = _number(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{value:g} must be above 0")
    return value


def fraction(text: str) -> float:
    value = _number(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"{value:g} must be between 0 and 1 (0.05 = 5%)")
    return value


def metric_list(text: str) -> tuple[str, ...]:
    """A comma-separated list of metric keys (--fail-on total_s,process_wall_s)."""
    from harness.result import METRICS

    names = tuple(m.strip() for m in text.split(",") if m.strip())
    for name in names:
        if name not in METRICS:
            raise argparse.ArgumentTypeError(f"unknown metric {name!r}; known: {', '.join(METRICS)}")
    return names


def add_baseline_options(parser: argparse.ArgumentParser) -> None:
    """--baseline FILE|auto and --baselines-dir, as report and summary take them."""
    parser.add_argument(
        "--baseline",
        metavar="FILE|auto",
        help="compare with this report; 'auto': this machine's stored baseline (none stored: noted)",
    )
    parser.add_argument(
        "--baselines-dir",
        default=DEFAULT_BASELINES,
        help="where stored baselines live (default: %(default)s)",
    )


def add_verdict_options(parser: argparse.ArgumentParser) -> None:
    """--threshold, --alpha and --fail-on: how compare and ci compare call a verdict."""
    parser.add_argument(
        "--threshold",
        type=fraction,
        default=0.05,
        help="smallest change that matters, as a fraction (default: %(default)s)",
    )
    parser.add_argument(
        "--alpha", type=fraction, default=0.05, help="significance level of the test (default: %(default)s)"
    )
    parser.add_argument(
        "--fail-on",
        type=metric_list,
        default=("total_s", "process_wall_s"),
        metavar="METRICS",
        help="comma-separated metrics whose slowdown exits 1 (default: total_s,process_wall_s; '' for none)",
    )
