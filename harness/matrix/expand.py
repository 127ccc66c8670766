"""matrix.yaml checked and expanded into cells, in one pass that reports every problem at once.

The matrix is the first stage of the data flow (matrix.yaml -> cells -> environment ->
probe -> samples -> statistics -> report); nothing here runs a model or builds an
environment. ``load_matrix`` returns a :class:`~harness.matrix.model.Matrix` whose cells say
exactly what will run, each with the id its report is written under.

Each value is checked once, where it is read, and every problem is collected with its key
path and line (``torch[1].version: "2.x" is not a version (line 9)``): unknown keys (a
misspelt key is an error, not a silently ignored setting), types, versions that parse,
known modes and devices, model sources (harness.result.ModelSource), runs / warmups /
timeout within the bounds of harness.result.settings, unique names, and include / exclude
rules that match something.

Include / exclude follow GitHub Actions: the product of models x torch x modes x devices is
expanded, every ``exclude`` entry drops the cells that match all of its keys, then every
``include`` entry either extends the cells it matches (with runs / warmups / timeout) or,
when it names all four of model, torch, mode and device and no such cell exists, adds it.

This module is the pass itself; what it reads each part with lives beside it:
harness.matrix.checks (the problem collector and typed readers), harness.matrix.sections
(one parser per section) and harness.matrix.rules (the expansion and include / exclude).
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

from harness.matrix.checks import (
    COSINE,
    _backend_problem,
    _device_problem,
    _dtype_problem,
    _kind,
    _mode_problem,
    _Problems,
    _show,
)
from harness.matrix.loader import Lines, load_yaml
from harness.matrix.model import (
    DIMENSIONS,
    Matrix,
    MatrixError,
)
from harness.matrix.rules import CELL_SETTINGS, RULE_KEYS, _describe, _Expansion, _key, _matches
from harness.matrix.sections import (
    _install,
    _models,
    _order,
    _package_axes,
    _python,
    _reference,
    _reference_run,
    _torches,
)
from harness.result import (
    BACKEND_DTYPES,
    COSINE_THRESHOLDS,
    DEFAULT_BACKEND,
    DEFAULT_DTYPE,
    DEFAULT_TARGETS,
    MODES,
    backend_problem,
    real_path,
)
from harness.result.settings import BOUNDS, DEFAULT_RUNS, DEFAULT_TIMEOUT_S, DEFAULT_WARMUPS

DEFAULT_PATH = "matrix.yaml"
# The most cells a matrix may expand to (the product of its axes, before exclude:; with the
# cells include: adds, after): a matrix past it is refused in one line before anything is
# expanded. A real one has tens of cells; each cell is at least one sample, a fresh process.
MAX_CELLS = 50_000
TOP_KEYS = (
    "python",
    *CELL_SETTINGS,
    "order",
    "reference",
    "reference_run",
    "targets",
    "models",
    "torch",
    "modes",
    "devices",
    "backends",
    "dtypes",
    "agreement",
    "install",
    "packages",
    "exclude",
    "include",
)


def load_matrix(path: str | Path = DEFAULT_PATH) -> Matrix:
    """Read, check and expand a matrix file; every problem in it raises one MatrixError."""
    data, lines = load_yaml(path)
    return parse_matrix(data, path, lines)


def parse_matrix(data: Any, path: str | Path = DEFAULT_PATH, lines: Lines | None = None) -> Matrix:
    """Check and expand an already-parsed matrix document (``load_matrix`` without the file)."""
    path = Path(path)
    if data is None:
        raise MatrixError(f"{path}: the file is empty; it needs at least models: and torch:")
    if not isinstance(data, dict):
        raise MatrixError(
            f"{path}: the top level is a {_kind(data)}; it must be a mapping (models:, torch:, ...)"
        )
    problems = _Problems(lines or {})
    problems.mapping(data, [], TOP_KEYS, required=("models", "torch"))

    defaults = {"runs": DEFAULT_RUNS, "warmups": DEFAULT_WARMUPS, "timeout": DEFAULT_TIMEOUT_S}
    settings = {}
    for key, default in defaults.items():
        value = problems.number(data[key], [key], BOUNDS[key]) if key in data else default
        settings[key] = default if value is None else value
    python = _python(data, problems)
    targets = {
        **DEFAULT_TARGETS,
        **(problems.targets(data["targets"], ["targets"]) if "targets" in data else {}),
    }
    base = real_path(path, "matrix file", error=MatrixError).parent
    models, declared = _models(data, base, targets, problems)
    install = _install(data, base, problems)
    axes = _package_axes(data, problems)
    torches = _torches(data, problems)
    order = _order(data, problems)
    reference = _reference(data, torches, problems)
    reference_run = _reference_run(data, problems)
    modes = problems.values(data, "modes", MODES, _mode_problem)
    devices = problems.values(data, "devices", ("cpu",), _device_problem)
    agreement = {
        key: float(value)
        for key in COSINE_THRESHOLDS
        if "agreement" in data
        and isinstance(data["agreement"], dict)
        and key in data["agreement"]
        and (value := problems.number(data["agreement"][key], ["agreement", key], COSINE, " in (0, 1]"))
        is not None
    }
    if "agreement" in data:
        problems.mapping(data["agreement"], ["agreement"], tuple(COSINE_THRESHOLDS))
    backends = problems.values(data, "backends", (DEFAULT_BACKEND,), _backend_problem)
    dtypes = problems.values(data, "dtypes", (DEFAULT_DTYPE,), _dtype_problem)
    for index, dtype in enumerate(dtypes):
        # A combination a backend cannot do is dropped; a dtype none of them can do is a mistake.
        if backends and not any(dtype in BACKEND_DTYPES[backend] for backend in backends):
            able = "; ".join(f"{b}: {', '.join(BACKEND_DTYPES[b])}" for b in backends)
            problems.add(["dtypes", index], f"{_show(dtype)} is a dtype no listed backend can do ({able})")

    # Expand; with some entries rejected above this still runs on the rest, so that rule
    # problems show in the same report as the entry problems.
    rejected = declared - {m.name for m in models}
    expansion = _Expansion(models, torches, settings, rejected=rejected, axes=axes)
    expansion.agreement = agreement
    # Counted before a cell (or an environment) is made: 2^20 would not fit in memory.
    variants = sum(dtype in BACKEND_DTYPES[backend] for backend in backends for dtype in dtypes)
    environments = expansion.environment_count()
    _check_cell_count(path, len(models) * environments * len(modes) * len(devices) * variants)
    cells = {}
    for model in models:
        for env in expansion.environments():
            for mode, device, backend, dtype in itertools.product(modes, devices, backends, dtypes):
                if dtype in BACKEND_DTYPES[backend]:
                    version = env.torch.version
                    cell = expansion.cell(model.name, version, mode, device, env.pins, backend, dtype)
                    cells[_key(cell)] = cell
    for index, rule in enumerate(problems.sequence(data.get("exclude", []), ["exclude"], at_least_one=False)):
        match, _ = expansion.rule(rule, ["exclude", index], (), problems)
        if match is None:
            continue
        hits = [key for key in cells if _matches(key, match)]
        if not hits:
            problems.add(
                ["exclude", index], f"matches no cell ({_describe(match)}); remove it or fix its values"
            )
        for hit in hits:
            del cells[hit]
    extra_modes: list[str] = []
    extra_devices: list[str] = []
    extra_backends: list[str] = []
    extra_dtypes: list[str] = []
    for index, rule in enumerate(problems.sequence(data.get("include", []), ["include"], at_least_one=False)):
        match, changes = expansion.rule(rule, ["include", index], CELL_SETTINGS, problems)
        if match is None:
            continue
        hits = [key for key in cells if _matches(key, match)]
        if hits:
            if not changes:
                them = "them" if len(hits) != 1 else "it"
                problems.add(
                    ["include", index],
                    f"matches {len(hits)} existing cell{'s' if len(hits) != 1 else ''} "
                    f"and sets nothing for {them}; give runs, warmups or timeout, "
                    f"or remove it",
                )
            for hit in hits:
                cells[hit] = cells[hit].with_settings(**changes)
        elif all(dim in match for dim in DIMENSIONS) and not expansion.missing_pins(match):
            pins = {name: value for name, value in match.items() if name not in RULE_KEYS}
            variant = [match.get("backend", DEFAULT_BACKEND), match.get("dtype", DEFAULT_DTYPE)]
            problem = backend_problem(*variant)
            if problem:
                # Named by the dtype's line when it has one (it is what the backend cannot do).
                problems.add(["include", index, "dtype" if "dtype" in match else "backend"], problem)
                continue
            added = expansion.cell(
                match["model"], match["torch"], match["mode"], match["device"], pins, *variant
            ).with_settings(**changes)
            cells[_key(added)] = added
            for value, listed, extra in (
                (match["mode"], modes, extra_modes),
                (match["device"], devices, extra_devices),
                (variant[0], backends, extra_backends),
                (variant[1], dtypes, extra_dtypes),
            ):
                if value not in listed and value not in extra:
                    extra.append(value)
        else:
            missing = [dim for dim in DIMENSIONS if dim not in match] + expansion.missing_pins(match)
            problems.add(
                ["include", index],
                f"matches no cell ({_describe(match)}); to add a cell, also give {', '.join(missing)}",
            )

    _check_cell_count(path, len(cells))  # with the cells include: added
    if not problems and not cells:
        problems.add(["exclude"] if data.get("exclude") else [], "the matrix expands to no cells")
    if problems:
        raise MatrixError.from_problems(path, problems.lines())
    return Matrix(
        path=path,
        python=python,
        runs=int(settings["runs"]),
        warmups=int(settings["warmups"]),
        timeout_s=float(settings["timeout"]),
        targets=targets,
        models=tuple(models),
        torch=tuple(torches),
        modes=tuple(sorted(set(modes) | set(extra_modes), key=MODES.index)),
        devices=tuple(devices) + tuple(extra_devices),
        backends=tuple(backends) + tuple(extra_backends),
        dtypes=tuple(dtypes) + tuple(extra_dtypes),
        agreement={**COSINE_THRESHOLDS, **agreement},
        cells=tuple(cells.values()),
        order=order,
        reference=reference,
        reference_run=reference_run,
        install=install,
        packages=axes,
        # Each environment once, in expansion order; one whose cells are all excluded is none.
        environments=tuple(dict.fromkeys(cell.env for cell in cells.values())),
    )


def _check_cell_count(path: Path, count: int) -> None:
    """One line when the matrix expands to more than MAX_CELLS cells."""
    if count <= MAX_CELLS:
        return
    digits = len(str(count))
    said = f"{count:,}" if digits <= 15 else f"about 10^{digits - 1}"
    raise MatrixError(
        f"{path}: the matrix expands to {said} cells, over the limit of {MAX_CELLS:,} (models x "
        f"environments x modes x devices x backend/dtype pairs, before exclude:); split it into "
        f"smaller matrix files or list fewer versions"
    )
