"""The planner of a run's measurement, and the process that measures it.

A run has two phases. nox builds every environment first (harness/envs/); then
``harness run-cells`` plans the samples here and hands them to one measuring process
(``python -m harness.measure.rounds``), which runs each sample as a fresh probe process in
its own cell's environment and writes ``<run dir>/<cell id>.json`` as samples finish.

The order (:func:`schedule`): in an interleaved run (the default) a warm-up round and then
``runs`` counted rounds, each holding every cell once, shuffled afresh by a seeded
``random.Random`` (the cells that a paired comparison sets against each other kept next
to each other); the seed and every round's order go into ``run.json``
(harness.result.RunPlan), and a sample's ``round`` indexes them. In a sequential run the
samples go cell by cell and have no round. ``--resume`` measures only the samples a
report lacks, each in its recorded round.

The measuring process is a separate one because a cold cell must start where nothing has
mapped torch, scipy or the model, or the page cache would keep them warm for it: this
module and that process import nothing heavier than the standard library, msgspec and the
result format.

A cell here is a matrix cell (harness.matrix): anything with ``id``, ``info`` (CellInfo),
``settings`` (Settings), ``planned`` (PlannedCell), ``targets``, ``model.source``,
``model.name``, ``env_id`` and ``torch`` (``version``, ``label``).
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import msgspec

from harness.errors import UserError
from harness.result import (
    RUN_FILE,
    CellInfo,
    CellReport,
    FailureKind,
    ReportError,
    RunPlan,
    Settings,
    read_report,
)


class CellJob(msgspec.Struct, kw_only=True):
    """One cell as the measuring process runs it."""

    info: CellInfo
    settings: Settings
    targets: dict[str, float]
    python: str  # the Python of the cell's environment (its id: ``info.env_id``)
    app_paths: list[str] = []  # folders an entry: source's module is imported from
    cosine_threshold: float | None = None  # the lowest embedding cosine that still agrees
    inherit_env: bool = False  # the probe gets the caller's whole environment (--inherit-env)

    @property
    def id(self) -> str:
        return self.info.id


class Slot(msgspec.Struct, array_like=True, frozen=True):
    """One sample: the cell's id, its sample index (warm-ups first), its round (None: the
    run is measured cell by cell)."""

    cell: str
    index: int
    round: int | None = None


class Job(msgspec.Struct, kw_only=True):
    run_dir: str
    cells: list[CellJob]
    slots: list[Slot]
    # Keep the samples a cell's report already holds (--resume); else each report starts anew.
    resume: bool = False


def cell_file(run_dir: Path, cell) -> Path:
    return Path(run_dir) / f"{cell.id}.json"


def cell_status(run_dir: Path, cell) -> str:
    """ "complete", "partial", "failed", "missing" or "unreadable" for a cell of a run."""
    path = cell_file(run_dir, cell)
    if not path.is_file():
        return "missing"
    try:
        return read_report(path).status
    except ReportError:
        return "unreadable"


def incomplete(run_dir: Path, cells: list) -> list:
    """The cells a resumed run still has to run: missing, partial, failed or unreadable."""
    return [cell for cell in cells if cell_status(run_dir, cell) != "complete"]


def read_plan(run_dir: Path) -> RunPlan:
    """The run's plan, or an empty one (none yet, or one this harness cannot read)."""
    run_dir = Path(run_dir)
    try:
        return RunPlan.read(run_dir / RUN_FILE)
    except ReportError:
        return RunPlan(run_id=run_dir.name)


def record_plan(run_dir: Path, matrix, cells: list) -> Path:
    """Add the cells a session is about to run to ``run.json`` (sessions of one nox run
    follow one another, so read-modify-write is safe)."""
    plan = read_plan(run_dir).add([cell.planned for cell in cells])
    plan.matrix = matrix.to_dict()
    return plan.write(Path(run_dir) / RUN_FILE)


def write_failed(
    run_dir: Path, cells: list, kind: FailureKind, reason: str, detail: str | None = None
) -> list[Path]:
    """A failed report for each cell (its environment would not build, or it never started)."""
    from harness.measure import metadata

    harness, machine = metadata.harness_info(), metadata.machine()
    return [
        CellReport.failed(
            cell.info, cell.settings, kind, reason, detail, harness=harness, machine=machine
        ).write(cell_file(run_dir, cell))
        for cell in cells
    ]


# --------------------------------------------------------------------------- the order


def comparison_group(cell) -> tuple:
    """The cells a paired comparison may set against each other share this key: the model,
    the mode and the device (they differ in torch version, pins, backend, dtype or the
    reference stack)."""
    return (cell.info.model, cell.info.mode, cell.info.device)


def round_orders(cells: list, seed: int, start: int = 0) -> list[list[str]]:
    """Every round of an interleaved run of ``cells``: the warm-up rounds, then the counted
    ones, each holding every cell that still has a sample of that kind, in an order
    shuffled afresh by ``random.Random(seed + start)`` (``start``: the index the first of
    these rounds gets in the run, so that rounds added to a run later differ from its first).

    The cells of one comparison group (:func:`comparison_group`) run next to each other,
    the groups and the cells within each shuffled: a paired comparison's two samples of a
    round are then at most the group's size apart, not the round's. The machine drifts
    within a round too (a four-cell round lasts about 30 s here, as long as a spell of a
    neighbour's load), and the closer the pair, the less of that drift its ratio holds."""
    rng = random.Random(seed + start)
    rounds = []
    for kind in ("warmups", "runs"):
        for number in range(max(getattr(cell.settings, kind) for cell in cells)):
            groups: dict[tuple, list[str]] = {}
            for cell in cells:
                if number < getattr(cell.settings, kind):
                    groups.setdefault(comparison_group(cell), []).append(cell.id)
            blocks = list(groups.values())
            rng.shuffle(blocks)
            for block in blocks:
                rng.shuffle(block)
            rounds.append([cell_id for block in blocks for cell_id in block])
    return rounds


def _measured(run_dir: Path, cell) -> set[int]:
    """The sample indices a cell's report already holds (a failed sample counts: it ran)."""
    try:
        report = read_report(cell_file(run_dir, cell))
    except ReportError:
        return set()
    return {sample.index for sample in report.samples} if report.cell.id == cell.id else set()


def schedule(
    run_dir: Path, cells: list, order: str, *, resume: bool = False, seed: int | None = None
) -> list[Slot]:
    """The samples to measure, in the order to measure them, recorded in ``run.json``.

    Interleaved: rounds (:func:`round_orders`) appended to the run's recorded ones; a
    cell measured anew leaves the rounds it was in before. Sequential: cell by cell, no
    rounds. Under ``resume`` a cell the recorded rounds hold keeps them, and only the
    samples its report lacks are measured, each in its own round."""
    run_dir = Path(run_dir)
    plan = read_plan(run_dir)
    wanted = {cell.id for cell in cells}
    recorded = {cell_id for members in plan.rounds for cell_id in members}
    kept = wanted & recorded if resume else set()
    fresh = [cell for cell in cells if cell.id not in kept]
    # Rounds list only what the reports hold: a cell measured anew leaves its old rounds.
    plan.rounds = [[c for c in members if c not in wanted or c in kept] for members in plan.rounds]
    if order == "interleaved" and fresh:
        if seed is None:
            seed = plan.seed if plan.seed is not None else random.SystemRandom().randrange(2**32)
        plan.seed = seed
        plan.rounds += round_orders(fresh, seed, start=len(plan.rounds))
    slots = []
    seen: dict[str, int] = {}
    for number, members in enumerate(plan.rounds):
        for cell_id in members:
            index = seen[cell_id] = seen.get(cell_id, -1) + 1
            if cell_id in wanted:
                slots.append(Slot(cell_id, index, number))
    if order != "interleaved":
        slots += [Slot(cell.id, index, None) for cell in fresh for index in range(cell.settings.samples)]
    plan.write(run_dir / RUN_FILE)
    if resume:
        done = {cell.id: _measured(run_dir, cell) for cell in cells}
        slots = [slot for slot in slots if slot.index not in done[slot.cell]]
    return slots


# --------------------------------------------------------------------------- measuring


@dataclass
class CellOutcome:
    cell_id: str
    status: str  # complete | failed | partial
    path: Path
    note: str = ""


def run_measuring_process(
    cells: list,
    pythons: dict[str, str],
    slots: list[Slot],
    run_dir: Path,
    *,
    resume: bool = False,
    inherit_env: bool = False,
) -> int:
    """Run the slots in the measuring process (harness.measure.rounds), which writes every
    cell report as its samples come, and finishes every cell of ``cells`` (one with no slot
    left, on --resume, from the samples its report holds). ``pythons``: the Python of each
    cell, by cell id. Returns its exit status; Ctrl-C waits for it to save what finished,
    and propagates."""
    needed = {cell.id for cell in cells}
    job = Job(
        run_dir=str(run_dir),
        cells=[
            CellJob(
                info=cell.info,
                settings=cell.settings,
                targets=dict(cell.targets),
                python=pythons[cell.id],
                app_paths=[cell.model.path] if getattr(cell.model, "path", None) else [],
                cosine_threshold=getattr(cell, "cosine_threshold", None),
                inherit_env=inherit_env,
            )
            for cell in cells
            if cell.id in needed
        ],
        slots=slots,
        resume=resume,
    )
    proc = subprocess.Popen([sys.executable, "-m", "harness.measure.rounds"], stdin=subprocess.PIPE)
    try:
        proc.communicate(msgspec.json.encode(job))
    except KeyboardInterrupt:
        # It got the same SIGINT (one process group): let it save its partial reports.
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        raise
    if proc.returncode in (130, -signal.SIGINT):
        raise KeyboardInterrupt
    if proc.returncode not in (0, 1):
        # It died (killed, out of memory): what it wrote stays; the cells it left are failed.
        for cell in cells:
            if cell.id in needed:
                _salvage(
                    cell,
                    cell_file(run_dir, cell),
                    FailureKind.CRASH,
                    "crashed",
                    f"the measuring process exited {proc.returncode}",
                )
    return proc.returncode


def outcomes(run_dir: Path, cells: list) -> list[CellOutcome]:
    """What each cell's report says now."""
    found = []
    for cell in cells:
        path = cell_file(run_dir, cell)
        try:
            report = read_report(path)
        except ReportError:
            found.append(CellOutcome(cell.id, "failed", path, "no readable report"))
            continue
        note = ""
        if report.status == "failed" and report.failure is not None:
            note = report.failure.detail or report.failure.reason
        elif report.failed_samples:
            note = f"{report.failed_samples} sample(s) failed"
        found.append(CellOutcome(cell.id, report.status, path, note))
    return found


def _salvage(cell, path: Path, kind: FailureKind, reason: str, detail: str) -> None:
    """Mark a cell failed, keeping any samples its report already holds."""
    from harness.result import Failure

    try:
        report = read_report(path)
    except ReportError:
        write_failed(path.parent, [cell], kind, reason, detail)
        return
    if report.status == "partial":
        report.status = "failed"
        report.failure = Failure(kind=kind, reason=reason, detail=detail)
        report.write(path)


def _release(version: str) -> tuple[int, ...]:
    """``2.13.0+cpu`` -> (2, 13): the public release, trailing zeros dropped, as PEP 440
    compares releases (packaging is not imported on the measured side)."""
    parts = []
    for piece in version.split("+")[0].split("."):
        digits = "".join(ch for ch in piece if ch.isdigit()) if piece[:1].isdigit() else ""
        if not digits:
            break
        parts.append(int(digits))
    while parts and parts[-1] == 0:
        parts.pop()
    return tuple(parts)


def check_installed_torch(version: str) -> None:
    """Refuse to label results with a torch version other than the one installed here."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed_version

    try:
        found = installed_version("torch").split("+")[0]
    except PackageNotFoundError:
        raise UserError(
            f"torch is not installed in {sys.prefix}; run-cells runs inside an environment "
            f"built for torch {version} (nox -s profile_matrix)"
        ) from None
    if _release(found) != _release(version):
        raise UserError(
            f"this environment ({sys.prefix}) has torch {found}, not {version}; "
            f"run the cells of torch {version} in its own environment (nox)"
        )
