"""Synthetic runs for the dashboard's benchmark and tests: merged matrix reports made of the
real result types (CellReport, EnvRecord, MatrixReport), with steps injected where asked,
each with the package version that moved at it.

Nothing here is measured: the figures are drawn from a seeded generator around a level per
cell, and a step multiplies a cell's level from one run on (and a recovery puts it back).
Statistics are computed cheaply (the interval of five values is their range, an order-
statistic interval of at least 93% coverage), so that a thousand runs build in seconds.
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import msgspec

from harness.result import (
    CellInfo,
    CellReport,
    Environment,
    EnvRecord,
    HarnessInfo,
    Machine,
    MatrixReport,
    Sample,
    Settings,
    Stats,
    cell_id,
    reference_id,
)
from harness.result.cell import Mode

TORCH_VERSIONS = ["2.11.0", "2.12.1", "2.13.0", "2.14.1", "2.15.0"]
BASE_PACKAGES = {
    "numpy": "2.3.4",
    "scipy": "1.16.2",
    "sentence-transformers": "6.0.1",
    "tokenizers": "0.22.1",
    "transformers": "5.17.0",
    "huggingface-hub": "1.0.3",
    "safetensors": "0.6.2",
}
NOISE = 0.01  # relative spread of a sample around its cell's level: a quiet machine
MACHINE = Machine(cpu="Synthetic CPU", fingerprint="synthetic-machine", cores=2)
HARNESS = HarnessInfo(version="0.1.0", commit=None)


@dataclass(frozen=True)
class InjectedStep:
    """From run ``at`` on, the cells of ``env`` (a torch version) are ``factor`` times slower
    and ``package`` moves from ``before`` to ``after``; with ``recover_at``, from that run on
    the level is back and the package moves on to ``fixed``."""

    env: str
    at: int
    factor: float
    package: str
    before: str
    after: str
    recover_at: int | None = None
    fixed: str | None = None


@dataclass
class Layout:
    """Which cells a synthetic matrix has: model x torch x mode."""

    cells: int
    envs: list[str] = field(default_factory=lambda: list(TORCH_VERSIONS))

    def infos(self) -> list[CellInfo]:
        out = []
        modes: tuple[Mode, Mode] = ("cold", "warm")
        for k in range(self.cells):
            torch = self.envs[k % len(self.envs)]
            mode = modes[(k // len(self.envs)) % 2]
            model = f"model{k // (2 * len(self.envs))}"
            out.append(
                CellInfo(
                    id=cell_id(model, torch, mode, "cpu"),
                    model=model,
                    source=f"package:{model}",
                    mode=mode,
                    device="cpu",
                    torch=torch,
                )
            )
        return out


def _stats(values: list[float]) -> Stats:
    return Stats(
        n=len(values),
        mean=statistics.fmean(values),
        median=statistics.median(values),
        stdev=statistics.stdev(values) if len(values) > 1 else None,
        min=min(values),
        max=max(values),
        ci95=(min(values), max(values)) if len(values) > 1 else None,
    )


def packages_at(torch: str, run: int, steps: list[InjectedStep]) -> dict[str, str]:
    """The resolved set of one environment at one run."""
    packages = {**BASE_PACKAGES, "torch": torch}
    for step in steps:
        if step.env != torch or run < step.at:
            continue
        recovered = step.recover_at is not None and run >= step.recover_at
        packages[step.package] = (step.fixed or step.before) if recovered else step.after
    return packages


def factor_at(torch: str, run: int, steps: list[InjectedStep]) -> float:
    factor = 1.0
    for step in steps:
        if (
            step.env == torch
            and run >= step.at
            and not (step.recover_at is not None and run >= step.recover_at)
        ):
            factor *= step.factor
    return factor


def run_id_of(run: int) -> str:
    return f"nightly-{run:04d}"


def _cell(info: CellInfo, level: float, when: str, settings: Settings, packages, rng) -> CellReport:
    sample_list = []
    for index in range(settings.runs):
        total = level * (1 + rng.gauss(0, NOISE))
        sample_list.append(
            Sample(
                index=index,
                warmup=False,
                ok=True,
                round=index,
                metrics={
                    "total_s": total,
                    "process_wall_s": total + 0.3,
                    "import_s": total * 0.6,
                    "init_s": total * 0.3,
                    "startup_s": 0.02,
                },
            )
        )
    report = CellReport(
        status="complete",
        harness=HARNESS,
        started=when,
        finished=when,
        cell=info,
        settings=settings,
        machine=MACHINE,
        environment=Environment(python="3.12.3", packages=dict(packages)),
        samples=sample_list,
    )
    stats = (
        {metric: _stats(report.values(metric)) for metric in sample_list[0].metrics} if sample_list else {}
    )
    return msgspec.structs.replace(report, stats=stats)


def _env(torch: str, run_id: str, packages: dict[str, str], reference: str | None = None) -> EnvRecord:
    return EnvRecord(
        torch=torch,
        status="ok",
        run_id=run_id,
        packages=packages,
        lock=[f"{name}=={version}" for name, version in sorted(packages.items())],
        reference=reference,
    )


def runs(
    n_runs: int,
    n_cells: int,
    *,
    steps: list[InjectedStep] | None = None,
    samples: int = 5,
    seed: int = 20261208,
    start: datetime | None = None,
    reference_runs: frozenset[int] = frozenset(),
) -> Iterator[MatrixReport]:
    """``n_runs`` merged reports, one a night, oldest first. A run in ``reference_runs`` is a
    reference run: it also measures the run before's environments, rebuilt from their locks,
    as ``<cell id>@baseline`` cells in the same rounds."""
    steps = list(steps or [])
    rng = random.Random(seed)
    infos = Layout(n_cells).infos()
    levels = {
        info.id: 1.5 + 0.25 * (k % 7) + (0.8 if info.mode == "cold" else 0.0) for k, info in enumerate(infos)
    }
    start = start or datetime(2026, 1, 1, 3, 23, tzinfo=timezone.utc)
    settings = Settings(runs=samples, warmups=0, timeout_s=300.0)
    torches = sorted({info.torch for info in infos if info.torch})
    for run in range(n_runs):
        when = (start + timedelta(days=run)).isoformat(timespec="seconds")
        run_id = run_id_of(run)
        environments = {torch: _env(torch, run_id, packages_at(torch, run, steps)) for torch in torches}
        cells = {
            info.id: _cell(
                info,
                levels[info.id] * factor_at(info.torch or "", run, steps),
                when,
                settings,
                environments[info.torch or ""].packages,
                rng,
            )
            for info in infos
        }
        if run in reference_runs and run > 0:
            for torch in torches:
                record = _env(torch, run_id, packages_at(torch, run - 1, steps), "baselines/synthetic.json")
                environments[record.key] = record
            for info in infos:
                ref = msgspec.structs.replace(info, id=reference_id(info.id), stack="baseline")
                cells[ref.id] = _cell(
                    ref,
                    levels[info.id] * factor_at(info.torch or "", run - 1, steps),
                    when,
                    settings,
                    packages_at(info.torch or "", run - 1, steps),
                    rng,
                )
        yield MatrixReport(
            run_id=run_id, created=when, harness=HARNESS, environments=environments, cells=cells
        )
