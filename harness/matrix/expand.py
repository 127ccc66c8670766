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
"""

from __future__ import annotations

import itertools
import json
import math
import re
import sys
from pathlib import Path
from typing import Any, Literal

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import InvalidName, canonicalize_name

from harness.errors import UserError
from harness.matrix.loader import Lines, format_path, load_yaml
from harness.matrix.model import (
    DIMENSIONS,
    ORDERS,
    VARIANTS,
    Cell,
    EnvSpec,
    Matrix,
    MatrixError,
    ModelSpec,
    TorchSpec,
    version_key,
)
from harness.result import (
    BACKEND_DTYPES,
    BACKENDS,
    COSINE_THRESHOLDS,
    DEFAULT_BACKEND,
    DEFAULT_DTYPE,
    DEFAULT_TARGETS,
    DTYPES,
    MODES,
    CellInfo,
    ModelSource,
    Settings,
    SourceError,
    backend_problem,
    cosine_threshold,
    real_path,
)
from harness.result.settings import BOUNDS, DEFAULT_RUNS, DEFAULT_TIMEOUT_S, DEFAULT_WARMUPS, Bound

DEFAULT_PATH = "matrix.yaml"
# The most cells a matrix may expand to (the product of its axes, before exclude:; with the
# cells include: adds, after): a matrix past it is refused in one line before anything is
# expanded. A real one has tens of cells; each cell is at least one sample, a fresh process.
MAX_CELLS = 50_000
# What an include entry may set on the cells it matches or adds.
CELL_SETTINGS = ("runs", "warmups", "timeout")
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
MODEL_KEYS = ("name", "source", "path", "targets")
TORCH_KEYS = ("version", "index_url", "extra_index_urls", "find_links", "packages")
# A package axis may not take a name a cell is already identified by.
RESERVED_PACKAGES = ("torch", *DIMENSIONS, *VARIANTS)
# Every key a rule matches cells on, in the order a cell's key holds them.
RULE_KEYS = DIMENSIONS + VARIANTS

# fullmatch throughout: "$" would also match before a trailing newline.
DEVICE_RE = re.compile(r"cpu|cuda(:[0-9]+)?")
PYTHON_RE = re.compile(r"3\.[0-9]+(\.[0-9]+)?")
# Names and versions become part of file names (the cell id): safe characters, bounded length.
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,99}")
NAME_WORDS = "letters, digits and . _ + - only, starting with a letter or digit, no '..', at most 100"
VERSION_RE = re.compile(r"[0-9][0-9A-Za-z.+_-]{0,49}")
URL_RE = re.compile(r"\S+")
TARGET = Bound(whole=False, low=0, high=math.inf, low_inclusive=False)
COSINE = Bound(whole=False, low=0, high=1, low_inclusive=False)

_VERSION_TYPE = '{subject}, not a version string; quote it ("2.13.0") so YAML keeps every digit'
_RULE_TYPES = {
    "model": "{subject}; write a model name from models:",
    "torch": _VERSION_TYPE,
    "mode": "{subject}; write cold or warm",
    "device": "{subject}; write cpu, cuda or cuda:N",
    "backend": "{subject}; write " + ", ".join(BACKENDS),
    "dtype": "{subject}; write " + ", ".join(DTYPES),
}


# --------------------------------------------------------------------------- words


def _kind(value: Any) -> str:
    if value is None:
        return "empty value"
    # bool before int: True is an int to isinstance.
    for python_type, word in (
        (bool, "true/false"),
        (int, "whole number"),
        (float, "number"),
        (str, "string"),
        (list, "list"),
        (dict, "mapping"),
    ):
        if isinstance(value, python_type):
            return word
    return type(value).__name__


def _show(value: Any) -> str:
    """A value as the user wrote it, short and on one line: strings in double quotes."""
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if value is None:
        return "an empty value"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return ".nan" if math.isnan(value) else (".inf" if value > 0 else "-.inf")
    if isinstance(value, (dict, list)):
        return "a " + _kind(value)
    return repr(value)


def _subject(value: Any) -> str:
    """``"2.x" is a string``; a mapping or list is not quoted back whole."""
    if isinstance(value, (dict, list)):
        return f"is a {_kind(value)}"
    return f"{_show(value)} is a {_kind(value)}"


def _mode_problem(value: str) -> str | None:
    return None if value in MODES else f"{_show(value)} is not a mode; write cold or warm"


def _device_problem(value: str) -> str | None:
    if DEVICE_RE.fullmatch(value):
        return None
    return f"{_show(value)} is not a device; write cpu, cuda or cuda:N"


def _backend_problem(value: str) -> str | None:
    return None if value in BACKENDS else f"{_show(value)} is not a backend; write {', '.join(BACKENDS)}"


def _dtype_problem(value: str) -> str | None:
    return None if value in DTYPES else f"{_show(value)} is not a dtype; write {', '.join(DTYPES)}"


def _version(text: str):
    """The parsed version, or None: it must also be usable in a file name as written."""
    return version_key(text) if VERSION_RE.fullmatch(text) else None


# --------------------------------------------------------------------------- checking


class _Problems:
    """Every problem found, each with its key path; worded and located on output."""

    def __init__(self, lines: Lines):
        self._lines = lines
        self.items: list[tuple[tuple, str]] = []

    def add(self, path, message: str) -> None:
        self.items.append((tuple(path), message))

    def __bool__(self) -> bool:
        return bool(self.items)

    def lines(self) -> list[str]:
        def order(item):  # by line, then as the document nests (list items by index)
            path = item[0]
            return self._line_of(path), [(p, "") if isinstance(p, int) else (-1, str(p)) for p in path]

        out: list[str] = []
        for path, message in sorted(self.items, key=order):
            line = self._line_of(path)
            text = f"{format_path(path)}: {message}" + (f" (line {line})" if line else "")
            if text not in out:
                out.append(text)
        return out

    def _line_of(self, path: tuple) -> int:
        # The nearest located ancestor: a missing key is reported on its mapping's line.
        for end in range(len(path), -1, -1):
            if path[:end] in self._lines:
                return self._lines[path[:end]]
        return 0

    # -- checks that report and return the usable value, or None --------------------

    def mapping(self, value: Any, where: list, keys: tuple[str, ...], required: tuple[str, ...] = ()):
        if not isinstance(value, dict):
            self.add(where, f"{_subject(value)}; expected a mapping")
            return None
        for key in sorted(set(value) - set(keys), key=str):
            self.add(where + [str(key)], f"unknown key; expected one of {', '.join(sorted(keys))}")
        for key in required:
            if key not in value:
                self.add(where, f'missing required key "{key}"')
        return value

    def sequence(self, value: Any, where: list, at_least_one: bool = True) -> list:
        if not isinstance(value, list):
            self.add(where, f"{_subject(value)}; expected a list")
            return []
        if at_least_one and not value:
            self.add(where, "is empty; list at least one")
        return value

    def string(self, value: Any, where: list, wrong: str = "{subject}; expected a string") -> str | None:
        if not isinstance(value, str):
            self.add(where, wrong.format(subject=_subject(value)))
            return None
        return value

    def number(self, value: Any, where: list, bound: Bound, what: str = "") -> int | float | None:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.add(
                where, f"{_subject(value)}; expected a {'whole number' if bound.whole else 'number'}{what}"
            )
            return None
        if isinstance(value, float) and not math.isfinite(value):
            self.add(where, f"{_show(value)} is not a finite number")
            return None
        problem = bound.problem(value)
        if problem:
            self.add(where, problem)
            return None
        return bound.checked(value)

    def targets(self, value: Any, where: list) -> dict[str, float]:
        value = self.mapping(value, where, tuple(DEFAULT_TARGETS))
        found = {}
        for metric in DEFAULT_TARGETS:
            if value is not None and metric in value:
                number = self.number(value[metric], where + [metric], TARGET, " above 0")
                if number is not None:
                    found[metric] = float(number)
        return found

    def urls(self, value: Any, where: list) -> tuple[str, ...]:
        items = value if isinstance(value, list) else [value]
        if not isinstance(value, (list, str)):
            self.add(where, f"{_subject(value)}; write a URL or a list of URLs")
            return ()
        found = (
            self.url(item, where + [index] if isinstance(value, list) else where)
            for index, item in enumerate(items)
        )
        return tuple(url for url in found if url is not None)

    def url(self, value: Any, where: list) -> str | None:
        if self.string(value, where) is None:
            return None
        if not URL_RE.fullmatch(value):
            self.add(where, f"{_show(value)} is empty or holds a space; write one URL or folder per entry")
            return None
        return value

    def values(self, data: dict, key: str, default: tuple[str, ...], check) -> list[str]:
        """modes: or devices: (each value once), or the default when the key is absent."""
        if key not in data:
            return list(default)
        values: list[str] = []
        for index, value in enumerate(self.sequence(data[key], [key])):
            if self.string(value, [key, index]) is None:
                continue
            problem = check(value)
            if problem:
                self.add([key, index], problem)
            elif value in values:
                self.add([key, index], f"{_show(value)} is listed twice")
            else:
                values.append(value)
        return values


# --------------------------------------------------------------------------- the matrix


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


def _order(data: dict, problems: _Problems) -> str:
    if "order" not in data:
        return ORDERS[0]
    order = problems.string(data["order"], ["order"], "{subject}; write interleaved or sequential")
    if order is not None and order not in ORDERS:
        problems.add(["order"], f"{_show(order)} is not an order; write interleaved or sequential")
        return ORDERS[0]
    return order or ORDERS[0]


def _reference_run(data: dict, problems: _Problems) -> str:
    """reference_run: baseline (rebuild the stored baseline's environments from their locks
    and measure them in the same rounds) or numbers (compare with stored numbers only)."""
    choices = ("baseline", "numbers")
    words = f"write {' or '.join(choices)}"
    if "reference_run" not in data:
        return "numbers"
    value = problems.string(data["reference_run"], ["reference_run"], "{subject}; " + words)
    if value is not None and value not in choices:
        problems.add(["reference_run"], f"{_show(value)} is not a reference run; {words}")
        return "numbers"
    return value or "numbers"


def _reference(data: dict, torches: list[TorchSpec], problems: _Problems) -> str | None:
    """The torch version paired comparisons are made against: the first listed by default."""
    if "reference" not in data:
        return torches[0].version if torches else None
    version = problems.string(data["reference"], ["reference"], _VERSION_TYPE)
    if version is None:
        return None
    parsed = _version(version)
    for spec in torches:
        if spec.version == version or (parsed is not None and version_key(spec.version) == parsed):
            return spec.version
    listed = ", ".join(spec.version for spec in torches) or "none"
    problems.add(["reference"], f"torch {_show(version)} is not listed under torch: ({listed})")
    return None


def _python(data: dict, problems: _Problems) -> str:
    python = None
    if "python" in data:
        python = problems.string(
            data["python"], ["python"], '{subject}; quote it ("3.12") so YAML keeps every digit'
        )
        if python is not None and not PYTHON_RE.fullmatch(python):
            problems.add(["python"], f'{_show(python)} is not a Python version; write it as "3.12"')
            python = None
    return python or f"{sys.version_info.major}.{sys.version_info.minor}"


def _models(data: dict, base: Path, targets: dict, problems: _Problems) -> tuple[list[ModelSpec], set[str]]:
    """The usable models, and every name declared (a rule naming a model whose entry has a
    problem of its own is not reported again)."""
    models: list[ModelSpec] = []
    names: dict[str, int] = {}
    for index, entry in enumerate(problems.sequence(data["models"], ["models"]) if "models" in data else []):
        where = ["models", index]
        if problems.mapping(entry, where, MODEL_KEYS, required=("source",)) is None:
            continue
        own_targets = problems.targets(entry["targets"], where + ["targets"]) if "targets" in entry else {}
        source = None
        if "source" in entry and problems.string(entry["source"], where + ["source"]) is not None:
            try:
                source = ModelSource.parse(entry["source"]).relative_to(base)
            except SourceError as exc:
                problems.add(where + ["source"], str(exc))
        if "name" in entry:
            name, name_at = problems.string(entry["name"], where + ["name"]), where + ["name"]
        elif source is not None:
            name, name_at = source.default_name, where + ["source"]
        else:
            continue
        if name is None:
            continue
        if not NAME_RE.fullmatch(name) or ".." in name:
            problems.add(
                name_at,
                f"{_show(name)} is not usable as a model name (it becomes part of file names): "
                f"{NAME_WORDS} characters",
            )
            continue
        if name in names:
            problems.add(
                name_at if "name" in entry else where,
                f"duplicate model name {_show(name)} (also models[{names[name]}]); "
                f"give each model its own name",
            )
            continue
        names[name] = index
        app_path = _app_path(entry, where, source, base, problems)
        if source is not None and app_path is not False:
            models.append(ModelSpec(name, source.spec, {**targets, **own_targets}, path=app_path))
    return models, set(names)


def _app_path(
    entry: dict, where: list, source, base: Path, problems: _Problems
) -> str | None | Literal[False]:
    """An entry: model's ``path:``, the folder its module is imported from, made absolute
    against the matrix's folder; None when not given, False when it has a problem."""
    if "path" not in entry:
        return None
    folder = problems.string(entry["path"], where + ["path"], "{subject}; write the folder MODULE is in")
    if folder is None:
        return False
    if source is not None and source.kind != "entry":
        problems.add(
            where + ["path"],
            f"is for entry: sources only (the folder MODULE is imported from), not {source.kind}:",
        )
        return False
    try:
        absolute = real_path(base / Path(folder).expanduser(), f"{_show(folder)}:")
    except UserError as exc:
        problems.add(where + ["path"], str(exc))
        return False
    if not absolute.is_dir():
        problems.add(
            where + ["path"], f"{_show(folder)} is not a folder (relative to the matrix: {absolute})"
        )
        return False
    return str(absolute)


def _install(data: dict, base: Path, problems: _Problems) -> tuple[str, ...]:
    """``install:``, what every environment installs besides the model stack, as uv's
    arguments: requirements as written, local folders (``./app``, ``-e ./app``) made
    absolute against the matrix's folder."""
    args: list[str] = []
    for index, item in enumerate(problems.sequence(data.get("install", []), ["install"], at_least_one=False)):
        where = ["install", index]
        text = problems.string(item, where, '{subject}; write a requirement ("pkg==1.0") or "-e ./folder"')
        if text is None:
            continue
        editable = text.startswith("-e ")
        target = text[3:].strip() if editable else text.strip()
        if target.startswith((".", "/", "~")):
            try:
                folder = real_path(base / Path(target).expanduser(), f"{_show(text)}:")
            except UserError as exc:
                problems.add(where, str(exc))
                continue
            if not folder.is_dir():
                problems.add(where, f"{_show(text)}: {folder} is not a folder")
                continue
            args += ["-e", str(folder)] if editable else [str(folder)]
            continue
        try:
            Requirement(target)
        except InvalidRequirement as exc:
            problems.add(
                where, f"{_show(text)} is not a requirement ({str(exc).splitlines()[0]}) nor a folder"
            )
            continue
        if editable:
            problems.add(where, f"{_show(text)}: -e takes a folder (./app)")
            continue
        args.append(target)
    return tuple(args)


def _torches(data: dict, problems: _Problems) -> list[TorchSpec]:
    torches: list[TorchSpec] = []
    versions: dict[Any, int] = {}
    for index, entry in enumerate(problems.sequence(data["torch"], ["torch"]) if "torch" in data else []):
        where: list = ["torch", index]
        sources: dict[str, Any] = {}
        if isinstance(entry, dict):
            problems.mapping(entry, where, TORCH_KEYS, required=("version",))
            if "index_url" in entry:
                sources["index_url"] = problems.url(entry["index_url"], where + ["index_url"])
            for key in ("extra_index_urls", "find_links"):
                if key in entry:
                    sources[key] = problems.urls(entry[key], where + [key])
            if "packages" in entry:
                sources["packages"] = _torch_pins(entry["packages"], where + ["packages"], problems)
            if "version" not in entry:
                continue
            where = where + ["version"]
            version = problems.string(entry["version"], where, _VERSION_TYPE)
        else:
            version = problems.string(
                entry, where, '{subject}; write a quoted version ("2.13.0") or a mapping with version:'
            )
        if version is None:
            continue
        parsed = _version(version)
        if parsed is None:
            problems.add(where, f"{_show(version)} is not a version")
            continue
        if parsed in versions:
            problems.add(
                where,
                f"torch {_show(version)} is listed twice (also torch[{versions[parsed]}]); "
                f"give each version once",
            )
            continue
        versions[parsed] = index
        torches.append(TorchSpec(version, **sources))
    return torches


def _package_name(name: Any, where: list, problems: _Problems) -> str | None:
    """A distribution name, canonical (``Sentence_Transformers`` -> ``sentence-transformers``)."""
    if problems.string(name, where, "{subject}; write a distribution name (transformers)") is None:
        return None
    try:
        canonical = canonicalize_name(name, validate=True)
    except InvalidName:
        problems.add(where, f"{_show(name)} is not a valid distribution name (letters, digits, . _ -)")
        return None
    if canonical in RESERVED_PACKAGES:
        why = (
            "torch versions go under torch:" if canonical == "torch" else "a cell is already identified by it"
        )
        problems.add(where, f"{_show(name)} cannot be a package axis ({why})")
        return None
    return canonical


def _package_version(value: Any) -> str | None:
    """Why a pinned version is unusable, or None."""
    if not isinstance(value, str):
        return _VERSION_TYPE.format(subject=_subject(value))
    if _version(value) is None:
        return f"{_show(value)} is not a version"
    if not VERSION_RE.fullmatch(value):
        return f"{_show(value)} cannot be part of a file name (the cell id); write it plainly (5.17.0)"
    return None


def _package_axes(data: dict, problems: _Problems) -> dict[str, tuple[str, ...]]:
    """``packages:``, each a distribution name and the versions it is crossed with."""
    if "packages" not in data:
        return {}
    value = data["packages"]
    if not isinstance(value, dict):
        problems.add(["packages"], f'{_subject(value)}; expected a mapping (transformers: ["5.17.0"])')
        return {}
    axes: dict[str, tuple[str, ...]] = {}
    for name, versions in value.items():
        where = ["packages", name]
        canonical = _package_name(name, where, problems)
        if canonical is None:
            continue
        if canonical in axes:
            problems.add(where, f"{_show(name)} is listed twice (as {canonical}); give each package once")
            continue
        found: list[str] = []
        for index, version in enumerate(problems.sequence(versions, where)):
            problem = _package_version(version)
            if problem is None and any(_version(v) == _version(version) for v in found):
                problem = f"{_show(version)} is listed twice"
            if problem:
                problems.add(where + [index], problem)
            else:
                found.append(version)
        if found:
            axes[canonical] = tuple(found)
    return axes


def _torch_pins(value: Any, where: list, problems: _Problems) -> tuple[tuple[str, str], ...]:
    """A torch entry's own ``packages:``, each a distribution name and one version."""
    if not isinstance(value, dict):
        problems.add(where, f'{_subject(value)}; expected a mapping (transformers: "4.57.6")')
        return ()
    pins: dict[str, str] = {}
    for name, version in value.items():
        canonical = _package_name(name, where + [name], problems)
        if canonical is None:
            continue
        problem = _package_version(version)
        if problem:
            problems.add(where + [name], problem)
        elif canonical in pins:
            problems.add(where + [name], f"{_show(name)} is listed twice (as {canonical})")
        else:
            pins[canonical] = version
    return tuple(sorted(pins.items()))


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
