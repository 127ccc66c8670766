"""The files of a run folder besides the cell reports: environment records and the plan.

``reports/runs/<run id>/`` holds one ``<cell id>.json`` per cell, one
``env-<environment>.json`` per environment built (:class:`EnvRecord`), and ``run.json``
(:class:`RunPlan`): the matrix the run used and every cell some session planned to run,
so that merge can name the cells that never ran.

Version history (both): 1, unversioned (harness 0.1, written by the noxfile as plain
dicts); 2, typed, with ``schema_version`` and ``kind``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, ClassVar, Literal

import msgspec

from harness.result.cell import CellInfo, NonNegative
from harness.result.document import Document
from harness.result.names import env_id, extra_env_id, reference_id
from harness.result.settings import Settings

RUN_FILE = "run.json"
ENV_PREFIX = "env-"
# Beside a run's reports: the models exported for other backends and the reference
# embeddings, one folder per model and environment (no report in it).
EXPORTS_DIR = "exports"


class EnvRecord(Document, kw_only=True, tag_field="kind", tag="environment"):
    """One environment a run built: what it pinned, what resolved, how long it took."""

    KIND: ClassVar[str] = "environment"
    READS: ClassVar[frozenset[int]] = frozenset({1, 2, 3})
    UNVERSIONED_IS_V1: ClassVar[bool] = True

    schema_version: int = Document.SCHEMA_VERSION
    torch: str
    status: Literal["ok", "failed"] = "failed"
    error: str | None = None
    session: str | None = None
    run_id: str | None = None
    python: str | None = None
    venv: str | None = None
    build_s: NonNegative | None = None
    install_s: dict[str, NonNegative] = {}
    packages: dict[str, str] = {}
    built: str | None = None
    # How uv installed: its link mode (uv's hardlink; "copy" in builds for cold cells before
    # uv_cache) and whether it compiled all bytecode up front (no: the warm-up compiles
    # what the load imports). uv_cache: the harness's own uv cache that a build for cold
    # cells linked from (None: uv's), whose inodes no environment outside the harness's
    # cold ones shares. resolved_sha256 keys the resolved set (versions and Python);
    # reused_from names the environment with the same key whose packages were reused.
    link_mode: str | None = None
    compile_bytecode: bool | None = None
    uv_cache: str | None = None
    resolved_sha256: str | None = None
    reused_from: str | None = None
    # The versions pinned besides torch (matrix.yaml's packages:), installed exactly.
    pins: dict[str, str] = {}
    # The lock that rebuilds this environment: `uv pip freeze` (every distribution, exactly;
    # the harness's own editable install left out), the package sources uv was given
    # (UV_INDEX_URL, UV_EXTRA_INDEX_URL, UV_FIND_LINKS, UV_INDEX_STRATEGY) and those torch's
    # matrix entry adds for torch alone. Records from before it was kept have none.
    lock: list[str] = []
    sources: dict[str, str] = {}
    torch_sources: dict[str, str] = {}
    # A reference environment (a reference run, issue 16): the stored baseline whose lock it
    # was rebuilt from. Its name is ``<environment id>@baseline``; a failed one's error says
    # why the lock could not be rebuilt (the run then compares with the stored numbers).
    reference: str | None = None
    # The environment the cells of other backends (onnx, openvino) load in: the matrix's
    # environment with those backends' sentence-transformers extras, named
    # ``<environment id>+onnx+openvino``; empty for the environment torch's cells load in.
    extras: list[str] = []

    @property
    def env_id(self) -> str:
        """The environment's id in the matrix: ``torch-2.13.0``, ``torch-2.13.0-transformers-5.17.0``."""
        return env_id(self.torch, self.pins)

    @property
    def name(self) -> str:
        """The environment's name in file names: its id, ``@baseline`` after a reference's."""
        name = extra_env_id(self.env_id, self.extras)
        return reference_id(name) if self.reference else name

    @property
    def key(self) -> str:
        """Its key in a merged report's ``environments``: the torch version, as it always
        was, for an environment without pins; its name otherwise (two environments of one
        torch version, pinned otherwise or a reference beside the current one)."""
        return self.torch if not self.pins and not self.reference and not self.extras else self.name

    def path_in(self, run_dir: str | os.PathLike) -> Path:
        return Path(run_dir) / f"{ENV_PREFIX}{self.name}.json"

    @classmethod
    def upgrade(cls, data: dict, version: int) -> dict:
        return {**data, "schema_version": cls.SCHEMA_VERSION, "kind": cls.KIND}


class PackageChange(msgspec.Struct, kw_only=True, frozen=True):
    """A distribution whose version differs between a reference's lock and the current one
    (None: not in that lock)."""

    name: str
    reference: str | None = None
    current: str | None = None

    @property
    def text(self) -> str:
        return f"{self.name} {self.reference or '(none)'} -> {self.current or '(none)'}"


def _lock_versions(lock: list[str]) -> dict[str, str]:
    """Name (PEP 503 normal form) -> version of ``uv pip freeze`` lines (``name==version``;
    ``name @ url`` keeps the url as its version)."""
    out = {}
    for line in lock:
        name, sep, version = line.partition("==")
        if not sep:
            name, sep, version = line.partition(" @ ")
        if sep:
            out[re.sub(r"[-_.]+", "-", name.strip()).lower()] = version.strip()
    return out


def lock_changes(reference: list[str], current: list[str]) -> list[PackageChange]:
    """The distributions whose versions differ between two locks, by name; none: the stack
    did not change."""
    return version_changes(_lock_versions(reference), _lock_versions(current))


def version_changes(reference: dict[str, str], current: dict[str, str]) -> list[PackageChange]:
    """The distributions whose versions differ between two resolved sets (name -> version;
    names compared in PEP 503 normal form), by name."""
    ref = {re.sub(r"[-_.]+", "-", name).lower(): version for name, version in reference.items()}
    cur = {re.sub(r"[-_.]+", "-", name).lower(): version for name, version in current.items()}
    return [
        PackageChange(name=name, reference=ref.get(name), current=cur.get(name))
        for name in sorted(set(ref) | set(cur))
        if ref.get(name) != cur.get(name)
    ]


class PlannedCell(CellInfo, kw_only=True):
    """A cell some session planned to run, with the settings it was to run with."""

    # A CellInfo with ``settings`` beside its fields (run.json lists each planned cell flat,
    # as it always did): from_info() and info convert by CellInfo's own field list.
    settings: Settings | None = None

    @classmethod
    def from_info(cls, info: CellInfo, settings: Settings | None) -> PlannedCell:
        return cls(**{name: getattr(info, name) for name in CellInfo.__struct_fields__}, settings=settings)

    @property
    def info(self) -> CellInfo:
        return CellInfo(**{name: getattr(self, name) for name in CellInfo.__struct_fields__})


class RunPlan(Document, kw_only=True, tag_field="kind", tag="run"):
    KIND: ClassVar[str] = "run"
    READS: ClassVar[frozenset[int]] = frozenset({1, 2, 3})
    UNVERSIONED_IS_V1: ClassVar[bool] = True

    schema_version: int = Document.SCHEMA_VERSION
    run_id: str
    planned: list[PlannedCell] = []
    # The expanded matrix the run used, as harness.matrix.expand summarises it (free-form: it is
    # shown, never computed with).
    matrix: dict[str, Any] | None = None
    gathered_from: list[str] = []
    # Interleaved runs: the seed of the shuffles, and every round's order (cell ids) as it
    # was run, warm-up rounds included; a sample's ``round`` indexes this list. A cell's k-th
    # round is its sample k. Empty for a run measured cell by cell (``order: sequential``).
    seed: int | None = None
    rounds: list[list[str]] = []

    def add(self, cells: list[PlannedCell]) -> RunPlan:
        known = {c.id for c in self.planned}
        return msgspec.structs.replace(self, planned=self.planned + [c for c in cells if c.id not in known])

    @classmethod
    def upgrade(cls, data: dict, version: int) -> dict:
        return {**data, "schema_version": cls.SCHEMA_VERSION, "kind": cls.KIND}
