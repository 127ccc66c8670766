"""matrix.yaml: load it, check it whole, and expand it into cells.

The matrix is the first stage of the data flow (matrix.yaml -> cells -> environment ->
probe -> samples -> statistics -> report); nothing here runs a model or builds an
environment. ``load_matrix`` returns a ``Matrix`` whose ``cells`` say exactly what will run,
each with the same stable id the runner writes its report under.

Checking happens in two passes over the whole file and reports every problem at once, each
with its key path and line (``torch[1].version: "2.x" is not a version (line 9)``):

1. structure, against one JSON Schema (Draft 2020-12, ``additionalProperties: false``
   everywhere, so a misspelt key is an error instead of a silently ignored setting);
2. meaning: versions that parse, known modes and devices, well-formed model sources, unique
   names, and include / exclude rules that match something.

Include / exclude follow GitHub Actions: the product of models x torch x modes x devices is
expanded, every ``exclude`` entry drops the cells that match all of its keys, then every
``include`` entry either extends the cells it matches (with runs / warmups / timeout) or,
when it names all four of model, torch, mode and device and no such cell exists, adds it.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from harness.errors import UserError
from harness.result import DEFAULT_TARGETS

DEFAULT_PATH = "matrix.yaml"
MODES = ("cold", "warm")
DEFAULT_RUNS = 5
DEFAULT_WARMUPS = 1
DEFAULT_TIMEOUT_S = 300.0
# The keys a cell is identified by, in the order of its id; include / exclude match on them.
DIMENSIONS = ("model", "torch", "mode", "device")
# What an include entry may set on the cells it matches or adds.
CELL_SETTINGS = ("runs", "warmups", "timeout")

DEVICE_RE = re.compile(r"^(cpu|cuda(:[0-9]+)?)$")
PYTHON_RE = re.compile(r"^3\.[0-9]+(\.[0-9]+)?$")
# A model name becomes part of a file name (the cell id), so keep it to safe characters.
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")
MODULE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
HUB_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?$")


class MatrixError(UserError):
    """A matrix.yaml with problems; the message lists every one, one line each."""

    def __init__(self, message: str, problems: Iterable[str] = ()):
        super().__init__(message)
        self.problems = list(problems)

    @classmethod
    def from_problems(cls, path: str | Path, problems: list[str]) -> "MatrixError":
        count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
        lines = "\n".join(f"  {problem}" for problem in problems)
        return cls(f"{path}: {count}:\n{lines}", problems)


# --------------------------------------------------------------------------- the result


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
        return {"version": self.version, "index_url": self.index_url,
                "extra_index_urls": list(self.extra_index_urls), "find_links": list(self.find_links)}


@dataclass(frozen=True)
class ModelSpec:
    name: str
    source: str                  # as harness.measure.models takes it: package:MODULE, path:DIR, hub id
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

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "model": self.model.name, "source": self.model.source,
                "torch": self.torch.version, "mode": self.mode, "device": self.device,
                "runs": self.runs, "warmups": self.warmups, "timeout_s": self.timeout_s,
                "targets": dict(self.targets)}


def session_name(mode: str, torch: TorchSpec) -> str:
    return f"{mode}_start({torch.label})"


@dataclass(frozen=True)
class Matrix:
    path: Path
    python: str | None
    runs: int
    warmups: int
    timeout_s: float
    targets: dict[str, float]
    models: tuple[ModelSpec, ...]
    torch: tuple[TorchSpec, ...]
    modes: tuple[str, ...]       # as declared, plus any an include adds
    devices: tuple[str, ...]     # as declared, plus any an include adds
    cells: tuple[Cell, ...]

    def torch_spec(self, version: str) -> TorchSpec:
        """The matrix's torch entry for a version (``2.13`` finds ``2.13.0``)."""
        wanted = _parse_version(str(version))
        for spec in self.torch:
            if spec.version == str(version) or (wanted is not None and _parse_version(spec.version) == wanted):
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
        return [cell for cell in self.cells
                if cell.torch == spec and (wanted is None or cell.mode in wanted)]

    def sessions(self) -> list[tuple[TorchSpec, str, list[Cell]]]:
        """(torch, mode, cells) for every nox session that has cells, torch-major."""
        groups = []
        for spec in self.torch:
            for mode in self.modes:
                cells = self.cells_for(spec.version, [mode])
                if cells:
                    groups.append((spec, mode, cells))
        return groups

    def with_overrides(self, runs: int | None = None, warmups: int | None = None,
                       timeout_s: float | None = None) -> "Matrix":
        """The same matrix with runs / warmups / timeout replaced everywhere, cells included
        (a command-line ``RUNS=3`` wins over the file)."""
        problems = []
        if runs is not None and (isinstance(runs, bool) or not isinstance(runs, int) or runs < 1):
            problems.append(f"runs: {runs!r} must be a whole number, 1 or more")
        if warmups is not None and (isinstance(warmups, bool) or not isinstance(warmups, int) or warmups < 0):
            problems.append(f"warmups: {warmups!r} must be a whole number, 0 or more")
        if timeout_s is not None and (isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float))
                                      or not timeout_s > 0):
            problems.append(f"timeout: {timeout_s!r} must be a number of seconds above 0")
        if problems:
            raise MatrixError(f"{self.path}: override {'; '.join(problems)}", problems)
        changes: dict[str, Any] = {}
        if runs is not None:
            changes["runs"] = runs
        if warmups is not None:
            changes["warmups"] = warmups
        if timeout_s is not None:
            changes["timeout_s"] = float(timeout_s)
        if not changes:
            return self
        return replace(self, **changes, cells=tuple(replace(cell, **changes) for cell in self.cells))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able summary (the merged report keeps it under "matrix")."""
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
            "cells": [cell.to_dict() for cell in self.cells],
        }


# --------------------------------------------------------------------------- the schema

# "x-message" is this module's own annotation keyword (2020-12 ignores unknown keywords):
# the one-line wording of a failure at that place, with {value} for the offending value.
_VERSION_STRING = {
    "type": "string",
    "x-message": '{subject}, not a version string; quote it ("2.13.0") so YAML keeps every digit',
}
_URL_LIST = {
    "if": {"type": "array"},
    "then": {"type": "array", "items": {"type": "string", "minLength": 1}},
    "else": {"type": "string", "minLength": 1, "x-message": "{subject}; write a URL or a list of URLs"},
}
_POSITIVE = {"type": "number", "exclusiveMinimum": 0, "x-message": "{value} must be a number above 0"}

TARGETS_SCHEMA = {
    "type": "object",
    "properties": {metric: _POSITIVE for metric in DEFAULT_TARGETS},
    "additionalProperties": False,
}

_CELL_KEYS = {
    "model": {"type": "string", "x-message": "{subject}; write a model name from models:"},
    "torch": _VERSION_STRING,
    "mode": {"type": "string", "x-message": "{subject}; write cold or warm"},
    "device": {"type": "string", "x-message": "{subject}; write cpu, cuda or cuda:N"},
}
_RUNS = {"type": "integer", "minimum": 1, "x-message": "{value} must be a whole number, 1 or more"}
_WARMUPS = {"type": "integer", "minimum": 0, "x-message": "{value} must be a whole number, 0 or more"}
_TIMEOUT = {"type": "number", "exclusiveMinimum": 0, "x-message": "{value} must be a number of seconds above 0"}

MATRIX_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "embedding-load-harness matrix.yaml",
    "type": "object",
    "required": ["models", "torch"],
    "additionalProperties": False,
    "properties": {
        "python": {"type": "string",
                   "x-message": '{subject}; quote it ("3.12") so YAML keeps every digit'},
        "runs": _RUNS,
        "warmups": _WARMUPS,
        "timeout": _TIMEOUT,
        "targets": TARGETS_SCHEMA,
        "models": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["source"],
                "additionalProperties": False,
                "properties": {
                    "name": {"type": "string"},
                    "source": {"type": "string"},
                    "targets": TARGETS_SCHEMA,
                },
            },
        },
        "torch": {
            "type": "array",
            "minItems": 1,
            "items": {
                "if": {"type": "object"},
                "then": {
                    "type": "object",
                    "required": ["version"],
                    "additionalProperties": False,
                    "properties": {
                        "version": _VERSION_STRING,
                        "index_url": {"type": "string", "minLength": 1},
                        "extra_index_urls": _URL_LIST,
                        "find_links": _URL_LIST,
                    },
                },
                "else": {
                    "type": "string",
                    "x-message": '{subject}; write a quoted version ("2.13.0") or a mapping with version:',
                },
            },
        },
        "modes": {"type": "array", "minItems": 1, "items": {"type": "string"}},
        "devices": {"type": "array", "minItems": 1, "items": {"type": "string"}},
        "exclude": {
            "type": "array",
            "items": {"type": "object", "minProperties": 1, "additionalProperties": False,
                      "properties": _CELL_KEYS},
        },
        "include": {
            "type": "array",
            "items": {"type": "object", "minProperties": 1, "additionalProperties": False,
                      "properties": {**_CELL_KEYS, "runs": _RUNS, "warmups": _WARMUPS, "timeout": _TIMEOUT}},
        },
    },
}

_TYPE_WORDS = {"object": "mapping", "array": "list", "string": "string", "integer": "whole number",
               "number": "number", "boolean": "true/false", "null": "nothing"}


def _kind(value: Any) -> str:
    if value is None:
        return "empty value"
    # bool before int: True is an int to isinstance.
    for python_type, schema_type in ((bool, "boolean"), (int, "integer"), (float, "number"),
                                     (str, "string"), (list, "array"), (dict, "object")):
        if isinstance(value, python_type):
            return _TYPE_WORDS[schema_type]
    return type(value).__name__


def _show(value: Any) -> str:
    """A value as the user wrote it, short: strings in double quotes."""
    if isinstance(value, str):
        return '"' + value.replace('"', '\\"') + '"'
    if value is None:
        return "an empty value"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return "a " + _kind(value)
    return repr(value)


def _subject(value: Any) -> str:
    """``"2.x" is a string``; a mapping or list is not quoted back whole."""
    if isinstance(value, (dict, list)):
        return f"is a {_kind(value)}"
    return f"{_show(value)} is a {_kind(value)}"


def format_path(parts: Iterable[Any]) -> str:
    """``("torch", 1, "version")`` -> ``torch[1].version``."""
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text or "(top level)"


# --------------------------------------------------------------------------- loading


class _Problems:
    """Problems found so far, each with its path, worded and located on output."""

    def __init__(self, lines: dict[tuple, int]):
        self._lines = lines
        self.items: list[tuple[tuple, str]] = []

    def add(self, path: Iterable[Any], message: str) -> None:
        self.items.append((tuple(path), message))

    def __bool__(self) -> bool:
        return bool(self.items)

    def lines(self) -> list[str]:
        seen = set()
        out = []
        def order(item):  # by line, then as the document nests (list items by index)
            path = item[0]
            return self._line_of(path), [(part, "") if isinstance(part, int) else (-1, str(part)) for part in path]

        for path, message in sorted(self.items, key=order):
            line = self._line_of(path)
            text = f"{format_path(path)}: {message}" + (f" (line {line})" if line else "")
            if text not in seen:
                seen.add(text)
                out.append(text)
        return out

    def _line_of(self, path: tuple) -> int:
        # The nearest located ancestor: a missing key is reported on its mapping's line.
        for end in range(len(path), -1, -1):
            if path[:end] in self._lines:
                return self._lines[path[:end]]
        return 0


def _yaml_load(path: Path, text: str) -> tuple[Any, dict[tuple, int]]:
    """Parse YAML, refusing duplicate keys, and map each key path to its 1-based line."""
    import yaml

    lines: dict[tuple, int] = {}

    class Loader(yaml.SafeLoader):
        pass

    def construct_mapping(loader, node, deep=False):
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = loader.construct_object(key_node, deep=True)
            if isinstance(key, (str, int, float, bool)) and key in seen:
                raise MatrixError(
                    f"{path}: line {key_node.start_mark.line + 1}: key {_show(key)} appears twice in one "
                    f"mapping (first on line {seen[key]}); YAML would silently keep only the last"
                )
            if isinstance(key, (str, int, float, bool)):
                seen[key] = key_node.start_mark.line + 1
        return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)

    Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_mapping)

    try:
        loader = Loader(text)
        try:
            node = loader.get_single_node()
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "somewhere"
        what = exc.problem or exc.context or "not valid YAML"
        raise MatrixError(f"{path}: YAML syntax error at {where}: {what}") from None
    except yaml.YAMLError as exc:
        raise MatrixError(f"{path}: not valid YAML: {exc}") from None

    def walk(node, at: tuple) -> None:
        lines.setdefault(at, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                key = key_node.value
                lines[at + (key,)] = key_node.start_mark.line + 1
                walk(value_node, at + (key,))
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                walk(item, at + (index,))

    if node is not None:
        walk(node, ())
    return data, lines


def load_matrix(path: str | Path = DEFAULT_PATH) -> Matrix:
    """Read, check and expand a matrix file; every problem in it raises one MatrixError."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise MatrixError(f"{path}: no such file; write one (see matrix.yaml in the repository) "
                          f"or pass --matrix FILE") from None
    except IsADirectoryError:
        raise MatrixError(f"{path}: is a directory, not a matrix file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise MatrixError(f"{path}: cannot be read ({exc})") from None
    data, lines = _yaml_load(path, text)
    return parse_matrix(data, path, lines)


def parse_matrix(data: Any, path: str | Path = DEFAULT_PATH, lines: dict[tuple, int] | None = None) -> Matrix:
    """Check and expand an already-parsed matrix document (``load_matrix`` without the file)."""
    path = Path(path)
    problems = _Problems(lines or {})
    if data is None:
        raise MatrixError(f"{path}: the file is empty; it needs at least models: and torch:")
    if not isinstance(data, dict):
        raise MatrixError(f"{path}: the top level is a {_kind(data)}; it must be a mapping "
                          f"(models:, torch:, ...)")
    _check_schema(data, problems)
    return _build(data, path, problems)


def _check_schema(data: dict, problems: _Problems) -> None:
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(MATRIX_SCHEMA)
    for error in validator.iter_errors(data):
        where = list(error.absolute_path)
        value = error.instance
        custom = error.schema.get("x-message") if isinstance(error.schema, dict) else None
        if error.validator == "additionalProperties":
            allowed = sorted(error.schema.get("properties", {}))
            for key in sorted(set(value) - set(allowed), key=str):
                problems.add(where + [key], f"unknown key; expected one of {', '.join(allowed)}")
        elif error.validator == "required":
            missing = [key for key in error.validator_value if key not in value]
            for key in missing:
                problems.add(where, f'missing required key "{key}"')
        elif custom and error.validator in {"type", "minimum", "exclusiveMinimum"}:
            problems.add(where, custom.format(value=_show(value), subject=_subject(value)))
        elif error.validator == "type":
            wanted = error.validator_value
            wanted = [wanted] if isinstance(wanted, str) else wanted
            words = " or ".join(_TYPE_WORDS.get(w, w) for w in wanted)
            problems.add(where, f"{_subject(value)}; expected a {words}")
        elif error.validator == "minItems":
            problems.add(where, "is empty; list at least one")
        elif error.validator == "minProperties":
            problems.add(where, f"is empty; give at least one of {', '.join(DIMENSIONS)}")
        elif error.validator == "minLength":
            problems.add(where, "is empty")
        elif error.validator in {"minimum", "exclusiveMinimum"}:
            word = "or more" if error.validator == "minimum" else "exclusive"
            problems.add(where, f"{_show(value)} is below {error.validator_value} ({word})")
        else:  # a rule this module words no better than jsonschema does
            problems.add(where, error.message)


def _parse_version(text: str):
    from packaging.version import InvalidVersion, Version

    try:
        return Version(text)
    except InvalidVersion:
        return None


def _check_source(source: str, where: list, problems: _Problems) -> bool:
    kind, sep, rest = source.partition(":")
    if sep and kind in {"package", "path", "hub"}:
        if not rest.strip():
            problems.add(where, f'{_show(source)} names no {"module" if kind == "package" else kind}')
            return False
        if kind == "package" and not MODULE_RE.match(rest):
            problems.add(where, f"{_show(source)}: {_show(rest)} is not an importable module name")
            return False
        if kind == "hub" and not HUB_ID_RE.match(rest):
            problems.add(where, f"{_show(source)}: {_show(rest)} is not a hub id (ORG/NAME)")
            return False
        return True
    if sep and re.match(r"^[A-Za-z]+$", kind) and not Path(source).exists():
        problems.add(where, f"{_show(source)}: unknown source kind {_show(kind + ':')}; "
                            f"write package:MODULE, path:DIR or hub:ORG/NAME")
        return False
    if not source.strip():
        problems.add(where, "is empty; write package:MODULE, path:DIR or hub:ORG/NAME")
        return False
    if not HUB_ID_RE.match(source) and not Path(source).expanduser().is_dir():
        problems.add(where, f"{_show(source)} is neither a hub id (ORG/NAME) nor an existing directory; "
                            f"write package:MODULE, path:DIR or hub:ORG/NAME")
        return False
    return True


def _absolute_source(source: str, base: Path) -> str:
    """A relative ``path:`` source is relative to the matrix file, wherever the run starts."""
    if source.startswith("path:"):
        directory = Path(source[len("path:"):]).expanduser()
        if not directory.is_absolute():
            return f"path:{(base / directory).resolve()}"
    return source


def _as_tuple(value: Any) -> tuple[str, ...]:
    # Wrong types were reported by the schema; keep what is usable so checking goes on.
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list):
        return tuple(item for item in value if isinstance(item, str) and item)
    return ()


def _build(data: dict, path: Path, problems: _Problems) -> Matrix:
    from harness.measure.models import default_name

    base = path.resolve().parent

    # Matrix-wide settings; a bad one already has its problem, so fall back to the default.
    runs = data.get("runs", DEFAULT_RUNS)
    runs = int(runs) if _is_int(runs) and runs >= 1 else DEFAULT_RUNS
    warmups = data.get("warmups", DEFAULT_WARMUPS)
    warmups = int(warmups) if _is_int(warmups) and warmups >= 0 else DEFAULT_WARMUPS
    timeout = data.get("timeout", DEFAULT_TIMEOUT_S)
    timeout_s = float(timeout) if _is_number(timeout) and timeout > 0 else DEFAULT_TIMEOUT_S
    python = data.get("python")
    if isinstance(python, str) and not PYTHON_RE.match(python):
        problems.add(["python"], f'{_show(python)} is not a Python version; write it as "3.12"')
    if not isinstance(python, str) or not PYTHON_RE.match(python):
        python = f"{sys.version_info.major}.{sys.version_info.minor}"
    targets = {**DEFAULT_TARGETS, **_valid_targets(data.get("targets"))}

    # models
    models: list[ModelSpec] = []
    names: dict[str, int] = {}
    for index, entry in enumerate(_list(data.get("models"))):
        if not isinstance(entry, dict) or not isinstance(entry.get("source"), str):
            continue
        source = entry["source"]
        ok = _check_source(source, ["models", index, "source"], problems)
        name = entry.get("name")
        if name is None and ok:
            name = default_name(source)
        if not isinstance(name, str):
            continue
        if not NAME_RE.match(name):
            problems.add(["models", index, "name"] if "name" in entry else ["models", index, "source"],
                         f"{_show(name)} is not usable as a model name (it becomes part of file names): "
                         f"letters, digits and . _ + - only, starting with a letter or digit")
            continue
        if name in names:
            problems.add(["models", index, "name"] if "name" in entry else ["models", index],
                         f"duplicate model name {_show(name)} (also models[{names[name]}]); "
                         f"give each model its own name")
            continue
        names[name] = index
        if ok:
            models.append(ModelSpec(name, _absolute_source(source, base),
                                    {**targets, **_valid_targets(entry.get("targets"))}))

    # torch
    torches: list[TorchSpec] = []
    versions: dict[Any, int] = {}
    for index, entry in enumerate(_list(data.get("torch"))):
        where: list = ["torch", index]
        if isinstance(entry, dict):
            version = entry.get("version")
            where = where + ["version"]
        else:
            version = entry
        if not isinstance(version, str):
            continue
        parsed = _parse_version(version)
        if parsed is None:
            problems.add(where, f"{_show(version)} is not a version")
            continue
        if parsed in versions:
            first = versions[parsed]
            problems.add(where, f"torch {_show(version)} is listed twice (also torch[{first}]); "
                                f"give each version once")
            continue
        versions[parsed] = index
        if isinstance(entry, dict):
            spec = TorchSpec(version, entry.get("index_url") if isinstance(entry.get("index_url"), str) else None,
                             _as_tuple(entry.get("extra_index_urls")), _as_tuple(entry.get("find_links")))
        else:
            spec = TorchSpec(version)
        torches.append(spec)

    modes = _checked_values(data, "modes", list(MODES), _mode_problem, problems)
    devices = _checked_values(data, "devices", ["cpu"], _device_problem, problems)

    # Expand; with some entries rejected above this still runs on the rest, so that rule
    # problems show in the same report as the entry problems.
    context = _Context(models, torches, runs, warmups, timeout_s, declared_names=set(names))
    cells: dict[tuple, Cell] = {}
    for model in models:
        for spec in torches:
            for mode in modes:
                for device in devices:
                    cell = context.cell(model, spec, mode, device)
                    cells[cell.key] = cell.value

    for index, rule in enumerate(_list(data.get("exclude"))):
        match = _rule(rule, ["exclude", index], context, problems)
        if match is None:
            continue
        hits = [key for key in cells if _matches(key, match)]
        if not hits:
            problems.add(["exclude", index], f"matches no cell ({_describe(match)}); remove it or fix its values")
        for key in hits:
            del cells[key]

    extra_modes: list[str] = []
    extra_devices: list[str] = []
    for index, rule in enumerate(_list(data.get("include"))):
        match = _rule(rule, ["include", index], context, problems)
        if match is None:
            continue
        settings = {key: rule[key] for key in CELL_SETTINGS if key in rule}
        if not _settings_ok(settings):
            continue
        changes = _cell_changes(settings)
        hits = [key for key in cells if _matches(key, match)]
        if hits:
            if not changes:
                problems.add(["include", index],
                             f"matches {len(hits)} existing cell{'s' if len(hits) != 1 else ''} and sets nothing "
                             f"for {'them' if len(hits) != 1 else 'it'}; give runs, warmups or timeout, or remove it")
            for key in hits:
                cells[key] = replace(cells[key], **changes)
        elif all(dim in match for dim in DIMENSIONS):
            added = context.cell(match["model"], match["torch"], match["mode"], match["device"])
            cells[added.key] = replace(added.value, **changes)
            if match["mode"] not in modes and match["mode"] not in extra_modes:
                extra_modes.append(match["mode"])
            if match["device"] not in devices and match["device"] not in extra_devices:
                extra_devices.append(match["device"])
        else:
            missing = [dim for dim in DIMENSIONS if dim not in match]
            problems.add(["include", index],
                         f"matches no cell ({_describe(match)}); to add a cell, also give {', '.join(missing)}")

    if not problems and not cells:
        problems.add(["exclude"] if data.get("exclude") else [], "the matrix expands to no cells")
    if problems:
        raise MatrixError.from_problems(path, problems.lines())

    return Matrix(
        path=path, python=python, runs=runs, warmups=warmups, timeout_s=timeout_s, targets=targets,
        models=tuple(models), torch=tuple(torches),
        modes=tuple(sorted(set(modes) | set(extra_modes), key=MODES.index)),
        devices=tuple(devices) + tuple(extra_devices),
        cells=tuple(cells.values()),
    )


@dataclass
class _Built:
    key: tuple
    value: Cell


class _Context:
    """What rules and cells are built from: the valid models and torch versions."""

    def __init__(self, models, torches, runs, warmups, timeout_s, declared_names=()):
        self.models = {model.name: model for model in models}
        # Names of models whose entry has a problem of its own: a rule naming one is not
        # reported again.
        self.rejected_names = set(declared_names) - set(self.models)
        self.torches = list(torches)
        self.runs, self.warmups, self.timeout_s = runs, warmups, timeout_s

    def torch(self, version: str) -> TorchSpec | None:
        parsed = _parse_version(version)
        for spec in self.torches:
            if spec.version == version or (parsed is not None and _parse_version(spec.version) == parsed):
                return spec
        return None

    def cell(self, model, spec, mode, device) -> _Built:
        from harness.result import cell_id

        model = self.models[model] if isinstance(model, str) else model
        spec = self.torch(spec) if isinstance(spec, str) else spec
        cid = cell_id(model.name, spec.version, mode, device)
        return _Built((model.name, spec.version, mode, device),
                      Cell(cid, model, spec, mode, device, self.runs, self.warmups, self.timeout_s))


def _rule(rule: Any, where: list, context: _Context, problems: _Problems) -> dict | None:
    """An include/exclude entry as {dimension: canonical value}, or None if it has problems
    (reported here, or already by the schema)."""
    if not isinstance(rule, dict) or not rule:
        return None
    match: dict[str, str] = {}
    ok = True
    for dim in DIMENSIONS:
        if dim not in rule:
            continue
        value = rule[dim]
        if not isinstance(value, str):
            ok = False  # the schema said so
            continue
        if dim == "model":
            if value in context.rejected_names:
                ok = False
            elif value not in context.models:
                known = ", ".join(context.models) or "none valid"
                problems.add(where + [dim], f"{_show(value)} is not a model name from models: ({known})")
                ok = False
            match[dim] = value
        elif dim == "torch":
            spec = context.torch(value)
            if spec is None:
                if _parse_version(value) is None:
                    problems.add(where + [dim], f"{_show(value)} is not a version")
                else:
                    listed = ", ".join(t.version for t in context.torches) or "none valid"
                    problems.add(where + [dim], f"torch {_show(value)} is not listed under torch: ({listed}); "
                                                f"add it there, with its source")
                ok = False
            else:
                match[dim] = spec.version
        elif dim in ("mode", "device"):
            problem = (_mode_problem if dim == "mode" else _device_problem)(value)
            if problem:
                problems.add(where + [dim], problem)
                ok = False
            match[dim] = value
    if not ok:
        return None
    if not match:  # only settings, no dimension: it would match everything
        problems.add(where, f"names no cell; give at least one of {', '.join(DIMENSIONS)}")
        return None
    return match


def _matches(key: tuple, match: dict[str, str]) -> bool:
    return all(key[DIMENSIONS.index(dim)] == value for dim, value in match.items())


def _describe(match: dict[str, str]) -> str:
    return ", ".join(f"{dim} {value}" for dim, value in match.items())


def _settings_ok(settings: dict) -> bool:
    runs, warmups, timeout = settings.get("runs", 1), settings.get("warmups", 0), settings.get("timeout", 1)
    return (_is_int(runs) and runs >= 1 and _is_int(warmups) and warmups >= 0
            and _is_number(timeout) and timeout > 0)


def _cell_changes(settings: dict) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    if "runs" in settings:
        changes["runs"] = int(settings["runs"])
    if "warmups" in settings:
        changes["warmups"] = int(settings["warmups"])
    if "timeout" in settings:
        changes["timeout_s"] = float(settings["timeout"])
    return changes


def _mode_problem(value: str) -> str | None:
    return None if value in MODES else f"{_show(value)} is not a mode; write cold or warm"


def _device_problem(value: str) -> str | None:
    return None if DEVICE_RE.match(value) else f"{_show(value)} is not a device; write cpu, cuda or cuda:N"


def _checked_values(data: dict, key: str, default: list[str], check, problems: _Problems) -> list[str]:
    if key not in data:
        return list(default)
    values: list[str] = []
    for index, value in enumerate(_list(data.get(key))):
        if not isinstance(value, str):
            continue
        problem = check(value)
        if problem:
            problems.add([key, index], problem)
        elif value in values:
            problems.add([key, index], f"{_show(value)} is listed twice")
        else:
            values.append(value)
    return values


def _valid_targets(value: Any) -> dict[str, float]:
    if not isinstance(value, dict):
        return {}
    return {metric: float(number) for metric, number in value.items()
            if metric in DEFAULT_TARGETS and _is_number(number) and number > 0}


def _list(value: Any) -> list:
    return value if isinstance(value, list) else []


def _is_int(value: Any) -> bool:
    # JSON Schema counts 2.0 as an integer, so this does too (and callers int() it).
    if isinstance(value, float):
        return value.is_integer()
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
