"""A merged report of two torch versions built from the stored real cell report
(tests/data/warm-8runs.json) with the real result types: the same 8 samples, each given
its round, one side scaled by a known factor per metric, and each side's environment a
resolved set (a CPU-only 2.13.0+cpu, or a CUDA 2.14.1 with nvidia-* and triton). What a
verdict banner, a build-kind line or a memory word needs; no figure here is asserted as a
measurement."""

from __future__ import annotations

from pathlib import Path

import msgspec

from harness.analysis.judge import conclude
from harness.analysis.stats import report_stats
from harness.result import CellInfo, CellReport, EnvRecord, MatrixReport, read_any

STORED = Path(__file__).resolve().parent.parent / "data" / "warm-8runs.json"

COMMON = {"transformers": "5.17.0", "sentence-transformers": "6.0.1", "numpy": "2.4.6"}
CPU_SET = {"torch": "2.13.0+cpu", **COMMON}
CUDA_SET = {
    "torch": "2.14.1",
    **COMMON,
    "nvidia-cublas-cu13": "13.0.0.19",
    "nvidia-cudnn-cu13": "9.13.0.50",
    "nvidia-nccl-cu13": "2.27.7",
    "triton": "3.5.0",
}


def cell(torch: str, mode: str, packages: dict[str, str], scale: dict[str, float]) -> CellReport:
    """The stored cell as torch ``torch`` in ``mode``: samples in rounds 0..7, each metric
    multiplied by its ``scale`` (1 when not named), its probe's packages ``packages``."""
    stored = read_any(STORED)
    info = CellInfo(
        id=f"all-MiniLM-L6-v2-torch{torch}-{mode}-cpu",
        model=stored.cell.model,
        source=stored.cell.source,
        mode=mode,
        device="cpu",
        torch=torch,
    )
    samples = [
        msgspec.structs.replace(
            s,
            round=s.index,
            metrics={k: v * scale.get(k, 1.0) for k, v in s.metrics.items()},
        )
        for s in stored.samples
    ]
    environment = msgspec.structs.replace(stored.environment, packages=dict(packages))
    report = msgspec.structs.replace(stored, cell=info, samples=samples, environment=environment)
    report.stats = report_stats(report)
    return conclude(report)


def pair_report(
    scale: dict[str, float] | None = None, modes: tuple[str, ...] = ("warm",), cuda: bool = True
) -> MatrixReport:
    """torch 2.13.0 (+cpu) against 2.14.1 (a CUDA build when ``cuda``, else +cpu too), in
    ``modes``; 2.14.1's metrics scaled by ``scale`` (default: memory x1.75, total x1.09)."""
    scale = scale if scale is not None else {"memory_mb": 1.75, "total_s": 1.09, "process_wall_s": 1.09}
    other = CUDA_SET if cuda else {**CPU_SET, "torch": "2.14.1+cpu"}
    cells = {}
    for mode in modes:
        for c in (cell("2.13.0", mode, CPU_SET, {}), cell("2.14.1", mode, other, scale)):
            cells[c.id] = c
    stored = read_any(STORED)
    envs = {
        version: EnvRecord(torch=version, status="ok", packages=dict(packages), python="3.12.3")
        for version, packages in (("2.13.0", CPU_SET), ("2.14.1", other))
    }
    return MatrixReport(
        run_id="synthetic-pair",
        created=stored.started,
        harness=stored.harness,
        matrix={"torch": ["2.13.0", "2.14.1"]},
        environments=envs,
        cells=cells,
    )
