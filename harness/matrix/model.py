"""What a checked matrix is: its models, torch versions and cells.

Everything here is already valid (harness.matrix.expand builds it only from a file with no
problems); a cell gives the result format's views of itself (``info``, ``settings``,
``planned``), so that every later stage speaks in harness.result's types.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from packaging.version import InvalidVersion, Version

from harness.errors import UserError
from harness.result import DEFAULT_TARGETS, MODES, CellInfo, PlannedCell, Settings
from harness.result.settings import BOUNDS

# The keys a cell is identified by, in the order of its id; include / exclude match on them.
DIMENSIONS = ("model", "torch", "mode", "device")
# How a run's samples are ordered: in rounds, each cell once per round in a freshly shuffled
# order (the default), or cell by cell.
ORDERS = ("interleaved", "sequential")


class MatrixError(UserError):
    """A matrix.yaml with problems; the message lists every one, one line each."""

    def __init__(self, message: str, problems: Iterable[str] = ()):
        super().__init__(message)
        self.problems = list(problems)

    @classmethod
    def from_problems(cls, path: str | Path, problems: list[str]) -> MatrixError:
        count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
        lines = "\n".join(f"  {problem}" for problem in problems)
        return cls(f"{path}: {count}:\n{lines}", problems)


def version_key(text: str):
    """A version as PEP 440 compares it (``2.13`` == ``2.13.0``), or None if it does not parse."""
    try:
        return Version(text)
    except InvalidVersion:
        return None


@dataclass(frozen=True)
class TorchSpec:
    version: str
    index_url: str | None = None
    extra_index_urls: tuple[str, ...] = ()
    find_links: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """The nox parameter id: ``torch-2.13.0``."""
        return f"torch-{self.version}"

    @property
    def requirement(self) -> str:
        return f"torch=={self.version}"

    def uv_env(self) -> dict[str, str]:
        """The UV_* variables for the sources this torch names (empty when it names none).

        Layer it over ``harness.pipconf.uv_environment()``: a source named here replaces
        pip's for that setting only, so pip's find-links still apply under a per-torch index.
        """
        env: dict[str, str] = {}
        if self.index_url:
            env["UV_INDEX_URL"] = self.index_url
        if self.extra_index_urls:
            env["UV_EXTRA_INDEX_URL"] = " ".join(self.extra_index_urls)  # uv: space-separated
        if self.find_links:
            env["UV_FIND_LINKS"] = ",".join(self.find_links)  # uv: comma-separated
        return env

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "index_url": self.index_url,
            "extra_index_urls": list(self.extra_index_urls),
            "find_links": list(self.find_links),
        }


@dataclass(frozen=True)
class ModelSpec:
    name: str
    source: str  # as ModelSource.parse took it; a relative path: made absolute against the matrix
    targets: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_TARGETS), compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "source": self.source, "targets": dict(self.targets)}


@dataclass(frozen=True)
class Cell:
    id: str
    model: ModelSpec
    torch: TorchSpec
    mode: str
    device: str
    runs: int
    warmups: int
    timeout_s: float

    @property
    def targets(self) -> dict[str, float]:
        return self.model.targets

    @property
    def session(self) -> str:
        """The nox session that runs this cell: ``cold_start(torch-2.13.0)``."""
        return session_name(self.mode, self.torch)

    @property
    def info(self) -> CellInfo:
        """The report's ``cell`` block."""
        return CellInfo(
            id=self.id,
            model=self.model.name,
            source=self.model.source,
            mode=self.mode,
            device=self.device,
            torch=self.torch.version,
        )

    @property
    def settings(self) -> Settings:
        return Settings(runs=self.runs, warmups=self.warmups, timeout_s=self.timeout_s)

    @property
    def planned(self) -> PlannedCell:
        """The cell as run.json lists it."""
        info = self.info
        return PlannedCell(
            **{key: getattr(info, key) for key in info.__struct_fields__}, settings=self.settings
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "model": self.model.name,
            "source": self.model.source,
            "torch": self.torch.version,
            "mode": self.mode,
            "device": self.device,
            "runs": self.runs,
            "warmups": self.warmups,
            "timeout_s": self.timeout_s,
            "targets": dict(self.targets),
        }


def session_name(mode: str, torch: TorchSpec) -> str:
    return f"{mode}_start({torch.label})"


@dataclass(frozen=True)
class Matrix:
    path: Path
    python: str
    runs: int
    warmups: int
    timeout_s: float
    targets: dict[str, float]
    models: tuple[ModelSpec, ...]
    torch: tuple[TorchSpec, ...]
    modes: tuple[str, ...]  # as declared, plus any an include adds
    devices: tuple[str, ...]  # as declared, plus any an include adds
    cells: tuple[Cell, ...]
    order: str = ORDERS[0]
    reference: str | None = None  # the torch version paired comparisons are made against

    def torch_spec(self, version: str) -> TorchSpec:
        """The matrix's torch entry for a version (``2.13`` finds ``2.13.0``)."""
        wanted = version_key(str(version))
        for spec in self.torch:
            if spec.version == str(version) or (wanted is not None and version_key(spec.version) == wanted):
                return spec
        listed = ", ".join(spec.version for spec in self.torch)
        raise MatrixError(f"{self.path}: torch {version} is not in the matrix (it lists {listed})")

    def cells_for(self, torch_version: str, modes: Iterable[str] | None = None) -> list[Cell]:
        """The cells one environment (one torch version) runs, in matrix order."""
        spec = self.torch_spec(torch_version)
        wanted = None if modes is None else list(modes)
        if wanted is not None:
            unknown = [mode for mode in wanted if mode not in MODES]
            if unknown:
                raise MatrixError(f"{self.path}: mode {unknown[0]!r} is not one of {', '.join(MODES)}")
        return [cell for cell in self.cells if cell.torch == spec and (wanted is None or cell.mode in wanted)]

    def sessions(self) -> list[tuple[TorchSpec, str, list[Cell]]]:
        """(torch, mode, cells) for every nox session that has cells, torch-major."""
        groups = []
        for spec in self.torch:
            for mode in self.modes:
                cells = self.cells_for(spec.version, [mode])
                if cells:
                    groups.append((spec, mode, cells))
        return groups

    def with_overrides(self, runs: object = None, warmups: object = None, timeout_s: object = None) -> Matrix:
        """The same matrix with runs / warmups / timeout replaced everywhere, cells included
        (a command-line ``RUNS=3`` wins over the file); checked with the settings' bounds."""
        given = {"runs": runs, "warmups": warmups, "timeout": timeout_s}
        problems = [
            f"{key}: {problem}"
            for key, value in given.items()
            if value is not None and (problem := BOUNDS[key].problem(value))
        ]
        if problems:
            raise MatrixError(f"{self.path}: override {'; '.join(problems)}", problems)
        changes: dict[str, Any] = {
            "timeout_s" if key == "timeout" else key: BOUNDS[key].checked(value)
            for key, value in given.items()
            if value is not None
        }
        if not changes:
            return self
        return replace(self, **changes, cells=tuple(replace(cell, **changes) for cell in self.cells))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able summary (run.json and the merged report keep it under "matrix")."""
        return {
            "path": str(self.path),
            "python": self.python,
            "runs": self.runs,
            "warmups": self.warmups,
            "timeout_s": self.timeout_s,
            "targets": dict(self.targets),
            "models": [model.to_dict() for model in self.models],
            "torch": [spec.to_dict() for spec in self.torch],
            "modes": list(self.modes),
            "devices": list(self.devices),
            "order": self.order,
            "reference": self.reference,
            "cells": [cell.to_dict() for cell in self.cells],
        }
