"""Run one cell: spawn the probe once per sample, in a fresh process each time, and build
its report.

The runner is the measurement core; it prints nothing (the console and the other
renderers read what it returns, or the file it writes). The report is written after
every sample, atomically, so an interrupted or crashed run leaves a readable partial
report that holds every sample that finished.

Import discipline: this module imports only the standard library and harness.result, and
computes no statistics (harness.analysis does, after the last sample). A shared library
mapped by the runner stays in the page cache, so a cold sample would find it warm;
tests/e2e/test_profile.py checks that the runner maps none of what the probe's stack loads.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import hashlib
import json
import math
import os
import secrets
import select
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from harness.errors import UserError
from harness.measure import coldcache, contention, export, importtime, metadata
from harness.measure.models import ResolvedModel
from harness.measure.probe import EXIT_ENTRY
from harness.result import (
    COLD_RESIDENCY_THRESHOLD,
    DEFAULT_TARGETS,
    EXPORTS_DIR,
    CellInfo,
    CellReport,
    ColdCache,
    Environment,
    Failure,
    FailureKind,
    ReadsCellAxes,
    Sample,
    Settings,
    WriteError,
    cosine_threshold,
    now_iso,
    real_path,
)
from harness.result.settings import AGREEMENT_SENTENCES

if TYPE_CHECKING:
    from resource import struct_rusage

STDERR_TAIL_CHARS = 2000
# Set in each probe's environment to a fresh token: every process the load starts inherits
# it, so that when the sample ends (or times out) all of them are found and killed.
SAMPLE_TOKEN_VAR = "HARNESS_SAMPLE_TOKEN"
KILL_ROUNDS = 5
# The least time a one-off export (and its reference encode) is given before the samples.
EXPORT_TIMEOUT_S = 900.0
# A counted cold sample that starts above the residency threshold is evicted again, this
# many more times at most, before its probe starts; then it is recorded as not cold.
COLD_RETRIES = 2
# The most resident files a cold sample names (Sample.residency_files).
RESIDENT_FILES_NAMED = 5
# A counted warm sample whose load files (as the warm-up listed them) are less resident, by
# more than this (a fraction of their bytes), than right after the warm-up was not warm
# (Sample.cache_flagged): memory pressure, or another process's eviction, dropped pages the
# warm-up had read. Relative, not absolute: a load touches only part of a mapped library,
# so even a warm cache holds well under all of the set's bytes.
WARM_RESIDENCY_DROP = 0.05


class CellError(UserError):
    """The cell cannot start (no CUDA, unwritable output); the message is one line."""


@dataclass
class CellConfig(ReadsCellAxes):
    info: CellInfo  # what the cell is: the report's ``cell`` block (standalone_cell for a profile)
    model: ResolvedModel
    settings: Settings = field(default_factory=Settings.checked)
    targets: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_TARGETS))
    import_attribution: bool = True
    python: str = sys.executable
    app_paths: tuple[str, ...] = ()  # folders an entry: source's module is imported from
    # Encode AGREEMENT_SENTENCES after each sample's timing and compare with the torch
    # float32 model's embeddings (embedding_cosine_min); the model's own load path only.
    agreement: bool = True
    cosine_threshold: float | None = None  # the lowest cosine that agrees (default: by dtype)
    # Pass the caller's whole environment to the probe (--inherit-env), not minus
    # DENIED_VARIABLES.
    inherit_env: bool = False

    # The axes the runner acts on, read through to the cell.
    @property
    def name(self) -> str:
        return self.info.model


def standalone_cell(
    model: ResolvedModel,
    name: str,
    mode: str = "warm",
    device: str = "cpu",
    backend: str = "torch",
    dtype: str = "float32",
    torch: str | None = None,
    id: str | None = None,
    environment: Environment | None = None,
) -> CellInfo:
    """A cell profiled on its own (``harness profile``), not planned by a matrix: ``torch``
    defaults to the public version ("2.13.0", not "2.13.0+cpu") that ``environment``
    (default: this process's) holds, and ``id`` to the one its axes make."""
    if torch is None:
        found = (environment or metadata.environment()).packages.get("torch")
        torch = (found or "none").split("+")[0]
    return CellInfo.from_axes(
        model=name,
        source=model.spec,
        mode=mode,
        device=device,
        torch=torch,
        backend=backend,
        dtype=dtype,
        id=id,
    )


def _module_command(python: str, module: str, *args: str, importtime: bool = False) -> list[str]:
    """``python -P -m module ARGS`` (``-X importtime`` too when asked): -P keeps the working
    directory off sys.path, where a folder named like a module of the stack would shadow it."""
    flags = ["-P"] if sys.version_info >= (3, 11) else []
    if importtime:
        flags += ["-X", "importtime"]
    return [python, *flags, "-m", module, *args]


# What the probe does not get from the caller's environment (unless --inherit-env): the
# switches that make an interpreter unlike a user's (tracing, debug allocators, import
# profiling, coverage and test runners' hooks), and those of the caller's own interpreter
# (the probe runs the cell's). docs/measuring.md lists them.
DENIED_VARIABLES = frozenset(
    {
        "PYTHONASYNCIODEBUG",
        "PYTHONBREAKPOINT",
        "PYTHONDEBUG",
        "PYTHONDEVMODE",
        "PYTHONEXECUTABLE",
        "PYTHONHOME",
        "PYTHONINSPECT",
        "PYTHONMALLOC",
        "PYTHONMALLOCSTATS",
        "PYTHONPROFILEIMPORTTIME",
        "PYTHONSTARTUP",
        "PYTHONTRACEMALLOC",
        "PYTHONVERBOSE",
        "COVERAGE_PROCESS_START",
        "VIRTUAL_ENV",
    }
)
DENIED_PREFIXES = ("COV_CORE_", "PYTEST_")
# The families of variables that can change a load, recorded in the report
# (Environment.variables) as the probe got them.
RECORDED_PREFIXES = (
    "OMP_",
    "MKL_",
    "OPENBLAS_",
    "GOTO_",
    "BLIS_",
    "KMP_",
    "TOKENIZERS_",
    "HF_",
    "HUGGINGFACE_",
    "TRANSFORMERS_",
    "SENTENCE_TRANSFORMERS_",
    "TORCH",
    "PYTORCH_",
    "PYTHON",
    "CUDA_",
    "CUBLAS_",
    "LD_",
    "MALLOC_",
    "ORT_",
    "OPENVINO_",
)


def recorded_variables(env: dict[str, str]) -> dict[str, str]:
    """The variables of ``env`` that can change a load (RECORDED_PREFIXES), sorted by name."""
    return {name: env[name] for name in sorted(env) if name.startswith(RECORDED_PREFIXES)}


def _child_env(config: CellConfig) -> dict[str, str]:
    """The probe's environment: the caller's minus the deny-list (all of it with
    ``inherit_env``), plus what the cell needs (its app folders, offline hub). The runner
    adds the sample's token (SAMPLE_TOKEN_VAR) on top, per sample."""
    env = {
        name: value
        for name, value in os.environ.items()
        if config.inherit_env or not (name in DENIED_VARIABLES or name.startswith(DENIED_PREFIXES))
    }
    if config.app_paths:
        # PYTHONPATH, not the working directory: the probe runs with -P in a scratch folder.
        env["PYTHONPATH"] = os.pathsep.join(
            [str(real_path(p, "app path", error=CellError)) for p in config.app_paths]
            + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
        )
    if config.model.offline_ok:
        # The files are on disk: never let a hub round-trip into a load-time figure.
        env["HF_HUB_OFFLINE"] = "1"
    return env


def check_cuda(config: CellConfig) -> None:
    """Fail before the first sample when CUDA is asked for and absent. Run in a child so
    that this process never maps torch (see the module docstring)."""
    if not config.device.startswith("cuda"):
        return
    proc = subprocess.run(
        [config.python, "-c", "import torch; print(torch.cuda.is_available(), torch.__version__)"],
        capture_output=True,
        text=True,
        timeout=config.settings.timeout_s,
        env=_child_env(config),
        check=False,
    )
    words = proc.stdout.split()
    if proc.returncode != 0 or not words:
        raise CellError(f"device {config.device!r}: torch does not import in {config.python}")
    if words[0] != "True":
        raise CellError(
            f"device {config.device!r}: no CUDA device is visible to torch {words[1]}; use --device cpu"
        )


def sample_plan(settings: Settings) -> Iterator[tuple[int, bool]]:
    """(index, warm-up?) of every sample, lazily: a plan of 10,000 runs costs nothing."""
    for index in range(settings.warmups + settings.runs):
        yield index, index < settings.warmups


class ColdSamples:
    """A cold cell's page-cache bookkeeping: what to evict and check before each sample
    (the walk of the environment until a sample has listed what the load reads, then
    exactly that), each sample's eviction and residency, and the cell's verdict on them,
    all kept in the report's ``cold_cache`` block (:attr:`block`)."""

    def __init__(self, config: CellConfig, weights: Path | None = None):
        """The block, and the files checked before the first sample has listed what the
        load reads: ``weights`` (default: the model's) and torch's libraries."""
        self.config = config
        self._walk_list: list[str] | None = None  # the fallback: walked when first needed
        self._check_files: list[Path] = []  # what the fallback checks
        self._load_files: list[str] = []  # what the load reads, once a sample has listed it
        self._holders: dict[str, list[str]] = {}  # a file that stayed resident -> who maps it
        block = ColdCache(method=coldcache.METHOD, threshold=COLD_RESIDENCY_THRESHOLD)
        if not coldcache.CAN_EVICT:
            block.note = (
                f"this platform ({sys.platform}) cannot drop files from the page cache "
                f"without root, so these 'cold' samples may have run warm"
            )
        else:
            self._check_files = coldcache.check_files(weights or config.model.weights_file, config.python)
            block.checked_files = [str(p) for p in self._check_files]
            if not self._check_files:
                block.note = "found neither the model's weights nor torch's libraries to check residency on"
        self.block = block

    @property
    def evicts(self) -> bool:
        return coldcache.CAN_EVICT

    @property
    def load_files(self) -> list[str]:
        """What the load reads, as the first finished sample listed it ([] before)."""
        return list(self._load_files)

    def eviction_set(self) -> tuple[list[str], list]:
        """(files to evict, files to check): exactly what the load reads once a sample has
        listed it; before that, the walk of the environment and two large files."""
        if self._load_files:
            return self._load_files, self._load_files
        if self._walk_list is None:
            self._walk_list = coldcache.files_to_evict(self.config.model.files(), self.config.python)
            self.block.evicted_files = len(self._walk_list)
        return self._walk_list, self._check_files

    def learn_load_files(self, listed: list[str]) -> None:
        """Keep what a sample's load read (with the model's files and the interpreter's),
        to evict and check exactly that from the next sample on."""
        model, python = self.config.model.files(), coldcache.interpreter_files(self.config.python)
        self._load_files = _real_files([*listed, *map(str, model), *map(str, python)])
        self.block.load_files = len(self._load_files)
        self.block.load_bytes = sum(os.path.getsize(p) for p in self._load_files)

    def make_cold(self, sample: Sample) -> None:
        """Evict, and check the whole set; a counted sample that starts above the threshold
        is evicted again (COLD_RETRIES), and if it stays warm, recorded as not cold with the
        processes that pin its most resident files."""
        tries = 1 if sample.warmup else 1 + COLD_RETRIES
        started = time.perf_counter()
        evictions = 0
        while True:
            evictions += 1
            evict, check = self.eviction_set()
            coldcache.evict(evict)
            residency, resident = coldcache.load_residency(check, top=RESIDENT_FILES_NAMED)
            if (residency is not None and residency <= COLD_RESIDENCY_THRESHOLD) or evictions == tries:
                break
        sample.evict_s = time.perf_counter() - started
        sample.evictions = evictions
        sample.cache_residency = residency
        sample.residency_files = resident
        sample.cache_flagged = residency is None or residency > COLD_RESIDENCY_THRESHOLD
        sample.cold = None if residency is None else not sample.cache_flagged
        if sample.cold is False:
            # Who pins them, now: by the end of the cell that process may be gone.
            for path in list(resident)[:3]:
                self._holders[path] = coldcache.mapped_by(path) or self._holders.get(path, [])

    def verify(self, counted: list[Sample]) -> None:
        """The block's verdict on the counted samples: verified, or a note naming what
        stayed resident and who maps it."""
        block = self.block
        flagged = [s for s in counted if s.cache_flagged]
        block.verified = bool(counted) and not flagged
        if not flagged:
            return
        # Each flagged sample's three most resident files (by resident bytes).
        warm_files = sorted({path for s in flagged for path in list(s.residency_files or {})[:3]})
        holders = {Path(p).name: self._holders.get(p) or coldcache.mapped_by(p) for p in warm_files}
        why = "; ".join(f"{name} is mapped by {', '.join(h[:3])}" for name, h in holders.items() if h)
        not_cold = sum(s.cold is False for s in flagged)
        block.note = (
            f"{len(flagged)} of {len(counted)} samples started with more than "
            f"{COLD_RESIDENCY_THRESHOLD:.0%} of the bytes the load reads in the page cache"
            + (f" (most resident: {', '.join(holders)})" if holders else " (no file could be checked)")
            + (
                f"; {not_cold} of them stayed so after {1 + COLD_RETRIES} evictions and are kept "
                "out of the statistics as not cold"
                if not_cold
                else ""
            )
            + (f" ({why}: pages another process maps cannot be evicted)" if why else "")
        )


class WarmSamples:
    """A warm cell's check that its counted samples ran warm: what the warm-up's load opened
    and mapped (listed by the probe, as for a cold cell), its residency right after that
    warm-up, and each counted sample's residency against it (coldcache's, as a cold cell's)."""

    def __init__(self) -> None:
        self._listed_files: list[str] = []  # what the warm-up listed, alone
        self._warm_residency: float | None = None  # theirs, right after the warm-up

    @property
    def listed(self) -> bool:
        return bool(self._listed_files)

    def learn_load_files(self, listed: list[str]) -> None:
        """Keep what the warm-up's load read, and how resident it is now (its end)."""
        self._listed_files = _real_files(listed)
        self._warm_residency, _ = coldcache.load_residency(self._listed_files)

    def check_warm(self, sample: Sample) -> None:
        """A warm sample's residency over what the warm-up's load opened and mapped: flagged
        when pages the warm-up left in the cache are gone (it was not warm), and kept in the
        statistics."""
        residency, _ = coldcache.load_residency(self._listed_files)
        sample.cache_residency = residency
        sample.cache_flagged = (
            residency is not None
            and self._warm_residency is not None
            and residency < self._warm_residency - WARM_RESIDENCY_DROP
        )


def _real_files(paths: list[str]) -> list[str]:
    """The real paths of those of ``paths`` that are files, sorted, once each."""
    found = {os.path.realpath(p) for p in paths}
    return sorted(p for p in found if os.path.isfile(p))


class CellRun:
    """One cell's samples and report, written to ``output`` as they come."""

    def __init__(
        self, config: CellConfig, output: Path | None = None, environment: Environment | None = None
    ):
        """``environment``: what ``config.python``'s environment holds, when that is not this
        process's own (an interleaved run measures every environment from one process)."""
        self.config = config
        # A copy: an interleaved run hands every cell of an environment the same record.
        environment = copy.copy(environment or metadata.environment())
        environment.variables = recorded_variables(_child_env(config))
        environment.inherit_env = config.inherit_env
        info = config.info
        self.report = CellReport(
            status="partial",
            harness=metadata.harness_info(),
            started=now_iso(),
            cell=info,
            settings=config.settings,
            environment=environment,
            machine=metadata.machine(),
            model_info=config.model.info(),
            targets=dict(config.targets),
            cosine_threshold=config.cosine_threshold or cosine_threshold(config.dtype),
        )
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        self.output = Path(output) if output else Path("reports") / f"profile-{info.id}-{stamp}.json"
        self._prepared = False
        # What the probe loads: the model as given, or its export (prepare() sets them).
        self._load_id = config.model.load_id
        self._model_kwargs: dict[str, str] = (
            {} if config.dtype in ("float32", "qint8") else {"torch_dtype": config.dtype}
        )
        self._reference: list[list[float]] | None = None
        self._agrees = False  # whether samples encode AGREEMENT_SENTENCES (prepare() decides)
        self.cold: ColdSamples | None = None  # a cold cell's page-cache bookkeeping
        # A warm cell's residency check (where residency can be read, as eviction needs).
        self.warm = WarmSamples() if config.mode == "warm" and coldcache.CAN_EVICT else None
        if config.mode == "cold":
            self._start_cold()

    def _start_cold(self, weights: Path | None = None) -> None:
        self.cold = ColdSamples(self.config, weights)
        self.report.cold_cache = self.cold.block

    @property
    def load_files(self) -> list[str]:
        """What a cold cell's load reads, as its first finished sample listed it ([] before)."""
        return self.cold.load_files if self.cold is not None else []

    @property
    def _evicts(self) -> bool:
        return self.cold is not None and self.cold.evicts

    # -- samples ------------------------------------------------------------------------
    def run_sample(self, index: int, warmup: bool) -> Sample:
        config = self.config
        sample = Sample(index=index, warmup=warmup, ok=False)
        cold = self.cold if self._evicts else None
        if cold is not None:
            cold.make_cold(sample)
        elif self.warm is not None and self.warm.listed and not warmup:
            self.warm.check_warm(sample)
        # The cell's first warm-up runs under -X importtime: it is not counted, so the
        # attribution costs no run of its own (importtime's docstring).
        attribute = warmup and config.import_attribution and self.report.import_attribution is None
        spec = {
            "load_id": self._load_id,
            "backend": config.backend,
            "model_kwargs": self._model_kwargs,
            "agreement": list(AGREEMENT_SENTENCES) if self._agrees else None,
            "device": config.device,
            "sentence": config.settings.sentence,
            "encode_repeats": config.settings.encode_repeats,
            # After its clock, the probe lists the files its load read (while there is no
            # list yet) and which bytecode existed before it started.
            # A warm cell lists them in a warm-up, to check later samples' residency.
            "list_files": (self._evicts and not self.load_files)
            or (warmup and self.warm is not None and not self.warm.listed),
            "spawned_ns": time.time_ns(),
            # The harness's own encodes (steady state, agreement) run only in samples that
            # are not counted, after the end mark.
            "extras": warmup,
        }
        timeout_s = config.settings.timeout_s
        with tempfile.TemporaryDirectory(prefix="harness-sample-") as tmp:
            result_file = Path(tmp) / "result.json"
            args = (str(result_file), json.dumps(spec))
            cmd = _module_command(config.python, "harness.measure.probe", *args, importtime=attribute)
            if config.model.kind == "entry":
                cmd.append(config.model.load_id)
            # stderr goes to a file, not a pipe: a process the load started may keep it
            # open long after the probe is gone, and waiting for a pipe's end would wait
            # for that process (start_new_session puts it out of the probe's group).
            stderr_file = Path(tmp) / "stderr"
            token = secrets.token_hex(12)  # inherited by everything the probe starts
            load_start, steal_start = contention.load_average(), contention.steal_seconds()
            with open(stderr_file, "wb") as err:
                spawned_mono_ns = time.monotonic_ns()  # the clock the probe reads too
                proc = _ProbeProcess(
                    cmd,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=err,
                    env={**_child_env(config), SAMPLE_TOKEN_VAR: token},
                    cwd=tmp,
                    start_new_session=True,
                )
            try:
                proc.wait(timeout=timeout_s)  # reaped with os.wait4: its rusage and exit time
            except subprocess.TimeoutExpired:
                kill_sample(proc, token)
                proc.wait()
                sample.error = f"timed out after {timeout_s:g} s (--timeout)"
                sample.stderr_tail = _tail(stderr_file.read_bytes())
                return sample
            except BaseException:  # Ctrl-C: take the child down with us
                kill_sample(proc, token)
                proc.wait()
                raise
            exited_mono_ns = proc.exited_mono_ns or time.monotonic_ns()
            steal_end = contention.steal_seconds()
            sample.load_start, sample.load_end = load_start, contention.load_average()
            if steal_start is not None and steal_end is not None:
                sample.steal_s = max(0.0, steal_end - steal_start)
            # The probe is done: whatever it left running (a forked child, a server in its
            # own session) goes too, before the next sample or the temporary folder's end.
            kill_sample(proc, token)
            stderr = stderr_file.read_bytes()
            sample.exit_code = proc.returncode
            if attribute:
                self.report.import_attribution = importtime.from_stderr(
                    (stderr or b"").decode("utf-8", "replace"),
                    ok=proc.returncode == 0,
                    run="warm-up",
                    cache="cold" if sample.cold else "warm",
                )
                stderr = importtime.without_lines(stderr or b"")
            # Spawn to exit, the harness's own work after the end mark included; until the
            # probe's end mark is read, it is also what process_wall_s says.
            raw_s = (exited_mono_ns - spawned_mono_ns) / 1e9
            metrics = {"spawn_to_exit_s": raw_s, "process_wall_s": raw_s}
            if proc.rusage is not None:
                metrics.update(contention.rusage_metrics(proc.rusage))
            sample.metrics = metrics
            if proc.returncode != 0 or not result_file.is_file():
                sample.stderr_tail = _tail(stderr)
                sample.error = _describe_exit(proc.returncode, stderr)
                return sample
            result = json.loads(result_file.read_text())
        sample.ok = True
        metrics.update({k: v for k, v in result["metrics"].items() if v is not None})
        # Both ends on CLOCK_MONOTONIC, system-wide on Linux: no two processes' wall clocks.
        metrics["startup_s"] = max(0.0, (result["start_mono_ns"] - spawned_mono_ns) / 1e9)
        if result.get("end_mono_ns"):
            # What the user's own process does: spawn to the end mark (first embedding back).
            metrics["process_wall_s"] = max(0.0, (result["end_mono_ns"] - spawned_mono_ns) / 1e9)
            sample.end_mark = True
        sample.contended, sample.contention = contention.contended(metrics, sample.steal_s)
        sample.bytecode_present = result.get("bytecode_present")
        if self._agrees and result.get("embeddings"):
            if self._reference is None:  # a torch float32 cell's first: it is the reference
                self._reference = result["embeddings"]
                self._keep_reference()
            metrics["embedding_cosine_min"] = cosine_min(result["embeddings"], self._reference)
        if result.get("files"):
            if self.cold is not None:
                self.cold.learn_load_files(result["files"])
            elif self.warm is not None:
                self.warm.learn_load_files(result["files"])
        return sample

    def prepare(self) -> None:
        """Everything that can fail on bad input, before the first sample: a missing CUDA
        device, an unwritable report. Idempotent; run() calls it."""
        if not self._prepared:
            check_cuda(self.config)
            self._export()
            self.write()
            self._prepared = True

    @property
    def export_folder(self) -> Path:
        """Where this cell's model is exported and its reference embeddings kept: beside its
        report (under the run), one folder per model and environment, never the model's own."""
        env = hashlib.sha256(str(Path(self.config.python).absolute()).encode()).hexdigest()[:12]
        return self.output.parent / EXPORTS_DIR / f"{self.config.name}-{env}"

    def _export(self) -> None:
        """Before any sample, in the cell's environment: the export its backend and dtype
        need (timed as ``export_s``, counted in no sample) and the torch float32 reference
        embeddings (harness.measure.export)."""
        config = self.config
        variant = (config.backend, config.dtype) != ("torch", "float32")
        if config.model.kind == "entry":
            if variant:
                raise CellError(
                    f"an entry: source loads the model its own way; backend {config.backend} "
                    f"dtype {config.dtype} needs a model source (package:, path: or hub:)"
                )
            return  # the application's encoder: nothing to compare it with
        if not variant:
            # The reference itself: read it where another cell made it, else its first
            # sample's embeddings are it (no load of the model beyond the samples').
            self._agrees = config.agreement
            if config.agreement and self.reference_file.is_file():
                self._reference = json.loads(self.reference_file.read_text())["embeddings"]
            return
        if config.model.local_dir is None:
            raise CellError(
                f"model {config.model.spec!r} has no local copy to export or compare with; "
                "download it first (or give its folder as path:)"
            )
        spec = {
            "model_dir": str(config.model.local_dir),
            "folder": str(self.export_folder),
            "backend": config.backend,
            "dtype": config.dtype,
            "sentences": list(AGREEMENT_SENTENCES) if config.agreement else None,
        }
        command = _module_command(config.python, "harness.measure.export")
        try:
            result = export.run(
                command, spec, _child_env(config), max(EXPORT_TIMEOUT_S, config.settings.timeout_s)
            )
        except export.ExportFailed as exc:
            raise CellError(str(exc)) from None
        if config.backend != "torch":
            self._load_id = result["load_dir"]
            self._model_kwargs = {"file_name": result["file_name"]}
            self.report.export_s = result["export_s"]
            # A cold sample must find the export cold, not the weights it does not read.
            self.config.model = dataclasses.replace(config.model, local_dir=Path(result["load_dir"]))
            if self.config.mode == "cold":
                self._start_cold(Path(result["load_dir"]) / result["file_name"])
        if result.get("reference"):
            self._reference = json.loads(Path(result["reference"]).read_text())["embeddings"]
            self._agrees = True

    @property
    def reference_file(self) -> Path:
        return self.export_folder / export.REFERENCE

    def _keep_reference(self) -> None:
        """Write the reference embeddings for the other cells of this model and environment."""
        path = self.reference_file
        if path.is_file():
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"sentences": list(AGREEMENT_SENTENCES), "embeddings": self._reference}))
        os.replace(tmp, path)

    def run(self, on_sample: Callable[[Sample, int, int], None] | None = None) -> CellReport:
        """All samples, then what the runner itself can conclude (not statistics: see
        harness.analysis). Writes the report after each sample."""
        self.prepare()
        total = self.config.settings.samples
        try:
            for position, (index, warmup) in enumerate(sample_plan(self.config.settings), start=1):
                sample = self.run_sample(index, warmup)
                self.report.samples.append(sample)
                self.write()
                if on_sample:
                    on_sample(sample, position, total)
                if sample.exit_code == EXIT_ENTRY:
                    return self._entry_failed(sample)
            self.run_extras()
        except KeyboardInterrupt:
            self.report.failure = Failure(
                kind=FailureKind.INTERRUPTED,
                reason="interrupted",
                detail=f"stopped after {len(self.report.samples)} of {total} samples",
            )
            self.write()
            raise
        return self.finish()

    def run_extras(self) -> None:
        """After the planned samples of a cell without warm-ups: where no warm-up compared
        the embeddings with a reference made elsewhere (an export's, another cell's), one
        more sample does, after its end mark, counted in nothing."""
        extras_done = any(s.ok and s.warmup for s in self.report.samples)
        if (
            not extras_done
            and self._agrees
            and self._reference is not None
            and any(s.ok for s in self.report.samples)
        ):
            extra = self.run_sample(self.config.settings.samples, warmup=True)
            self.report.samples.append(extra)
            self.write()

    def finish(self) -> CellReport:
        report = self.report
        counted = report.counted_attempts
        warmed_up = report.import_attribution is not None and report.import_attribution.ok
        if self.config.import_attribution and not warmed_up and any(s.ok for s in counted):
            try:
                report.import_attribution = importtime.attribute(
                    self.config.python, env=_child_env(self.config), timeout=self.config.settings.timeout_s
                )
            except subprocess.TimeoutExpired:
                report.import_attribution = None
        if report.cold_cache is not None and self.cold is not None and self._evicts:
            self.cold.verify(counted)
        if not any(s.ok for s in counted):
            errors = [s.error for s in counted if s.error]
            timed_out = bool(errors) and errors[0].startswith("timed out")
            report.status = "failed"
            report.failure = Failure(
                kind=FailureKind.TIMEOUT if timed_out else FailureKind.CRASH,
                reason="every sample failed",
                detail=errors[0] if errors else "no sample ran",
            )
        else:
            report.status = "complete"
        # Measured after the end mark, in the samples that are not counted (warm-ups).
        extras = [s for s in report.samples if s.ok and s.warmup]
        cosines = [s.metrics["embedding_cosine_min"] for s in extras if "embedding_cosine_min" in s.metrics]
        report.embedding_cosine_min = min(cosines) if cosines else None
        encodes = sorted(s.metrics["encode_s"] for s in extras if "encode_s" in s.metrics)
        report.steady_encode_s = encodes[(len(encodes) - 1) // 2] if encodes else None
        report.finished = now_iso()
        self.write()
        return report

    def _entry_failed(self, sample: Sample) -> CellReport:
        """The application's entry point is broken (it would not import, has no such
        function, raised, or returned no encoder): every later sample would fail the same
        way, so the cell stops here with the probe's one line."""
        lines = [ln.strip() for ln in (sample.stderr_tail or "").splitlines() if ln.strip()]
        why = lines[-1] if lines else "the entry point failed"
        self.report.status = "failed"
        self.report.failure = Failure(
            kind=FailureKind.LOAD, reason="the entry point failed", detail=why.split(": ", 1)[-1]
        )
        self.report.finished = now_iso()
        self.write()
        return self.report

    def write(self, report: CellReport | None = None) -> None:
        if report is not None:
            self.report = report
        try:
            self.report.write(self.output)
        except WriteError as exc:
            raise CellError(f"cannot write the report: {exc}") from None


def cosine_min(embeddings: list[list[float]], reference: list[list[float]]) -> float:
    """The lowest cosine similarity between each embedding and its reference, in plain
    Python (the runner imports no numpy); -1 where the two do not pair up."""
    if len(embeddings) != len(reference) or not embeddings:
        return -1.0
    lowest = 1.0
    for a, b in zip(embeddings, reference):
        norm = math.sqrt(math.fsum(x * x for x in a)) * math.sqrt(math.fsum(y * y for y in b))
        if len(a) != len(b) or norm == 0:
            return -1.0
        lowest = min(lowest, math.fsum(x * y for x, y in zip(a, b)) / norm)
    return max(-1.0, min(1.0, lowest))


class _ProbeProcess(subprocess.Popen):
    """A Popen that reaps its child with ``os.wait4``, keeping the child's resource usage
    (``rusage``) and when it was reaped (``exited_mono_ns``, CLOCK_MONOTONIC): Popen's own
    wait discards the one and the caller can only guess the other."""

    rusage: struct_rusage | None = None
    exited_mono_ns: int | None = None

    def _try_wait(self, wait_flags: int) -> tuple[int, int]:  # Popen's one call of waitpid
        try:
            pid, status, usage = os.wait4(self.pid, wait_flags)
        except ChildProcessError:  # reaped elsewhere: what Popen itself does then
            return self.pid, 0
        if pid == self.pid:
            self.rusage, self.exited_mono_ns = usage, time.monotonic_ns()
        return pid, status

    def wait(self, timeout: float | None = None) -> int:
        """Popen's wait; with a timeout, first asleep on a pidfd until the child exits
        (Linux): Popen's own timed wait polls, sleeping up to 50 ms between looks, and would
        stamp the exit (``exited_mono_ns``) up to that late."""
        if timeout is not None and self.returncode is None and hasattr(os, "pidfd_open"):
            try:
                pidfd = os.pidfd_open(self.pid)
            except OSError:  # already reaped, or a kernel without pidfds: Popen's polling
                pass
            else:
                try:
                    poller = select.poll()
                    poller.register(pidfd, select.POLLIN)
                    if not poller.poll(timeout * 1000):  # milliseconds
                        raise subprocess.TimeoutExpired(self.args, timeout)
                finally:
                    os.close(pidfd)
        return super().wait(timeout)


def _kill_group(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def kill_sample(proc: subprocess.Popen, token: str) -> None:
    """SIGKILL the probe's process group and every process that carries the sample's token
    in its environment: whatever the load started, in any session, and after the probe has
    exited (when its orphans no longer descend from it). The standard library has no
    process tree (psutil would map a library the probe's stack loads), so the token marks
    the tree; a process that cleared its whole environment escapes it, as one that left the
    group escapes killpg. Without /proc (macOS), the group only."""
    _kill_group(proc)
    for _ in range(KILL_ROUNDS):  # again, for anything forked while the last round ran
        found = _marked(token)
        if not found:
            return
        for pid in found:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)


def _marked(token: str) -> list[int]:
    """The processes whose environment holds ``SAMPLE_TOKEN_VAR=token`` (a killed one, a
    zombie, has an empty environment and is not listed)."""
    marker = f"{SAMPLE_TOKEN_VAR}={token}".encode()
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    found = []
    for entry in entries:
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as fh:
                environ = fh.read()
        except OSError:  # gone, or another user's
            continue
        if marker in environ.split(b"\0"):
            found.append(int(entry))
    return found


def _tail(stderr: bytes | None) -> str | None:
    if not stderr:
        return None
    return stderr.decode("utf-8", "replace")[-STDERR_TAIL_CHARS:]


def _describe_exit(code: int | None, stderr: bytes | None) -> str:
    if code is not None and code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"killed by {name}"
    lines = [ln for ln in (stderr or b"").decode("utf-8", "replace").splitlines() if ln.strip()]
    last = lines[-1].strip() if lines else "no error output"
    return f"exit status {code}: {last[:300]}"
