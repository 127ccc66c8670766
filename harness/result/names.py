"""Names that become parts of file paths: cell ids, model names, run ids, fingerprints.

A name taken from data (a report, matrix.yaml, a command-line flag) is checked here before
any path is built from it, so that ``../../tmp/x``, a NUL byte, a newline or a space can
never place a file outside the folder the user named. ``fullmatch`` is used throughout:
``$`` alone would also match before a trailing newline.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from harness.errors import UserError

# Letters, digits and . _ + - : @ = only, starting with a letter or digit; no "..".
# ":" is for devices (cuda:0), "@" for reference cells (<cell id>@baseline).
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+:@=-]{0,199}")
SAFE_NAME_WORDS = "letters, digits and . _ + - : @ = only, starting with a letter or digit, no '..'"


# The suffix of a reference cell's id and of its environment's name: the baseline's stack,
# rebuilt from its lock and measured in the same rounds as the current one (issue 16).
REFERENCE_SUFFIX = "@baseline"


def reference_id(name: str) -> str:
    """``<cell id>@baseline``, ``<environment id>@baseline``."""
    return f"{name}{REFERENCE_SUFFIX}"


def extra_env_id(env: str, extras: Iterable[str] = ()) -> str:
    """The environment the cells of other backends than torch load in:
    ``torch-2.13.0+onnx+openvino``, the environment ``env`` with those backends'
    sentence-transformers extras, built apart from torch's so that extras that will not
    resolve fail only their own cells; torch's cells (no extras) load in ``env`` itself."""
    names = sorted(set(extras) - {"torch"})
    return "+".join([env, *names])


class UnsafeNameError(UserError):
    """A name from data that would not be a safe single path component."""


def is_safe_name(text: object) -> bool:
    return isinstance(text, str) and SAFE_NAME.fullmatch(text) is not None and ".." not in text


def safe_name(text: object, what: str) -> str:
    """``text`` if it is usable as one path component; else one line naming ``what``."""
    if not is_safe_name(text):
        raise UnsafeNameError(f"{what} {text!r} is not usable in a file name ({SAFE_NAME_WORDS})")
    return str(text)


def env_id(torch: str | None, pins: dict[str, str] | None = None) -> str:
    """An environment's id: ``torch-2.13.0``, ``torch-2.13.0-transformers-5.17.0`` (pins by name)."""
    return "-".join(
        [f"torch-{torch or 'none'}", *(f"{name}-{version}" for name, version in sorted((pins or {}).items()))]
    )


def cell_id(
    model: str,
    torch: str | None,
    mode: str,
    device: str,
    packages: dict[str, str] | None = None,
    backend: str = "torch",
    dtype: str = "float32",
) -> str:
    """Stable id of a cell, used as its file name and to match cells across reports. The
    packages its environment pinned besides torch follow torch, by name
    (``…-torch2.13.0-transformers5.17.0-cold-cpu``); a backend or dtype other than torch
    float32 ends it (``…-warm-cpu-onnx-qint8``); without either the id is as it always was."""
    pins = "".join(f"-{name}{version}" for name, version in sorted((packages or {}).items()))
    variant = "" if (backend, dtype) == ("torch", "float32") else f"-{backend}-{dtype}"
    return f"{model}-torch{torch or 'none'}{pins}-{mode}-{device}{variant}"
