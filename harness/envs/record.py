"""An environment's record (harness.result.EnvRecord): how uv was told to build it, what
resolved (``uv pip list --format json``, ``uv pip freeze``), its key, and the one function
that finishes a record, for the session's own build and the baseline's rebuilt from its lock
alike."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import time
from pathlib import Path

from harness.result import EnvRecord, ReportError, now_iso

# The harness's own distribution: installed editable into every environment.
HARNESS_DIST = "embedding-load-harness"
# A copy of the build's EnvRecord kept in the environment itself: when nox reuses the
# environment (nox -r), it says what the last build resolved and how it was built.
BUILD_RECORD = "harness-env.json"
# The uv settings that say where packages came from: with the Python version and the frozen
# versions, what rebuilds an environment from its lock.
SOURCE_SETTINGS = ("UV_INDEX_URL", "UV_EXTRA_INDEX_URL", "UV_FIND_LINKS", "UV_INDEX_STRATEGY")


def _python_args(python: str | None) -> list[str]:
    return ["--python", python] if python else []


def installed_packages(session, python: str | None = None) -> dict[str, str]:
    """Name -> version of everything in the session's environment (or ``python``'s), as uv
    reports it."""
    # stderr apart: uv says there which environment it read.
    out = session.run(
        "uv", "pip", "list", "--format", "json", *_python_args(python), silent=True, stderr=subprocess.DEVNULL
    )
    packages = {}
    for entry in json.loads(out):
        name = re.sub(r"[-_.]+", "-", str(entry["name"])).lower()  # PEP 503's normal form
        version = str(entry["version"])
        if entry.get("editable_project_location"):
            version += f" (editable {entry['editable_project_location']})"
        packages[name] = version
    return packages


def frozen_lock(session, python: str | None = None) -> list[str]:
    """``uv pip freeze`` of the session's environment (or ``python``'s), the harness's
    editable entry left out (it names this checkout, not a release)."""
    out = session.run("uv", "pip", "freeze", *_python_args(python), silent=True, stderr=subprocess.DEVNULL)
    return [line.strip() for line in out.splitlines() if line.strip() and not line.startswith("-e ")]


def resolved_sha256(packages: dict[str, str], python: str | None) -> str:
    """The key of a resolved set: every installed name and version, and the Python.

    The harness's own editable entry is left out: it names the checkout, not a version, and
    two environments measuring the same stack from two checkouts resolved alike.
    """
    stack = sorted((name, version) for name, version in packages.items() if name != HARNESS_DIST)
    text = json.dumps({"python": python, "packages": stack}, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def how_built(build: dict[str, str]) -> dict:
    """The EnvRecord fields that say how ``build`` (build_settings) had uv install."""
    return {
        "link_mode": os.environ.get("UV_LINK_MODE", "hardlink"),
        "compile_bytecode": build["UV_COMPILE_BYTECODE"] == "1",
        "uv_cache": build.get("UV_CACHE_DIR"),
    }


def built_as_needed(previous: EnvRecord | None, record: EnvRecord) -> bool:
    """Whether an environment built as ``previous`` says serves ``record``'s cells: linked
    from the cold cells' uv cache (or copied) where cold cells need it, all bytecode
    compiled where a cell has no warm-up."""
    return (
        previous is not None
        and previous.status == "ok"
        and (record.uv_cache is None or previous.uv_cache == record.uv_cache or previous.link_mode == "copy")
        and (not record.compile_bytecode or bool(previous.compile_bytecode))
    )


def previous_build(venv: Path) -> EnvRecord | None:
    """The record the last build left in an environment nox reused, if it is readable."""
    try:
        return EnvRecord.read(venv / BUILD_RECORD)
    except (OSError, ReportError):
        return None


def fail_record(record: EnvRecord, started: float, run_dir: Path, reason: str) -> None:
    """A build that failed: its one-line reason and time, written into the run folder."""
    record.error = reason
    record.build_s = time.time() - started
    record.write(record.path_in(run_dir))


def finish_record(
    session,
    record: EnvRecord,
    started: float,
    venv: Path,
    run_dir: Path,
    uv_env: dict[str, str],
    python: str | None = None,
    previous: EnvRecord | None = None,
) -> None:
    """A build that succeeded: what resolved in ``venv`` (read through ``python``, else the
    session's), its key, its lock and the sources ``uv_env`` gave uv; ``reused_from`` when
    ``previous`` (the record nox -r found in the environment) resolved alike. Written into
    the environment and into the run folder."""
    record.build_s = time.time() - started
    record.status = "ok"
    record.built = now_iso()
    record.packages = installed_packages(session, python)
    record.resolved_sha256 = resolved_sha256(record.packages, record.python)
    record.lock = frozen_lock(session, python)
    record.sources = {key: uv_env[key] for key in SOURCE_SETTINGS if uv_env.get(key)}
    if (
        previous is not None
        and built_as_needed(previous, record)
        and previous.resolved_sha256 == record.resolved_sha256
    ):
        # nox reused the environment (nox -r) and the installs changed nothing in it.
        record.reused_from = f"{previous.run_id}/{previous.name}"
    record.write(venv / BUILD_RECORD)
    record.write(record.path_in(run_dir))
