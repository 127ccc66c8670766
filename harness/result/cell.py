"""A cell report: one profile of one (model, torch, mode, device), sample by sample.

Written by ``harness profile`` as its samples finish (status ``partial``), then once more
with statistics (``complete``, or ``failed`` when no counted sample succeeded or the cell
never started). Later stages only read it, through :meth:`CellReport.read`.

Version history:
    1  (harness 0.1)  ``failure`` held only reason and detail text.
    2  ``failure.kind`` names what failed (:class:`FailureKind`); ``samples[].round``
       may give the round a sample was measured in; times and residencies are bounded.
    3  ``process_wall_s`` ends at the probe's end mark (the first embedding back), not at
       the process's exit (``spawn_to_exit_s``); ``startup_s`` is read on CLOCK_MONOTONIC;
       counted samples carry no ``encode_s`` and no ``embedding_cosine_min`` (measured in
       warm-ups: ``steady_encode_s``); CPU figures, contention, the child environment
       (``environment.variables``) and the machine's affinity, governor and load.
       A version-2 report reads as version 3 with ``process_wall_s`` as it was measured
       (spawn to exit) and ``steady_encode_s`` from its counted samples' ``encode_s``.
"""

from __future__ import annotations

import enum
import math
from datetime import datetime, timezone
from typing import Annotated, ClassVar, Literal

import msgspec

from harness.result.catalogue import METRICS
from harness.result.document import Document
from harness.result.names import SAFE_NAME_WORDS, cell_id, env_id, is_safe_name, reference_id
from harness.result.settings import Settings

Mode = Literal["cold", "warm"]
Backend = Literal["torch", "onnx", "openvino"]
Dtype = Literal["float32", "float16", "bfloat16", "qint8"]
Level = Literal["ok", "warn", "info"]  # a recommendation's
AttributionRun = Literal["warm-up", "separate"]  # what an import attribution was read from
Status = Literal["complete", "partial", "failed"]
NonNegative = Annotated[float, msgspec.Meta(ge=0)]
Fraction = Annotated[float, msgspec.Meta(ge=0, le=1)]


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class FailureKind(enum.Enum):
    """What failed, so that no reader has to guess it from the message."""

    INSTALL = "install"  # the cell's environment would not build
    LOAD = "load"  # the profile could not start (model, device, output)
    CRASH = "crash"  # the profile process died, or every sample crashed
    TIMEOUT = "timeout"  # a sample or the whole profile ran past its time
    INTERRUPTED = "interrupted"  # Ctrl-C, with the finished samples kept
    NOT_RUN = "not_run"  # planned, but no runner reported it


class Failure(msgspec.Struct, kw_only=True):
    kind: FailureKind
    reason: str
    detail: str | None = None


class HarnessInfo(msgspec.Struct, kw_only=True):
    version: str
    commit: str | None = None


class CellInfo(msgspec.Struct, kw_only=True):
    """What a cell is: its id (a file name) and the axes it was measured on."""

    id: str
    model: str
    source: str
    mode: Mode
    device: str
    torch: str | None = None
    # The versions its environment pinned besides torch (matrix.yaml's packages:), by
    # distribution name; empty when nothing else was pinned.
    packages: dict[str, str] = {}
    # "baseline" for a reference cell (id ``<cell id>@baseline``): the same cell measured in
    # the baseline's environment, rebuilt from its lock, in the same rounds; None otherwise.
    stack: Literal["baseline"] | None = None
    # What the model was loaded with: SentenceTransformer's backend, and the dtype of its
    # weights (qint8: ONNX dynamically quantized to int8).
    backend: Backend = "torch"
    dtype: Dtype = "float32"

    @classmethod
    def from_axes(
        cls,
        *,
        model: str,
        source: str,
        mode: str,
        device: str,
        torch: str | None,
        packages: dict[str, str] | None = None,
        backend: str = "torch",
        dtype: str = "float32",
        id: str | None = None,
    ) -> CellInfo:
        """A cell from its axes, its id made from them (:func:`cell_id`) unless given. The
        one constructor for callers holding plain strings (matrix.yaml, the command line):
        mode, backend and dtype are checked against their literals here, ValueError if not."""
        fields = {
            "id": id or cell_id(model, torch, mode, device, packages, backend, dtype),
            "model": model,
            "source": source,
            "mode": mode,
            "device": device,
            "torch": torch,
            "packages": dict(packages or {}),
            "backend": backend,
            "dtype": dtype,
        }
        try:
            return msgspec.convert(fields, cls)
        except msgspec.ValidationError as exc:
            said = str(exc)
            raise ValueError(said if str(fields["id"]) in said else f"cell {fields['id']}: {said}") from None

    @property
    def variant(self) -> str:
        """``onnx qint8``: the backend and dtype, as a reader names them."""
        return f"{self.backend} {self.dtype}"

    @property
    def axes(self) -> dict[str, str | None]:
        """What the cell was measured on, axis by axis (one key per pinned package, e.g.
        "transformers"): two cells whose axes differ in one key only form a pair that a
        paired comparison can judge."""
        return {
            "model": self.model,
            "torch": self.torch,
            "mode": self.mode,
            "device": self.device,
            "backend": self.backend,
            "dtype": self.dtype,
            **self.packages,
            # Only a reference cell has this axis: it never pairs with a current cell along
            # another axis (torch, say), only with the cell it is the reference of.
            **({"stack": self.stack} if self.stack else {}),
        }

    @property
    def env_id(self) -> str:
        """The id of the environment it ran in (``<environment id>@baseline`` for a reference cell)."""
        base = env_id(self.torch, self.packages)
        return reference_id(base) if self.stack else base

    def __post_init__(self) -> None:
        # The id becomes a file name wherever a report is gathered or stored.
        if not is_safe_name(self.id):
            raise ValueError(f"cell id {self.id!r} is not usable in a file name ({SAFE_NAME_WORDS})")


class ReadsCellAxes:
    """For a type that holds a :class:`CellInfo` as ``info`` (the matrix's cell, the
    runner's cell configuration): the axes both act on, read through, never copied."""

    info: CellInfo

    @property
    def mode(self) -> str:
        return self.info.mode

    @property
    def device(self) -> str:
        return self.info.device

    @property
    def backend(self) -> str:
        return self.info.backend

    @property
    def dtype(self) -> str:
        return self.info.dtype


class Sample(msgspec.Struct, kw_only=True):
    """One fresh probe process: its figures, or why it has none."""

    index: Annotated[int, msgspec.Meta(ge=0)]
    warmup: bool
    ok: bool
    exit_code: int | None = None
    error: str | None = None
    stderr_tail: str | None = None
    metrics: dict[str, float] = {}
    round: Annotated[int, msgspec.Meta(ge=0)] | None = None
    # Cold samples: the resident fraction of the bytes the load reads (the files an earlier
    # sample listed; before that, the weights and torch's largest library), before the
    # sample started; the most resident files by resident bytes; how long eviction took.
    cache_residency: Fraction | None = None
    residency_files: dict[str, Fraction | None] | None = None
    cache_flagged: bool | None = None
    evict_s: NonNegative | None = None
    # Cold samples: evictions it took (a counted one is evicted again, up to twice, while it
    # starts above the threshold), and whether it started cold in the end; one that did not
    # (another process pins the pages) is kept out of the statistics.
    evictions: Annotated[int, msgspec.Meta(ge=0)] | None = None
    cold: bool | None = None
    # The fraction of the modules the sample imported whose bytecode (.pyc) existed before
    # it started: 1.0 where the environment had it, as a pip-installed one would.
    bytecode_present: Fraction | None = None
    # Whether process_wall_s ended at the probe's end mark (the first embedding back); False
    # or None: it is spawn to exit (a probe that failed before its mark, a version-2 report).
    end_mark: bool | None = None
    # The machine around the sample: the 1-minute load average at its start and end, and
    # the CPU time the hypervisor stole during it (all CPUs; /proc/stat).
    load_start: NonNegative | None = None
    load_end: NonNegative | None = None
    steal_s: NonNegative | None = None
    # Taken under contention (docs/measuring.md's rule: it waited for a CPU for more than a
    # quarter of its wall time, or the hypervisor stole); why, in words. Kept in the
    # statistics, counted per cell and said beside the verdicts.
    contended: bool | None = None
    contention: str | None = None

    def __post_init__(self) -> None:
        for key, value in self.metrics.items():
            if not math.isfinite(value):
                raise ValueError(f"metric {key} is {value}, not a finite number")
            metric = METRICS.get(key)
            if metric is not None and metric.is_time and value < 0:
                raise ValueError(f"metric {key} is {value}: a time cannot be negative")

    @property
    def counted(self) -> bool:
        """A finished sample that is not a warm-up, and not a cold sample that started warm."""
        return self.ok and not self.warmup and self.cold is not False


class Stats(msgspec.Struct, kw_only=True):
    n: Annotated[int, msgspec.Meta(ge=0)]
    mean: float
    median: float
    stdev: float | None
    min: float
    max: float
    ci95: tuple[float, float] | None = None


class Bytecode(msgspec.Struct, kw_only=True):
    checked: list[str] = []
    modules: int = 0
    fraction: Fraction | None = None
    compiled: bool = False


class Environment(msgspec.Struct, kw_only=True):
    python: str
    implementation: str | None = None
    executable: str | None = None
    prefix: str | None = None
    packages: dict[str, str | None] = {}
    freeze_sha256: str | None = None
    bytecode: Bytecode | None = None
    # The probe's environment variables that can change a load (docs/measuring.md lists
    # the families), as the probe got them; and whether it got the caller's whole
    # environment (--inherit-env) or the caller's minus the deny-list.
    variables: dict[str, str] = {}
    inherit_env: bool | None = None


class Machine(msgspec.Struct, kw_only=True):
    cpu: str
    fingerprint: str
    arch: str | None = None
    cores: int | None = None
    physical_cores: int | None = None
    memory_gb: float | None = None
    os: str | None = None
    os_release: str | None = None
    kernel: str | None = None
    hostname: str | None = None
    # Where the samples may run, and what may slow them (read when the report was begun):
    # the CPUs this process may use (os.sched_getaffinity), each CPU's frequency governor
    # where readable ("cpu0-1: powersave"), and the 1-, 5- and 15-minute load averages.
    # Not part of the fingerprint: they change from run to run on the same machine.
    affinity: list[int] | None = None
    governor: str | None = None
    load_average: tuple[float, float, float] | None = None

    def __post_init__(self) -> None:
        # Baselines are stored as <fingerprint>.json.
        if not is_safe_name(self.fingerprint):
            raise ValueError(f"machine fingerprint {self.fingerprint!r} is not usable in a file name")

    @property
    def label(self) -> str:
        """A reader's name for the machine: the CPU and its core count."""
        return f"{self.cpu}, {self.cores} cores" if self.cores else self.cpu


class ModelInfo(msgspec.Struct, kw_only=True):
    kind: str | None = None
    load_id: str | None = None
    path: str | None = None
    weights_bytes: int | None = None


class ColdCache(msgspec.Struct, kw_only=True):
    method: str
    threshold: Fraction
    verified: bool = False
    note: str | None = None
    evicted_files: int = 0
    checked_files: list[str] = []
    # The files the load reads, as its first sample listed them: evicted and checked whole
    # from the next sample on (before that, the folders are walked and two files checked).
    load_files: int = 0
    load_bytes: int = 0


class PackageShare(msgspec.Struct, kw_only=True):
    package: str
    self_s: NonNegative
    share: Fraction


class ImportAttribution(msgspec.Struct, kw_only=True):
    statement: str = "import torch, sentence_transformers"
    ok: bool = True
    # "warm-up": read from the cell's warm-up sample; "separate": a run of its own (a cell
    # with no warm-up). "cold" when that run started from an emptied page cache.
    run: AttributionRun | None = None
    cache: Mode | None = None
    total_self_s: NonNegative = 0.0
    packages: list[PackageShare] = []


class TargetResult(msgspec.Struct, kw_only=True):
    target: float
    value: float
    met: bool


class Recommendation(msgspec.Struct, kw_only=True):
    level: Level
    text: str


class CellReport(Document, kw_only=True, tag_field="kind", tag="cell"):
    KIND: ClassVar[str] = "cell"
    READS: ClassVar[frozenset[int]] = frozenset({1, 2, 3})

    schema_version: int = Document.SCHEMA_VERSION
    status: Status
    failure: Failure | None = None
    harness: HarnessInfo
    started: str
    finished: str | None = None
    cell: CellInfo
    settings: Settings
    environment: Environment | None = None
    machine: Machine | None = None
    model_info: ModelInfo | None = None
    cold_cache: ColdCache | None = None
    samples: list[Sample] = []
    stats: dict[str, Stats] = {}
    import_attribution: ImportAttribution | None = None
    targets: dict[str, float] = {}
    target_results: dict[str, TargetResult] = {}
    recommendations: list[Recommendation] = []
    # Backends and dtypes other than torch float32: the seconds the one-off export (and
    # quantization) of the model took in this environment, before any sample and counted in
    # no total; None where the model already had the file, or the cell needs none.
    export_s: NonNegative | None = None
    # The lowest embedding cosine of any counted sample against the torch float32 model of
    # the same environment (Sample.metrics["embedding_cosine_min"]); None when not measured.
    embedding_cosine_min: Annotated[float, msgspec.Meta(ge=-1.0001, le=1.0001)] | None = None
    # The lowest embedding_cosine_min that still agrees: below it the backend or dtype
    # changes the model's output (matrix.yaml's agreement:, by dtype; --cosine-threshold).
    cosine_threshold: Annotated[float, msgspec.Meta(gt=0, le=1)] | None = None
    # The steady-state encode (the median of settings.encode_repeats encodes after the
    # first), measured after the end mark in the samples that are not counted (warm-ups),
    # so that no counted sample's clock holds it; the median over those samples.
    steady_encode_s: NonNegative | None = None

    # -- the one alternative constructor -----------------------------------------------
    @classmethod
    def failed(
        cls,
        cell: CellInfo,
        settings: Settings,
        kind: FailureKind,
        reason: str,
        detail: str | None = None,
        harness: HarnessInfo | None = None,
        machine: Machine | None = None,
    ) -> CellReport:
        """A report for a cell that never produced a sample."""
        now = now_iso()
        return cls(
            status="failed",
            failure=Failure(kind=kind, reason=reason, detail=detail),
            harness=harness or HarnessInfo(version="unknown"),
            started=now,
            finished=now,
            cell=cell,
            settings=settings,
            machine=machine,
        )

    # -- what readers ask of it --------------------------------------------------------
    @property
    def id(self) -> str:
        return self.cell.id

    @property
    def counted(self) -> list[Sample]:
        """The samples that count: not warm-ups, and the probe finished."""
        return [s for s in self.samples if s.counted]

    @property
    def counted_attempts(self) -> list[Sample]:
        """Every sample that was meant to count, whether or not it finished."""
        return [s for s in self.samples if not s.warmup]

    def values(self, metric: str) -> list[float]:
        """Every counted sample's value of one metric, in sample order."""
        return [s.metrics[metric] for s in self.counted if metric in s.metrics]

    def median(self, metric: str) -> float | None:
        stats = self.stats.get(metric)
        return stats.median if stats else None

    @property
    def fingerprint(self) -> str | None:
        return self.machine.fingerprint if self.machine else None

    @property
    def contended_samples(self) -> int:
        """How many counted samples were taken under contention (Sample.contended)."""
        return sum(1 for s in self.counted if s.contended)

    @property
    def failed_samples(self) -> int:
        return sum(1 for s in self.samples if not s.ok)

    # -- version history ---------------------------------------------------------------
    @classmethod
    def upgrade(cls, data: dict, version: int) -> dict:
        if version == 1:
            data = dict(data)
            data["schema_version"] = cls.SCHEMA_VERSION
            failure = data.get("failure")
            if isinstance(failure, dict) and "kind" not in failure:
                data["failure"] = {**failure, "kind": _v1_failure_kind(data.get("status"), failure).value}
            version = 2
        if version == 2:
            data = {**data, "schema_version": cls.SCHEMA_VERSION}
            # Version 2 measured the steady-state encode in every sample: its median is the
            # closest figure to version 3's, measured in warm-ups.
            encodes = sorted(
                s["metrics"]["encode_s"]
                for s in data.get("samples") or []
                if isinstance(s, dict)
                and s.get("ok")
                and not s.get("warmup")
                and s.get("cold") is not False
                and isinstance(s.get("metrics"), dict)
                and isinstance(s["metrics"].get("encode_s"), (int, float))
            )
            if encodes and data.get("steady_encode_s") is None:
                mid = len(encodes) // 2
                data["steady_encode_s"] = (
                    encodes[mid] if len(encodes) % 2 else (encodes[mid - 1] + encodes[mid]) / 2
                )
        return data


def _v1_failure_kind(status: object, failure: dict) -> FailureKind:
    """Version 1 said what failed only in words; these are the words its writers used."""
    reason = str(failure.get("reason") or "")
    detail = str(failure.get("detail") or "")
    if status == "partial" or reason == "interrupted":
        return FailureKind.INTERRUPTED
    if "could not be installed" in reason or "could not be built" in reason:
        return FailureKind.INSTALL
    if reason.startswith("could not start"):
        return FailureKind.LOAD
    if reason.startswith("no report came back"):
        return FailureKind.NOT_RUN
    if reason == "timeout" or "timed out" in detail or "timed out" in reason:
        return FailureKind.TIMEOUT
    return FailureKind.CRASH
