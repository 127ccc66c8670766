"""The figures a sample can carry, the targets they are judged against, and the cold threshold.

One catalogue for every stage: the probe fills most metrics, the runner adds
``process_wall_s`` and ``startup_s``; tables, comparisons and gates pick from it by key.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    unit: str  # "s" or "MB"

    @property
    def is_time(self) -> bool:
        return self.unit == "s"


# Every figure a sample can carry, in display order.
METRICS: dict[str, Metric] = {
    m.key: m
    for m in [
        Metric("total_s", "Total load time", "s"),
        Metric("import_s", "Import time", "s"),
        Metric("import_torch_s", "import torch", "s"),
        Metric("import_st_s", "import sentence_transformers", "s"),
        Metric("import_app_s", "import of the application (entry:)", "s"),
        Metric("init_s", "Model init time", "s"),
        Metric("first_encode_s", "First encode", "s"),
        Metric("encode_s", "Steady-state encode", "s"),
        Metric("cuda_init_s", "CUDA init", "s"),
        Metric("to_device_s", "Model to device", "s"),
        Metric("startup_s", "Interpreter start-up", "s"),
        Metric("process_wall_s", "Process wall time", "s"),
        Metric("rss_start_mb", "RSS at start", "MB"),
        Metric("rss_end_mb", "RSS at end", "MB"),
        Metric("memory_mb", "Memory delta (RSS)", "MB"),
        Metric("peak_rss_mb", "Peak RSS", "MB"),
        Metric("uss_mb", "USS at end", "MB"),
        Metric("cuda_max_allocated_mb", "CUDA max allocated", "MB"),
    ]
}

# The metrics that tables, comparisons and gates are about.
HEADLINE_METRICS = ["total_s", "import_s", "init_s", "first_encode_s", "memory_mb", "process_wall_s"]

# The older in-house script's targets; overridable per run and per matrix model.
DEFAULT_TARGETS = {
    "total_s": 5.0,
    "import_s": 1.0,
    "init_s": 3.0,
    "first_encode_s": 0.2,
    "memory_mb": 500.0,
}

# A cold sample whose checked files are more resident than this was not cold.
COLD_RESIDENCY_THRESHOLD = 0.05

MODES = ("cold", "warm")

# `harness profile` flags that set a target: flag -> metric.
TARGET_FLAGS = {
    "--target-total": "total_s",
    "--target-import": "import_s",
    "--target-init": "init_s",
    "--target-first-encode": "first_encode_s",
    "--target-memory": "memory_mb",
}
