"""The parsers of matrix.yaml's sections, each reading its part of the document through
harness.matrix.checks and reporting every problem: the models and their sources, torch
versions and their own pins, package axes, install:, order:, reference:, reference_run:
and python:.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Literal

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import InvalidName, canonicalize_name

from harness.errors import UserError
from harness.matrix.checks import (
    _VERSION_TYPE,
    NAME_RE,
    NAME_WORDS,
    PYTHON_RE,
    VERSION_RE,
    _Problems,
    _show,
    _subject,
    _version,
)
from harness.matrix.model import (
    DIMENSIONS,
    ORDERS,
    VARIANTS,
    ModelSpec,
    TorchSpec,
    version_key,
)
from harness.result import (
    ModelSource,
    SourceError,
    real_path,
)

MODEL_KEYS = ("name", "source", "path", "targets")
TORCH_KEYS = ("version", "index_url", "extra_index_urls", "find_links", "packages")
# A package axis may not take a name a cell is already identified by.
RESERVED_PACKAGES = ("torch", *DIMENSIONS, *VARIANTS)


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
