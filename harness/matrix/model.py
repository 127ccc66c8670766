"""What a checked matrix is: its models, torch versions and cells.

Everything here is already valid (harness.matrix.expand builds it only from a file with no
problems); a cell gives the result format's views of itself (``info``, ``settings``,
``planned``), so that every later stage speaks in harness.result's types.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import msgspec
from packaging.version import InvalidVersion, Version

from harness.errors import UserError
from harness.result import (
    DEFAULT_BACKEND,
    DEFAULT_DTYPE,
    DEFAULT_TARGETS,
    MODES,
    CellInfo,
    PlannedCell,
    ReadsCellAxes,
    Settings,
    env_id,
    reference_id,
)
from harness.result.settings import BOUNDS

# The keys a cell is identified by, in the order of its id; include / exclude match on them.
DIMENSIONS = ("model", "torch", "mode", "device")
# What a cell loads the model with; include / exclude match on them too, and an include
# that adds a cell without naming them adds a torch float32 one.
VARIANTS = ("backend", "dtype")
# How a run's samples are ordered: in rounds, each cell once per round in a freshly shuffled
# order (the default), or cell by cell.
ORDERS = ("interleaved", "sequential")


class MatrixError(UserError):
    """A matrix.yaml with problems; the message lists every one, one line each (a single
    problem is the whole message: one line, ``FILE: key: what is wrong (line N)``)."""

    def __init__(self, message: str, problems: Iterable[str] = ()):
        super().__init__(message)
        self.problems = list(problems)

    @classmethod
    def from_problems(cls, path: str | Path, problems: list[str]) -> MatrixError:
        if len(problems) == 1:
            return cls(f"{path}: {problems[0]}", problems)
        count = f"{len(problems)} problems"
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
    packages: tuple[tuple[str, str], ...] = ()  # this torch's own pins: (distribution, version)

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
            "packages": dict(self.packages),
        }


@dataclass(frozen=True)
class EnvSpec:
    """One environment nox builds: a torch version and the package pins it is crossed with
    (its torch entry's own, and one version of each ``packages:`` axis)."""

    torch: TorchSpec
    packages: tuple[tuple[str, str], ...] = ()  # (canonical distribution name, version), by name

    @property
    def id(self) -> str:
        """The nox parameter id and the environment's name in file names: ``torch-2.13.0``,
        ``torch-2.13.0-transformers-5.17.0``."""
        return env_id(self.torch.version, dict(self.packages))

    @property
    def pins(self) -> dict[str, str]:
        return dict(self.packages)

    @property
    def requirements(self) -> list[str]:
        """What the environment installs exactly: torch and every pin."""
        return [self.torch.requirement, *(f"{name}=={version}" for name, version in self.packages)]


@dataclass(frozen=True)
class ModelSpec:
    name: str
    source: str  # as ModelSource.parse took it; a relative path: made absolute against the matrix
    targets: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_TARGETS), compare=False)
    path: str | None = None  # entry: sources, the folder MODULE is imported from (absolute)

    def to_dict(self) -> dict[str, Any]:
        found = {"name": self.name, "source": self.source, "targets": dict(self.targets)}
        return {**found, "path": self.path} if self.path else found


@dataclass(frozen=True)
class Cell(ReadsCellAxes):
    """A cell of the matrix: what it is (the result format's :class:`CellInfo`, the
    report's ``cell`` block), how it is sampled (its :class:`Settings`), and the matrix
    entries it came from. The axes read through to ``info``; nothing is copied."""

    info: CellInfo = field(hash=False)
    model: ModelSpec
    torch: TorchSpec
    settings: Settings = field(hash=False)
    cosine_threshold: float | None = None  # the lowest embedding cosine that agrees (agreement:)

    @property
    def id(self) -> str:
        return self.info.id

    @property
    def stack(self) -> str | None:
        """ "baseline": a reference cell (CellInfo.stack)."""
        return self.info.stack

    @property
    def packages(self) -> tuple[tuple[str, str], ...]:
        """The pins of its environment besides torch: (distribution, version), by name."""
        return tuple(sorted(self.info.packages.items()))

    @property
    def runs(self) -> int:
        return self.settings.runs

    @property
    def warmups(self) -> int:
        return self.settings.warmups

    @property
    def timeout_s(self) -> float:
        return self.settings.timeout_s

    def as_reference(self) -> Cell:
        """This cell measured in the baseline's environment rebuilt from its lock: id
        ``<cell id>@baseline`` (a reference run, issue 16)."""
        return replace(
            self, info=msgspec.structs.replace(self.info, id=reference_id(self.id), stack="baseline")
        )

    def with_settings(self, **changes: Any) -> Cell:
        """The same cell sampled otherwise: ``runs``, ``warmups`` or ``timeout_s`` replaced."""
        return replace(self, settings=msgspec.structs.replace(self.settings, **changes)) if changes else self

    @property
    def env_id(self) -> str:
        """The id of the environment it runs in: ``<environment id>@baseline`` for a reference."""
        return self.info.env_id

    @property
    def targets(self) -> dict[str, float]:
        return self.model.targets

    @property
    def env(self) -> EnvSpec:
        """The environment this cell runs in."""
        return EnvSpec(self.torch, self.packages)

    @property
    def session(self) -> str:
        """The nox session that runs this cell: ``cold_start(torch-2.13.0)``."""
        return session_name(self.mode, self.env)

    @property
    def planned(self) -> PlannedCell:
        """The cell as run.json lists it."""
        return PlannedCell.from_info(self.info, self.settings)

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
            **({"packages": dict(self.packages)} if self.packages else {}),
            "backend": self.backend,
            "dtype": self.dtype,
        }


def session_name(mode: str, env: EnvSpec) -> str:
    return f"{mode}_start({env.id})"


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
    # reference_run: "baseline" rebuilds the stored baseline's environments from their locks
    # and measures their cells (<cell id>@baseline) in the same rounds; "numbers" does not.
    reference_run: str = "numbers"
    install: tuple[str, ...] = ()  # uv arguments every environment installs (install:)
    packages: dict[str, tuple[str, ...]] = field(default_factory=dict)  # the packages: axes
    environments: tuple[EnvSpec, ...] = ()  # one per torch x pins combination that has cells
    backends: tuple[str, ...] = (DEFAULT_BACKEND,)  # as declared (backends:), plus any an include adds
    dtypes: tuple[str, ...] = (DEFAULT_DTYPE,)  # as declared (dtypes:), plus any an include adds
    agreement: dict[str, float] = field(default_factory=dict)  # cosine floors: float, qint8

    # -- indexes, built once per matrix on first use: every lookup below is then a dict
    # hit, so planning a matrix of N cells is linear in N, not quadratic (issue 27).

    @cached_property
    def _environments_by_id(self) -> dict[str, EnvSpec]:
        return {env.id: env for env in self.environments}

    @cached_property
    def _cells_by_env(self) -> dict[EnvSpec, list[Cell]]:
        found: dict[EnvSpec, list[Cell]] = {}
        for cell in self.cells:
            found.setdefault(cell.env, []).append(cell)
        return found

    @cached_property
    def _cells_by_torch(self) -> dict[TorchSpec, list[Cell]]:
        found: dict[TorchSpec, list[Cell]] = {}
        for cell in self.cells:
            found.setdefault(cell.torch, []).append(cell)
        return found

    def torch_spec(self, version: str) -> TorchSpec:
        """The matrix's torch entry for a version (``2.13`` finds ``2.13.0``)."""
        wanted = version_key(str(version))
        for spec in self.torch:
            if spec.version == str(version) or (wanted is not None and version_key(spec.version) == wanted):
                return spec
        listed = ", ".join(spec.version for spec in self.torch)
        raise MatrixError(f"{self.path}: torch {version} is not in the matrix (it lists {listed})")

    def environment(self, env_id: str) -> EnvSpec:
        """An environment by its id (``torch-2.13.0-transformers-5.17.0``)."""
        found = self._environments_by_id.get(env_id)
        if found is not None:
            return found
        listed = ", ".join(env.id for env in self.environments)
        raise MatrixError(f"{self.path}: no environment {env_id} in the matrix (it has {listed})")

    def cells_for(self, key: str, modes: Iterable[str] | None = None) -> list[Cell]:
        """The cells of one environment (``key`` its id), or of every environment of one
        torch version (``key`` the version: ``2.13`` finds 2.13.0's), in matrix order."""
        env = self._environments_by_id.get(key)
        if env is not None:
            cells = self._cells_by_env.get(env, [])
        else:
            cells = self._cells_by_torch.get(self.torch_spec(key), [])
        wanted = None if modes is None else list(modes)
        if wanted is not None:
            unknown = [mode for mode in wanted if mode not in MODES]
            if unknown:
                raise MatrixError(f"{self.path}: mode {unknown[0]!r} is not one of {', '.join(MODES)}")
        return [cell for cell in cells if wanted is None or cell.mode in wanted]

    def sessions(self) -> list[tuple[EnvSpec, str, list[Cell]]]:
        """(environment, mode, cells) for every nox session that has cells, torch-major."""
        groups = []
        for env in self.environments:
            by_mode: dict[str, list[Cell]] = {}
            for cell in self._cells_by_env.get(env, []):
                by_mode.setdefault(cell.mode, []).append(cell)
            groups += [(env, mode, by_mode[mode]) for mode in self.modes if by_mode.get(mode)]
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
        return replace(self, **changes, cells=tuple(cell.with_settings(**changes) for cell in self.cells))

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
            "backends": list(self.backends),
            "dtypes": list(self.dtypes),
            "agreement": dict(self.agreement),
            "order": self.order,
            "reference": self.reference,
            "reference_run": self.reference_run,
            "install": list(self.install),
            "packages": {name: list(versions) for name, versions in self.packages.items()},
            "environments": [env.id for env in self.environments],
            "cells": [cell.to_dict() for cell in self.cells],
        }
