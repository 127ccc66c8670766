"""The figures a sample can carry, the targets they are judged against, and the cold threshold.

One catalogue for every stage: the probe fills most metrics, the runner adds
``process_wall_s``, ``spawn_to_exit_s``, ``startup_s`` and the whole process's CPU figures
(os.wait4); tables, comparisons and gates pick from it by key.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    unit: str  # "s", "MB", "count", or "" (a plain number: a cosine similarity)

    @property
    def is_time(self) -> bool:
        return self.unit == "s"

    @property
    def kind(self) -> str:
        """What the figure is: a ``time``, a ``size`` (MB), or a ``score`` (a plain number)."""
        return {"s": "time", "MB": "size", "count": "count"}.get(self.unit, "score")


# The words a change of each kind of metric is read in. The verdicts themselves (and the
# JSON's ``verdict`` field, which gates read) stay "slower"/"faster" for every metric: a
# larger footprint fails a gate on memory as a slower load fails one on time. Only what a
# person reads changes: memory is "larger", never "slower".
CHANGE_WORDS: dict[str, dict[str, str]] = {
    "time": {"slower": "slower", "faster": "faster"},
    "size": {"slower": "larger", "faster": "smaller"},
    "score": {"slower": "higher", "faster": "lower"},
    "count": {"slower": "more", "faster": "fewer"},
}


def verdict_word(metric: str, verdict: str) -> str:
    """The word a person reads for ``verdict`` on ``metric``: ``larger`` for a memory
    metric called ``slower``; verdicts without a direction (no change, inconclusive) and
    unknown metrics as they are."""
    kind = METRICS[metric].kind if metric in METRICS else "time"
    return CHANGE_WORDS[kind].get(verdict, verdict)


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
        # Measured only in samples that are not counted (warm-ups), after the end mark: see
        # CellReport.steady_encode_s.
        Metric("encode_s", "Steady-state encode", "s"),
        Metric("cuda_init_s", "CUDA init", "s"),
        Metric("to_device_s", "Model to device", "s"),
        Metric("startup_s", "Interpreter start-up", "s"),
        # Spawn to the probe's end mark (the first embedding back): what the user's own
        # process does; spawn_to_exit_s adds the harness's work after the mark and exit.
        Metric("process_wall_s", "Process wall time", "s"),
        Metric("spawn_to_exit_s", "Spawn to exit (harness work included)", "s"),
        # CPU time (every thread) at the same boundaries as the wall clocks, in the probe.
        Metric("import_cpu_s", "Import CPU time", "s"),
        Metric("init_cpu_s", "Model init CPU time", "s"),
        Metric("first_encode_cpu_s", "First encode CPU time", "s"),
        Metric("total_cpu_s", "Total load CPU time", "s"),
        # The time the probe's threads waited for a CPU, start to end mark (schedstat).
        Metric("runqueue_wait_s", "Waiting for a CPU", "s"),
        # The whole process, spawn to exit, from os.wait4's rusage.
        Metric("process_user_s", "Process user CPU", "s"),
        Metric("process_system_s", "Process system CPU", "s"),
        Metric("process_cpu_s", "Process CPU (user + system)", "s"),
        Metric("voluntary_switches", "Voluntary context switches", "count"),
        Metric("involuntary_switches", "Involuntary context switches", "count"),
        Metric("major_faults", "Major page faults", "count"),
        Metric("rss_start_mb", "RSS at start", "MB"),
        Metric("rss_end_mb", "RSS at end", "MB"),
        Metric("memory_mb", "Memory delta (RSS)", "MB"),
        Metric("peak_rss_mb", "Peak RSS", "MB"),
        Metric("uss_mb", "USS at end", "MB"),
        Metric("cuda_max_allocated_mb", "CUDA max allocated", "MB"),
        # After the timing: the lowest cosine similarity, over a fixed set of sentences,
        # between this sample's embeddings and the torch float32 model's in its environment.
        Metric("embedding_cosine_min", "Embedding cosine (min)", ""),
    ]
}

# The metrics that tables, comparisons and gates are about.
HEADLINE_METRICS = ["total_s", "import_s", "init_s", "first_encode_s", "memory_mb", "process_wall_s"]

# The CPU figures, added to the tables by ``harness merge --cpu`` (and in every report's
# statistics, ``compare --metric``, ``targets:`` and ``gate:`` like any other metric).
CPU_METRICS = [
    "total_cpu_s",
    "import_cpu_s",
    "init_cpu_s",
    "first_encode_cpu_s",
    "runqueue_wait_s",
    "process_cpu_s",
    "involuntary_switches",
    "major_faults",
]

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

# The backends a cell can load with, each with the dtypes it can do (its first: the default).
# torch/float32 is what a cell is when it names neither; its id then has no suffix.
BACKEND_DTYPES: dict[str, tuple[str, ...]] = {
    "torch": ("float32", "float16", "bfloat16"),
    "onnx": ("float32", "qint8"),
    "openvino": ("float32",),
}
BACKENDS = tuple(BACKEND_DTYPES)
DTYPES = tuple(dict.fromkeys(d for dtypes in BACKEND_DTYPES.values() for d in dtypes))
DEFAULT_BACKEND, DEFAULT_DTYPE = "torch", "float32"
# Below these, a cell's embeddings no longer agree with the torch float32 model's: the
# default thresholds of embedding_cosine_min, for quantized dtypes and for the others.
COSINE_THRESHOLDS = {"float": 0.99, "qint8": 0.95}


def cosine_threshold(dtype: str, thresholds: dict[str, float] | None = None) -> float:
    """The lowest embedding cosine a cell of ``dtype`` may have and still agree."""
    found = {**COSINE_THRESHOLDS, **(thresholds or {})}
    return found["qint8"] if dtype == "qint8" else found["float"]


def backend_problem(backend: str, dtype: str) -> str | None:
    """Why a backend and dtype cannot go together, or None."""
    if backend not in BACKEND_DTYPES:
        return f"{backend!r} is not a backend; write {', '.join(BACKENDS)}"
    if dtype not in DTYPES:
        return f"{dtype!r} is not a dtype; write {', '.join(DTYPES)}"
    if dtype not in BACKEND_DTYPES[backend]:
        return f"backend {backend} cannot do {dtype}; it does {', '.join(BACKEND_DTYPES[backend])}"
    return None


# `harness profile` flags that set a target: flag -> metric.
TARGET_FLAGS = {
    "--target-total": "total_s",
    "--target-import": "import_s",
    "--target-init": "init_s",
    "--target-first-encode": "first_encode_s",
    "--target-memory": "memory_mb",
}
