"""Targets and recommendations: what the numbers mean for a user.

Every recommendation is built from the figures of the report it is about (which stage
dominates, which packages cost most, how fast the weights load for their size), so two
different reports never get the same canned paragraph.
"""

from __future__ import annotations

import math

from harness.result import METRICS, CellReport, Recommendation, TargetResult, cosine_threshold
from harness.result.cell import Level

# Reading a small model's weights from the page cache should go at several hundred MB/s
# even on a small machine; far below that, init is not about bytes but about Python work.
SLOW_INIT_MB_PER_S = 100.0
NOISY_CV = 0.10
# Packages that come in through transformers' optional integrations, never needed to encode.
NOT_NEEDED_TO_ENCODE = {"scipy", "sympy", "sklearn", "pandas", "matplotlib"}


def conclude(report: CellReport) -> CellReport:
    """A measured report's statistics, targets and recommendations, filled in (after the
    last sample: numpy and scipy must not be mapped while cold samples run)."""
    from harness.analysis.stats import report_stats

    report.stats = report_stats(report)
    report.target_results = target_results(report)
    report.recommendations = recommendations(report)
    return report


def target_results(report: CellReport) -> dict[str, TargetResult]:
    """Each target of the report against the median of its metric (metrics without figures
    are left out)."""
    out = {}
    for metric, target in report.targets.items():
        median = report.median(metric)
        if median is not None:
            out[metric] = TargetResult(target=target, value=median, met=median <= target)
    return out


def _fmt(metric: str, value: float) -> str:
    unit = METRICS[metric].unit if metric in METRICS else "s"
    if unit == "MB":
        return f"{value:.0f} MB"
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def _memory_remedy(report: CellReport) -> str:
    """What to do about memory, from what this cell's environment is: the CPU wheel index
    when its torch is a CUDA build on a CPU-only run (the CUDA libraries are most of the
    growth), else that most of it is torch's own libraries. Not ONNX: on the default model
    it grew memory more than torch float32 did (docs/optimization.md)."""
    from harness.analysis.environments import CPU_INDEX_HOST, CUDA, PLAIN, torch_build

    packages = report.environment.packages if report.environment else {}
    build = torch_build(packages)
    # PyPI's Linux torch without a local version is the CUDA build even where the probe did
    # not list its nvidia libraries (macOS and Windows wheels without one are CPU-only).
    linux = report.machine is not None and "linux" in (report.machine.os or "").lower()
    cuda = build is not None and (build.kind == CUDA or (build.kind == PLAIN and linux))
    if build is not None and cuda and report.cell.device.startswith("cpu"):
        return (
            f"torch {build.version} here is not a CPU-only build on a CPU-only run: its CUDA "
            f"libraries are loaded for nothing; install torch from PyTorch's CPU wheel index, "
            f"{CPU_INDEX_HOST} (pip install 'torch=={build.public}' --index-url with that index), and "
            f"compare the two builds in one run to see the saving."
        )
    return (
        "Most of it is torch's own libraries: a smaller model changes little; measure a CPU-only "
        "torch build or another backend in one run before switching (docs/optimization.md)."
    )


def recommendations(report: CellReport) -> list[Recommendation]:
    """Advice drawn from one cell report's statistics."""
    targets = report.targets
    mode = report.cell.mode
    recs: list[Recommendation] = []

    def add(level: Level, text: str) -> None:
        recs.append(Recommendation(level=level, text=text))

    median = report.median
    total, imports, init = median("total_s"), median("import_s"), median("init_s")
    first, memory, wall = median("first_encode_s"), median("memory_mb"), median("process_wall_s")
    if total is None:
        add("warn", "No sample finished, so there is nothing to judge: see the failures above.")
        return recs

    if total <= targets.get("total_s", float("inf")):
        add(
            "ok",
            f"{mode.capitalize()} start ({_fmt('total_s', total)}) meets the target "
            f"({_fmt('total_s', targets['total_s'])}).",
        )
    else:
        add(
            "warn",
            f"{mode.capitalize()} start ({_fmt('total_s', total)}) misses the target "
            f"({_fmt('total_s', targets['total_s'])}): load the model in a background thread, "
            f"or keep it in a long-lived process, so that users do not wait on it.",
        )

    if imports is not None:
        share = imports / total if total else 0
        attribution = report.import_attribution.packages[:4] if report.import_attribution else []
        top = ", ".join(f"{p.package} {_fmt('import_s', p.self_s)}" for p in attribution)
        if imports > targets.get("import_s", float("inf")) or share > 0.5:
            text = f"Imports take {_fmt('import_s', imports)}, {share:.0%} of the load"
            text += f"; the costliest packages are {top}." if top else "."
            heavy = [p.package for p in attribution if p.package in NOT_NEEDED_TO_ENCODE]
            if heavy:
                verb = "is" if len(heavy) == 1 else "are"
                text += (
                    f" {', '.join(heavy)} {verb} not needed to encode: they come in through "
                    f"transformers/sentence-transformers' optional integrations; import the model "
                    f"stack lazily (inside the function that first needs it) so that commands which "
                    f"never embed do not pay for it."
                )
            else:
                text += " Import sentence_transformers lazily, where it is first needed."
            add("warn", text)

    weights_bytes = report.model_info.weights_bytes if report.model_info else None
    if init is not None:
        if weights_bytes:
            weights_mb = weights_bytes / 2**20
            rate = weights_mb / init if init > 0 else float("inf")
            if init > targets.get("init_s", float("inf")) or rate < SLOW_INIT_MB_PER_S:
                add(
                    "warn",
                    f"Model init takes {_fmt('init_s', init)} for {weights_mb:.0f} MB of weights "
                    f"({rate:.0f} MB/s): slow for the model's size; check that weights are safetensors "
                    f"(memory-mapped) and that the tokenizer is the fast one.",
                )
            else:
                add(
                    "ok",
                    f"Model init takes {_fmt('init_s', init)} for {weights_mb:.0f} MB of weights "
                    f"({rate:.0f} MB/s).",
                )
        elif init > targets.get("init_s", float("inf")):
            add(
                "warn",
                f"Model init takes {_fmt('init_s', init)}, over the {_fmt('init_s', targets['init_s'])} "
                f"target.",
            )

    if first is not None and first > targets.get("first_encode_s", float("inf")):
        add(
            "warn",
            f"The first encode takes {_fmt('first_encode_s', first)}"
            + (
                f" against {_fmt('encode_s', report.steady_encode_s)} steady state"
                if report.steady_encode_s is not None
                else ""
            )
            + ": run one throw-away encode at start-up.",
        )

    if memory is not None:
        if memory > targets.get("memory_mb", float("inf")):
            add(
                "warn",
                f"Memory grows by {_fmt('memory_mb', memory)} (target "
                f"{_fmt('memory_mb', targets['memory_mb'])}); peak RSS "
                f"{_fmt('peak_rss_mb', median('peak_rss_mb') or 0)}. {_memory_remedy(report)}",
            )
        else:
            add(
                "ok",
                f"Memory grows by {_fmt('memory_mb', memory)}, within the "
                f"{_fmt('memory_mb', targets['memory_mb'])} target.",
            )

    if wall is not None and total and wall - total > 0.25:
        add(
            "info",
            f"The whole process takes {_fmt('process_wall_s', wall)}: "
            f"{_fmt('process_wall_s', wall - total)} more than the load itself goes to interpreter "
            f"start-up.",
        )

    cosine = report.embedding_cosine_min
    if cosine is not None and (report.cell.backend, report.cell.dtype) != ("torch", "float32"):
        threshold = report.cosine_threshold or cosine_threshold(report.cell.dtype)
        export = f" (export, once: {_fmt('total_s', report.export_s)})" if report.export_s is not None else ""
        if cosine < threshold:
            add(
                "warn",
                f"{report.cell.variant} CHANGES THE MODEL'S OUTPUT: embedding cosine {cosine:.4f} "
                f"against torch float32, below {threshold:g}; its speed is not a like-for-like win.",
            )
        else:
            add(
                "ok",
                f"{report.cell.variant}: total {_fmt('total_s', total)}{export}, embeddings agree with "
                f"torch float32 (cosine ≥ {math.floor(cosine * 1e4) / 1e4:.4f}, threshold {threshold:g}).",
            )

    bytecode = report.environment.bytecode if report.environment else None
    if bytecode and not bytecode.compiled:
        add(
            "warn",
            f"Only {bytecode.fraction or 0:.0%} of the stack's modules have compiled bytecode: first "
            f"starts compile them. Install with pip (which compiles), or uv with UV_COMPILE_BYTECODE=1.",
        )

    cold = report.cold_cache
    if mode == "cold" and cold is not None and not cold.verified:
        add("warn", f"Cold numbers are UNVERIFIED: {cold.note}")

    contended = report.contended_samples
    if contended:
        add(
            "warn",
            f"{contended} of {len(report.counted)} samples were taken under contention (they waited "
            f"for a CPU for over a quarter of their wall time): their times say as much about the "
            f"machine's other work as about the load. Measure on a quiet machine.",
        )

    for metric in ("total_s", "process_wall_s"):
        summary = report.stats.get(metric)
        if summary and summary.stdev and summary.median:
            cv = summary.stdev / summary.median
            if cv > NOISY_CV:
                add(
                    "info",
                    f"{METRICS[metric].label} varies by {cv:.0%} between samples: the machine is noisy; "
                    f"add runs (--runs) before trusting a small difference.",
                )
                break
    return recs
