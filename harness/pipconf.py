"""Hand pip's package-source settings on to uv.

uv does not read pip's configuration, so on a machine whose pip is pointed at a company
mirror or at local wheel folders (as these machines are), a uv-built environment would
otherwise go to pypi.org and miss them. This module reads what pip would use and returns
the ``UV_*`` variables that say the same thing.

Stdlib only: the Makefile runs it before anything is installed
(``python3 -m harness.pipconf -- uv pip install ...``).
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys

# pip option -> uv environment variable (uv honours these; see `uv help pip install`).
PIP_TO_UV = {
    "index-url": "UV_INDEX_URL",
    "extra-index-url": "UV_EXTRA_INDEX_URL",
    "find-links": "UV_FIND_LINKS",
    "constraint": "UV_CONSTRAINT",
}

_UV_SEPARATOR = {"UV_FIND_LINKS": ","}

# Later sections win: pip itself lets environment variables override files, and the
# `install` section override `global`.
_SECTION_RANK = {"global": 0, "install": 1, ":env:": 2}


def read_pip_config(python: str = sys.executable) -> dict[str, str]:
    """Return pip's effective value for each option in PIP_TO_UV that pip has set."""
    try:
        out = subprocess.run(
            [python, "-m", "pip", "config", "list"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return {}
    found: dict[str, tuple[int, str]] = {}
    for line in out.splitlines():
        key, sep, value = line.partition("=")
        if not sep or "." not in key:
            continue
        section, _, option = key.rpartition(".")
        if option not in PIP_TO_UV:
            continue
        rank = _SECTION_RANK.get(section, 0)
        value = value.strip().strip("'\"")
        if option not in found or rank >= found[option][0]:
            found[option] = (rank, value)
    return {option: value for option, (_, value) in found.items()}


def uv_environment(python: str = sys.executable, base: dict[str, str] | None = None) -> dict[str, str]:
    """The UV_* variables that make uv use pip's sources, plus compiled bytecode.

    Variables already set in ``base`` (default: os.environ) are left alone, so a user's
    explicit UV_INDEX_URL wins over what pip says.
    """
    base = dict(os.environ if base is None else base)
    env: dict[str, str] = {}
    for option, value in read_pip_config(python).items():
        var = PIP_TO_UV[option]
        if var not in base:
            # pip separates several values with whitespace. uv takes extra index URLs
            # space-separated but find-links comma-separated (`uv help pip install`).
            env[var] = _UV_SEPARATOR.get(var, " ").join(value.split())
    # pip byte-compiles on install and uv does not: without this the first start of every
    # environment pays for compiling thousands of modules, which no user's install would.
    env.setdefault("UV_COMPILE_BYTECODE", base.get("UV_COMPILE_BYTECODE", "1"))
    return env


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--"]:
        argv = argv[1:]
    env = uv_environment()
    if not argv:
        for key, value in sorted(env.items()):
            print(f"export {key}={shlex.quote(value)}")
        return 0
    os.execvpe(argv[0], argv, {**os.environ, **env})


if __name__ == "__main__":
    raise SystemExit(main())
