"""What a result was measured on: the environment, the machine, the harness itself.

Nothing here imports the model stack, nor anything outside the standard library: versions
come from installed distributions' metadata and the machine from /proc and sysconf, so
collecting them costs milliseconds and maps no shared library into the runner (which would
keep it warm for the next cold sample).
"""

from __future__ import annotations

import hashlib
import importlib.metadata as im
import importlib.util
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

import harness
from harness.result import Bytecode, Environment, HarnessInfo, Machine

PACKAGES = [
    "torch",
    "transformers",
    "sentence-transformers",
    "tokenizers",
    "huggingface-hub",
    "safetensors",
    "numpy",
    "scipy",
    "scikit-learn",
]

# Packages whose bytecode decides the first start: if their __pycache__ is missing the
# interpreter compiles tens of thousands of lines before the model is touched.
BYTECODE_PACKAGES = ["torch", "transformers", "sentence_transformers"]


def package_versions(names: list[str] = PACKAGES) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in names:
        try:
            out[name] = im.version(name)
        except im.PackageNotFoundError:
            out[name] = None
    return out


def freeze_hash() -> str:
    """A stable hash of every installed distribution and version (what `pip freeze` lists),
    so two reports can tell at a glance whether their environments were the same."""
    lines = sorted({f"{(d.metadata['Name'] or '').lower()}=={d.version}" for d in im.distributions()})
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def bytecode_state(packages: list[str] = BYTECODE_PACKAGES) -> Bytecode:
    """How many of the stack's modules have compiled bytecode for this interpreter."""
    tag = sys.implementation.cache_tag
    total = compiled = 0
    for name in packages:
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.submodule_search_locations:
            continue
        for root, dirs, files in os.walk(list(spec.submodule_search_locations)[0]):
            dirs[:] = [d for d in dirs if d != "__pycache__"]
            for filename in files:
                if filename.endswith(".py"):
                    total += 1
                    pyc = Path(root) / "__pycache__" / f"{filename[:-3]}.{tag}.pyc"
                    compiled += pyc.exists()
    fraction = compiled / total if total else None
    # Some pure-data modules never get bytecode; 90% means the install compiled.
    return Bytecode(
        checked=list(packages),
        modules=total,
        fraction=fraction,
        compiled=bool(fraction is not None and fraction >= 0.9),
    )


def environment() -> Environment:
    return Environment(
        python=platform.python_version(),
        implementation=sys.implementation.name,
        executable=sys.executable,
        prefix=sys.prefix,
        packages=package_versions(),
        freeze_sha256=freeze_hash(),
        bytecode=bytecode_state(),
    )


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _physical_cores() -> int | None:
    """Distinct (physical id, core id) pairs of /proc/cpuinfo, as psutil counts them."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None
    cores = set()
    for block in text.split("\n\n"):
        fields = dict(line.split(":", 1) for line in block.splitlines() if ":" in line)
        fields = {k.strip(): v.strip() for k, v in fields.items()}
        if "core id" in fields:
            cores.add((fields.get("physical id"), fields["core id"]))
    return len(cores) or None


def _memory_bytes() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def machine() -> Machine:
    info: dict[str, Any] = {
        "cpu": _cpu_model(),
        "arch": platform.machine(),
        "cores": os.cpu_count(),
        "physical_cores": _physical_cores(),
        "memory_gb": round(_memory_bytes() / 2**30, 1),
        "os": platform.system(),
        "os_release": _os_release(),
        "kernel": platform.release(),
        "hostname": platform.node(),
    }
    return Machine(
        **info,
        fingerprint=fingerprint(info),
        affinity=_affinity(),
        governor=_governors(),
        load_average=_load_average(),
    )


def _affinity() -> list[int] | None:
    """The CPUs this process (and the probes it spawns) may run on."""
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # macOS has no affinity
        return None


def _governors(cpus: list[int] | None = None) -> str | None:
    """Each CPU's frequency governor, where the kernel shows it, grouped: ``cpu0-3:
    performance``, or ``cpu0-1: powersave; cpu2-3: performance``; None where unreadable
    (a virtual machine without cpufreq, macOS)."""
    found: dict[str, list[int]] = {}
    for cpu in cpus if cpus is not None else (_affinity() or []):
        path = Path(f"/sys/devices/system/cpu/cpu{cpu}/cpufreq/scaling_governor")
        try:
            found.setdefault(path.read_text().strip(), []).append(cpu)
        except OSError:
            continue
    if not found:
        return None

    def span(ids: list[int]) -> str:
        return (
            f"cpu{ids[0]}"
            if len(ids) == 1
            else f"cpu{ids[0]}-{ids[-1]}"
            if ids == list(range(ids[0], ids[-1] + 1))
            else "cpu" + ",".join(map(str, ids))
        )

    return "; ".join(f"{span(ids)}: {governor}" for governor, ids in found.items())


def _load_average() -> tuple[float, float, float] | None:
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:
        return None
    return round(one, 2), round(five, 2), round(fifteen, 2)


def fingerprint(info: dict) -> str:
    """Same hardware and OS => same fingerprint. The hostname is left out on purpose: CI
    runners of one type get a new name each run but measure alike."""
    parts = [str(info.get(k)) for k in ("cpu", "arch", "cores", "memory_gb", "os", "os_release", "kernel")]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def _os_release() -> str:
    try:
        data = platform.freedesktop_os_release()
        return data.get("PRETTY_NAME") or data.get("NAME", "")
    except (OSError, AttributeError):
        return platform.version()


def harness_info() -> HarnessInfo:
    return HarnessInfo(version=harness.__version__, commit=_git_commit())


def _git_commit() -> str | None:
    source = Path(harness.__file__).resolve().parent.parent
    if not (source / ".git").exists():
        return None
    try:
        out = subprocess.run(
            ["git", "-C", str(source), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None
