"""What differs between the environments of two compared cells: the packages whose resolved
versions differ, and the kind of torch build each has (CPU-only, CUDA, ROCm).

A verdict between two torch versions is also a verdict between two builds when one resolved
to ``2.13.0+cpu`` and the other to PyPI's default Linux wheel, which brings the nvidia CUDA
libraries and triton: the memory those libraries take on a CPU-only run is the build's, not
the version's. The facts are the run's own: the resolved set of each environment
(``EnvRecord.packages``, ``uv pip list``; its lock when both sides kept one, exactly as a
reference run's suspects are found), else what the cell's probe saw.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from harness.result import CellReport, MatrixReport, PackageChange, lock_changes, version_changes

# The PyTorch wheel index of CPU-only builds: the remedy when a CUDA build costs memory on a
# machine that never uses the GPU. Advice names it without its scheme: the HTML report holds
# no URL a reader might follow (it is self-contained), and the text is the same everywhere.
CPU_INDEX_HOST = "download.pytorch.org/whl/cpu"
# Libraries a GPU build of torch brings beside it (PEP 503 names).
CUDA_PREFIXES = ("nvidia-",)
CUDA_NAMES = frozenset({"triton"})
ROCM_MARKS = ("rocm",)

CPU, CUDA, ROCM, PLAIN = "CPU-only", "CUDA", "ROCm", "plain"


@dataclass(frozen=True)
class TorchBuild:
    """The torch an environment resolved, and the accelerator libraries beside it."""

    version: str  # as installed: 2.13.0+cpu, 2.14.1, 2.5.1+cu121
    libraries: tuple[str, ...]  # nvidia-*, triton, rocm ones, sorted

    @property
    def public(self) -> str:
        """The version without its local part: ``2.13.0``."""
        return self.version.partition("+")[0]

    @property
    def local(self) -> str:
        """The local version label: ``cpu``, ``cu121``, ``rocm6.2``, or ``""``."""
        return self.version.partition("+")[2]

    @property
    def kind(self) -> str:
        local = self.local
        if local.startswith("cpu"):
            return CPU
        cuda_libraries = any(n.startswith(CUDA_PREFIXES) or n in CUDA_NAMES for n in self.libraries)
        if local.startswith("cu") or cuda_libraries:
            return CUDA
        if local.startswith("rocm") or self.libraries:
            return ROCM
        return PLAIN

    def describe(self) -> str:
        """``+cpu``, ``a CUDA build (nvidia-*, triton)``, ``a CUDA build (+cu121)``."""
        if self.kind == CPU:
            return f"+{self.local}"
        if self.kind == PLAIN:
            return "a build without a local version or CUDA/ROCm libraries"
        shown = [f"+{self.local}"] if self.local else []
        if any(n.startswith(CUDA_PREFIXES) for n in self.libraries):
            shown.append("nvidia-*")
        shown += [n for n in self.libraries if not n.startswith(CUDA_PREFIXES)]
        return f"a {self.kind} build ({', '.join(shown)})"

    @property
    def signature(self) -> tuple[str, tuple[str, ...]]:
        """What makes two builds the same kind: the local label and the library names."""
        names = {"nvidia-*" if n.startswith(CUDA_PREFIXES) else n for n in self.libraries}
        return self.local, tuple(sorted(names))


def torch_build(packages: Mapping[str, str | None]) -> TorchBuild | None:
    """The torch build of a resolved set (name -> version), or None without torch."""
    version = packages.get("torch")
    if not version:
        return None
    libraries = sorted(
        name
        for name in packages
        if name.startswith(CUDA_PREFIXES) or name in CUDA_NAMES or any(m in name for m in ROCM_MARKS)
    )
    return TorchBuild(version=version.split(" ", 1)[0], libraries=tuple(libraries))


@dataclass(frozen=True)
class EnvironmentDiff:
    """Two cells' environments side by side: what resolved differently, and their builds."""

    changes: list[PackageChange]  # reference -> current, by name
    reference: TorchBuild | None
    current: TorchBuild | None

    @property
    def builds_differ(self) -> bool:
        """The local version or the CUDA/ROCm libraries differ (not just the version)."""
        if self.reference is None or self.current is None:
            return False
        return self.reference.signature != self.current.signature

    def cuda_against_cpu(self) -> tuple[str, str] | None:
        """('current'|'reference', its version) for the side that is a CUDA build where the
        other is CPU-only or plain; None otherwise."""
        sides = {"reference": self.reference, "current": self.current}
        for side, other in (("current", "reference"), ("reference", "current")):
            build, against = sides[side], sides[other]
            if build and against and build.kind == CUDA and against.kind in (CPU, PLAIN):
                return side, build.public
        return None


def resolved_packages(report: MatrixReport, cell: CellReport) -> tuple[dict[str, str], list[str]]:
    """The resolved set (name -> version) of the environment a cell ran in, and its lock:
    the run's EnvRecord where it has one, else what the cell's probe saw (no lock)."""
    for record in report.environments.values():
        if record.name == cell.cell.env_id and record.packages:
            return dict(record.packages), list(record.lock)
    seen = cell.environment.packages if cell.environment else {}
    return {name: version for name, version in seen.items() if version is not None}, []


def environment_diff(report: MatrixReport, reference: CellReport, current: CellReport) -> EnvironmentDiff:
    """What differs between the environments of ``reference`` and ``current``."""
    ref_packages, ref_lock = resolved_packages(report, reference)
    cur_packages, cur_lock = resolved_packages(report, current)
    if ref_lock and cur_lock:
        changes = lock_changes(ref_lock, cur_lock)  # as a reference run's suspects are found
    else:
        changes = version_changes(ref_packages, cur_packages)
    return EnvironmentDiff(
        changes=changes, reference=torch_build(ref_packages), current=torch_build(cur_packages)
    )
