"""include: and exclude:, and the cells they act on: the expansion of the valid models,
torch versions and package axes into environments and cells, and the rules that drop,
extend or add cells, checked (GitHub Actions' semantics: exclude first, then include).
"""

from __future__ import annotations

import itertools
import math
from typing import Any

from packaging.utils import InvalidName, canonicalize_name

from harness.matrix.checks import (
    _VERSION_TYPE,
    _backend_problem,
    _device_problem,
    _dtype_problem,
    _mode_problem,
    _Problems,
    _show,
    _version,
)
from harness.matrix.model import (
    DIMENSIONS,
    VARIANTS,
    Cell,
    EnvSpec,
    MatrixError,
    ModelSpec,
    TorchSpec,
    version_key,
)
from harness.result import (
    BACKENDS,
    DEFAULT_BACKEND,
    DEFAULT_DTYPE,
    DTYPES,
    CellInfo,
    Settings,
    backend_problem,
    cosine_threshold,
)
from harness.result.settings import BOUNDS

# What an include entry may set on the cells it matches or adds.
CELL_SETTINGS = ("runs", "warmups", "timeout")
# Every key a rule matches cells on, in the order a cell's key holds them.
RULE_KEYS = DIMENSIONS + VARIANTS

_RULE_TYPES = {
    "model": "{subject}; write a model name from models:",
    "torch": _VERSION_TYPE,
    "mode": "{subject}; write cold or warm",
    "device": "{subject}; write cpu, cuda or cuda:N",
    "backend": "{subject}; write " + ", ".join(BACKENDS),
    "dtype": "{subject}; write " + ", ".join(DTYPES),
}


def _key(cell: Cell) -> tuple:
    return (
        cell.model.name,
        cell.torch.version,
        cell.mode,
        cell.device,
        cell.backend,
        cell.dtype,
        cell.packages,
    )


def _matches(key: tuple, match: dict[str, str]) -> bool:
    pins = dict(key[len(RULE_KEYS)])
    return all(
        (key[RULE_KEYS.index(dim)] if dim in RULE_KEYS else pins.get(dim)) == value
        for dim, value in match.items()
    )


def _describe(match: dict[str, str]) -> str:
    return ", ".join(f"{dim} {value}" for dim, value in match.items())


class _Expansion:
    """What cells and rules are built from: the valid models and torch versions."""

    def __init__(
        self,
        models: list[ModelSpec],
        torches: list[TorchSpec],
        settings: dict,
        rejected: set[str],
        axes: dict[str, tuple[str, ...]],
    ):
        self.models = {model.name: model for model in models}
        self.rejected = rejected
        self.torches = torches
        self.settings = settings
        self.axes = axes
        self.agreement: dict[str, float] = {}  # agreement: as given (cosine floors by dtype kind)
        self._by_version = {spec.version: spec for spec in torches}

    def axes_of(self, spec: TorchSpec) -> dict[str, tuple[str, ...]]:
        """The package axes a torch is crossed with: all but those its entry pins itself."""
        own = dict(spec.packages)
        return {name: versions for name, versions in self.axes.items() if name not in own}

    def environment_count(self) -> int:
        """How many environments :meth:`environments` would make, without making them."""
        every = math.prod(len(versions) for versions in self.axes.values())
        # A torch's own pins replace those axes for it: divide them out (no axes_of per torch).
        return sum(
            every // math.prod(len(self.axes[name]) for name, _ in spec.packages if name in self.axes)
            for spec in self.torches
        )

    def environments(self) -> list[EnvSpec]:
        """Every torch x package-version combination, torch-major, axes in matrix order."""
        envs = []
        for spec in self.torches:
            axes = self.axes_of(spec)
            for combination in itertools.product(*axes.values()):
                pins = {**dict(spec.packages), **dict(zip(axes, combination))}
                envs.append(EnvSpec(spec, tuple(sorted(pins.items()))))
        return envs

    def missing_pins(self, match: dict[str, str]) -> list[str]:
        """The package axes an include must also name to add a cell of its torch."""
        spec = self.torch(match["torch"]) if "torch" in match else None
        return [name for name in self.axes_of(spec) if name not in match] if spec else []

    def package_versions(self, name: str) -> list[str]:
        """The versions a rule may name for a package: its axis and any torch's own pin."""
        listed = list(self.axes.get(name, ()))
        for spec in self.torches:
            pinned = dict(spec.packages).get(name)
            if pinned and all(_version(v) != _version(pinned) for v in listed):
                listed.append(pinned)
        return listed

    def torch(self, version: str) -> TorchSpec | None:
        exact = self._by_version.get(version)  # every cell of the expansion asks: one dict hit
        if exact is not None:
            return exact
        parsed = _version(version)
        for spec in self.torches:
            if spec.version == version or (parsed is not None and version_key(spec.version) == parsed):
                return spec
        return None

    def cell(
        self,
        model: str,
        torch: str,
        mode: str,
        device: str,
        pins: dict[str, str] | None = None,
        backend: str = DEFAULT_BACKEND,
        dtype: str = DEFAULT_DTYPE,
    ) -> Cell:
        spec = self.torch(torch)
        if spec is None:  # not reached: the axes and the rules name only listed versions
            raise MatrixError(f"torch {torch} is not in the matrix")
        pins = {**(pins or {}), **dict(spec.packages)}
        found = self.models[model]
        try:
            info = CellInfo.from_axes(
                model=found.name,
                source=found.source,
                mode=mode,
                device=device,
                torch=spec.version,
                packages=pins,
                backend=backend,
                dtype=dtype,
            )
        except ValueError as exc:  # an id too long for a file name: the names and pins together
            raise MatrixError(f"{exc}; shorten the model's name or its pins") from None
        settings = Settings(
            runs=self.settings["runs"],
            warmups=self.settings["warmups"],
            timeout_s=float(self.settings["timeout"]),
        )
        return Cell(info, found, spec, settings, cosine_threshold(dtype, self.agreement))

    def rule(self, rule: Any, where: list, allowed: tuple[str, ...], problems: _Problems):
        """An include / exclude entry as ({dimension: canonical value}, {cell field: value}),
        or (None, {}) when it has a problem (reported here)."""
        if not isinstance(rule, dict):
            problems.mapping(rule, where, ())
            return None, {}
        # A package key as written (Sentence_Transformers) names its canonical axis.
        packages = {key: self.package_key(key) for key in rule if key not in RULE_KEYS + allowed}
        if (
            problems.mapping(rule, where, RULE_KEYS + allowed + tuple(k for k, v in packages.items() if v))
            is None
        ):
            return None, {}
        if not rule:
            problems.add(where, f"is empty; give at least one of {', '.join(DIMENSIONS)}")
            return None, {}
        ok = True
        changes = {}
        for key in allowed:
            if key in rule:
                number = problems.number(rule[key], where + [key], BOUNDS[key])
                ok = ok and number is not None
                changes["timeout_s" if key == "timeout" else key] = number
        match: dict[str, str] = {}
        for dim in RULE_KEYS:
            if dim not in rule:
                continue
            value = problems.string(rule[dim], where + [dim], _RULE_TYPES[dim])
            problem = None if value is None else self._dimension_problem(dim, value)
            if value is None or problem == "":
                ok = False
            elif problem:
                problems.add(where + [dim], problem)
                ok = False
            else:
                spec = self.torch(value) if dim == "torch" else None
                match[dim] = spec.version if spec is not None else value
        for key, name in packages.items():
            if name is None:  # not reached: mapping() above refused the rule
                continue
            version = problems.string(rule[key], where + [key], _VERSION_TYPE)
            listed = self.package_versions(name)
            same = [v for v in listed if version is not None and _version(v) == _version(version)]
            if version is None:
                ok = False
            elif not same:
                problems.add(
                    where + [key],
                    f"{name} {_show(version)} is not listed under packages: ({', '.join(listed)})",
                )
                ok = False
            else:
                match[name] = same[0]
        if ok and "backend" in match and "dtype" in match:
            problem = backend_problem(match["backend"], match["dtype"])
            if problem:
                problems.add(where + ["dtype"], problem)
                ok = False
        if not ok:
            return None, {}
        if not match:  # only settings, no dimension: it would match everything
            problems.add(where, f"names no cell; give at least one of {', '.join(DIMENSIONS)}")
            return None, {}
        return match, changes

    def package_key(self, key: Any) -> str | None:
        """The package axis (or torch pin) a rule key names, or None."""
        try:
            name = canonicalize_name(key, validate=True) if isinstance(key, str) else None
        except InvalidName:
            return None
        return name if name is not None and self.package_versions(name) else None

    def _dimension_problem(self, dim: str, value: str) -> str | None:
        """Why a rule's value names nothing; "" when its own entry was already reported."""
        if dim == "model":
            if value in self.rejected:
                return ""
            if value not in self.models:
                known = ", ".join(self.models) or "none valid"
                return f"{_show(value)} is not a model name from models: ({known})"
        elif dim == "torch":
            if _version(value) is None:
                return f"{_show(value)} is not a version"
            if self.torch(value) is None:
                listed = ", ".join(t.version for t in self.torches) or "none"
                return (
                    f"torch {_show(value)} is not listed under torch: ({listed}); add it there, "
                    "with its source"
                )
        elif dim == "mode":
            return _mode_problem(value)
        elif dim == "backend":
            return _backend_problem(value)
        elif dim == "dtype":
            return _dtype_problem(value)
        else:
            return _device_problem(value)
        return None
