"""The measuring process of a run: every sample of every cell, in the order the plan gives.

    python -m harness.measure.rounds < job.json

The planner (``harness run-cells``, harness/measure/manager.py) decides the order and hands
it over on stdin as a :class:`Job`: a list of slots (cell, sample index, round). In an
interleaved run each round holds every cell once, in a freshly shuffled order, so that the
machine's drift over the run falls on every cell alike; in a sequential run the slots go
cell by cell. Each slot is one fresh probe process, run by its own cell's environment's
Python (harness.measure.runner.CellRun), a cold cell evicting the page cache before it.

Every cell's report is written after each of its samples (status ``partial``), so Ctrl-C,
a crash or a failed cell loses nothing that finished. After the last slot each cell is
finished (import attribution, cold verification, status); statistics come later, in the
planner, once this process has exited.

Import discipline, as the runner's: the standard library, msgspec, harness.result and
harness.measure; rich for the progress display (it maps no library of the model stack).
tests/e2e/test_interleaving_run.py checks that this process maps nothing the probe's stack loads.

Exit status: 0 when every cell completed, 1 when any failed, 130 on Ctrl-C.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import msgspec

from harness.errors import UserError
from harness.measure.envinfo import EnvironmentInfo
from harness.measure.manager import CellJob, Job, Slot, cell_file, write_failed
from harness.measure.probe import EXIT_ENTRY
from harness.measure.runner import CellConfig, CellRun
from harness.result import Failure, FailureKind, ReportError, read_report


def _open(job: CellJob, env: EnvironmentInfo, run_dir: Path, resume: bool) -> CellRun:
    config = CellConfig(
        info=job.info,
        model=env.model(job.info.source),
        settings=job.settings,
        targets=dict(job.targets),
        python=job.python,
        app_paths=tuple(job.app_paths),
        cosine_threshold=job.cosine_threshold,
        inherit_env=job.inherit_env,
    )
    path = cell_file(run_dir, job.info)
    earlier = None
    if resume:
        try:
            earlier = read_report(path)
        except ReportError:
            earlier = None
    if not resume:
        # A stale report from an earlier attempt must not pass for this attempt's result.
        path.unlink(missing_ok=True)
    run = CellRun(config, path, environment=env.environment)
    if earlier is not None and earlier.cell.id == job.info.id:
        # What is on disk is kept: the samples, and the import attribution of the warm-up
        # that made it (a resumed cell may have no warm-up left to make another).
        run.report.samples = list(earlier.samples)
        run.report.started = earlier.started
        if earlier.import_attribution is not None and earlier.import_attribution.ok:
            run.report.import_attribution = earlier.import_attribution
    run.prepare()
    return run


class Display:
    """One progress display for the whole run: a rich bar on a terminal (done/total
    samples, elapsed, an ETA from the samples measured so far), else one line per round
    (or per cell, cell by cell)."""

    def __init__(self, slots: list[Slot], cells: dict[str, CellJob]):
        self.slots = slots
        self.cells = cells
        self.started = time.monotonic()
        self.group_started = self.started
        self.failures = 0
        self.progress = None
        if sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self.progress = Progress(
                TextColumn("{task.description}", markup=False),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=Console(stderr=True),
            )
            self.task = self.progress.add_task("samples", total=len(slots))
            self.progress.start()

    def done(self, position: int, sample) -> None:
        """The slot at ``position`` (0-based) has its sample."""
        slot = self.slots[position]
        self.failures += not sample.ok
        if self.progress is not None:
            where = f"round {slot.round}" if slot.round is not None else slot.cell
            self.progress.update(self.task, completed=position + 1, description=f"{where}: {slot.cell}")
            return
        following = self.slots[position + 1] if position + 1 < len(self.slots) else None
        key = (lambda s: s.round) if slot.round is not None else (lambda s: s.cell)
        if following is not None and key(following) == key(slot):
            return
        now = time.monotonic()
        elapsed = now - self.started
        eta = elapsed / (position + 1) * (len(self.slots) - position - 1)
        what = f"round {slot.round}" if slot.round is not None else slot.cell
        failed = f", {self.failures} failed" if self.failures else ""
        print(
            f"[{position + 1}/{len(self.slots)} samples] {what} in {now - self.group_started:.1f} s"
            f"{failed}; elapsed {elapsed:.0f} s, ETA {eta:.0f} s",
            flush=True,
        )
        self.group_started = now
        self.failures = 0

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()


def run_job(job: Job) -> int:
    run_dir = Path(job.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    cells = {cell.info.id: cell for cell in job.cells}
    envs: dict[str, EnvironmentInfo] = {}
    runs: dict[str, CellRun] = {}
    failed: set[str] = set()
    for cell in job.cells:
        try:
            if cell.python not in envs:
                sources = sorted({c.info.source for c in job.cells if c.python == cell.python})
                app_paths = sorted({p for c in job.cells if c.python == cell.python for p in c.app_paths})
                envs[cell.python] = EnvironmentInfo.ask(cell.python, sources, app_paths)
            runs[cell.info.id] = _open(cell, envs[cell.python], run_dir, job.resume)
        except UserError as exc:
            # It cannot start (the model will not resolve there, no CUDA, its environment
            # does not answer): failed now; the other cells keep their rounds.
            write_failed(run_dir, [cell], FailureKind.LOAD, f"could not start: {exc}")
            print(f"{cell.info.id}: failed: could not start: {exc}", flush=True)
            failed.add(cell.info.id)
    display = Display(job.slots, cells)
    try:
        for position, slot in enumerate(job.slots):
            run = runs.get(slot.cell)
            if run is None:
                continue
            sample = run.run_sample(slot.index, slot.index < run.config.settings.warmups)
            sample.round = slot.round
            run.report.samples.append(sample)
            run.write()
            display.done(position, sample)
            if sample.exit_code == EXIT_ENTRY:
                # The application's entry point is broken: every later sample would fail alike.
                run._entry_failed(sample)
                failed.add(slot.cell)
                del runs[slot.cell]
    except KeyboardInterrupt:
        display.close()
        for run in runs.values():
            have = len(run.report.samples)
            run.report.failure = Failure(
                kind=FailureKind.INTERRUPTED,
                reason="interrupted",
                detail=f"stopped with {have} of {run.config.settings.samples} samples; --resume goes on",
            )
            run.write()
        print(f"interrupted: every finished sample is in {run_dir}", file=sys.stderr, flush=True)
        return 130
    display.close()
    for cell_id, run in runs.items():
        run.run_extras()  # a cell without warm-ups: its agreement, in one uncounted sample
        if run.finish().status != "complete":
            failed.add(cell_id)
    return 1 if failed else 0


def main() -> int:
    job = msgspec.json.decode(sys.stdin.buffer.read(), type=Job)
    try:
        return run_job(job)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
