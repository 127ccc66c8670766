"""Argument types and options that several verbs share, so that every verb says the same
thing, in one line, about the same mistake."""

from __future__ import annotations

import argparse

from harness.analysis.baseline import DEFAULT_ROOT as DEFAULT_BASELINES


def _number(text: str, kind: type, what: str):
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None


def positive_int(text: str) -> int:
    value = _number(text, int, "a whole number")
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be 1 or more")
    return value


def non_negative_int(text: str) -> int:
    value = _number(text, int, "a whole number")
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} must be 0 or more")
    return value


def positive_float(text: str) -> float:
    value = _number(text, float, "a number")
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{value:g} must be above 0")
    return value


def fraction(text: str) -> float:
    value = _number(text, float, "a number")
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
    parser.add_argument("--baseline", metavar="FILE|auto",
                        help="compare with this report; 'auto': this machine's stored baseline (none stored: noted)")
    parser.add_argument("--baselines-dir", default=DEFAULT_BASELINES,
                        help="where stored baselines live (default: %(default)s)")
