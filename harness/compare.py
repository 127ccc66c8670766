"""Comparison of a report against a baseline.

This module owns every comparison between reports. For now it holds the older script's
per-metric percent change of medians; the statistical verdict (ratio with its interval,
significance, slower/faster/no change) belongs here too.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.result import HEADLINE_METRICS

# Within this band a change is shown as "about the same" (≈): below what five samples on
# a shared machine can tell apart.
NEUTRAL_BAND = 0.05


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


def percent_changes(current: dict, baseline: dict, metrics: list[str] = HEADLINE_METRICS) -> list[MetricChange]:
    """Median of each metric in the current report against the baseline's."""
    out = []
    for metric in metrics:
        cur = (current.get("stats") or {}).get(metric)
        base = (baseline.get("stats") or {}).get(metric)
        if cur and base:
            out.append(MetricChange(metric, cur["median"], base["median"]))
    return out
