"""The checks every section of matrix.yaml is read through: a problem collector that words
each problem with its key path and line (``torch[1].version: "2.x" is not a version (line
9)``), the typed readers that report and return the usable value (a mapping with known
keys, a list, a string, a number within its bounds, URLs), and how a value is quoted back.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from harness.matrix.loader import Lines, format_path
from harness.matrix.model import (
    version_key,
)
from harness.result import (
    BACKENDS,
    DEFAULT_TARGETS,
    DTYPES,
    MODES,
)
from harness.result.settings import Bound

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
