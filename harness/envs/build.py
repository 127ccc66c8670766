"""The uv build of a profiling session's environment, and its record.

A profiling session builds one fresh environment per torch version and package pins: exactly
that torch, from the sources the matrix names for it layered over pip's (harness.pipconf
hands pip's on to uv), then sentence-transformers, the model packages and the harness. The
build is timed and recorded as ``env-<environment id>.json`` (harness.result.EnvRecord) with
the versions that resolved. A torch that will not install fails its own session: its cells
get failed reports (``FailureKind.INSTALL``) with uv's one-line reason.
"""

from __future__ import annotations

import os
import re
import tempfile
import time
from pathlib import Path

from harness.envs.record import (
    built_as_needed,
    fail_record,
    finish_record,
    how_built,
    previous_build,
)
from harness.matrix import Cell, EnvSpec
from harness.pipconf import uv_environment
from harness.result import EnvRecord, FailureKind, ModelSource

# The tail of uv's output a failed cell keeps as its failure's detail.
DETAIL_CHARS = 3000
ANSI_RE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
# When nox loaded the noxfile (which imports this): environments created since are this run's.
LOADED = time.time()
# The uv cache that the environments of cold cells are built from (build_settings says why).
COLD_UV_CACHE_VAR = "HARNESS_COLD_UV_CACHE"


def cold_uv_cache() -> Path:
    """The harness's own uv cache for cold cells: HARNESS_COLD_UV_CACHE, else
    ``$XDG_CACHE_HOME/embedding-load-harness/uv-cold`` (``~/.cache/...``)."""
    if os.environ.get(COLD_UV_CACHE_VAR):
        return Path(os.environ[COLD_UV_CACHE_VAR]).expanduser().absolute()
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "embedding-load-harness" / "uv-cold"


def uv_reason(output: str) -> str:
    """The one line of uv's output that says why it failed.

    uv explains a failure as ``× <what failed>`` followed by ``╰─▶ <why>`` (wrapped over
    indented lines) or ``Caused by: <why>``; older versions print ``error: <what>``.
    """
    lines = [ANSI_RE.sub("", line).rstrip() for line in output.splitlines()]
    for marker in ("╰─▶", "Caused by:", "cause:"):
        for index, line in enumerate(lines):
            stripped = line.strip()
            if stripped.startswith(marker):
                reason = [stripped[len(marker) :].strip()]
                indent = len(line) - len(line.lstrip())
                for more in lines[index + 1 :]:
                    # The wrapped rest of the reason is indented deeper; a blank line or
                    # uv's next marker ends it.
                    if (
                        not more.strip()
                        or len(more) - len(more.lstrip()) <= indent
                        or more.strip()[0] in "×╰│"
                    ):
                        break
                    if more.strip().startswith("hint:"):
                        break
                    reason.append(more.strip())
                return " ".join(part for part in reason if part)
    for prefix in ("error:", "×"):
        for line in lines:
            if line.strip().startswith(prefix):
                return line.strip()[len(prefix) :].strip()
    text = [line.strip() for line in lines if line.strip()]
    return text[-1] if text else "uv gave no reason"


def _python_version(session) -> str:
    return session.run(
        "python", "-c", "import platform; print(platform.python_version())", silent=True
    ).strip()


def _pin_strategy(env: EnvSpec) -> dict[str, str]:
    """Pins are looked for on every index, as pip does: uv by default takes a package's
    versions from the first index that has it, so a pinned version that only a later index
    holds (transformers 5.18.0 on a second local index) would "not exist"."""
    if not env.packages or os.environ.get("UV_INDEX_STRATEGY"):
        return {}
    return {"UV_INDEX_STRATEGY": "unsafe-best-match"}


def build_settings(cells: list[Cell]) -> dict[str, str]:
    """How uv installs a session's environment.

    No bytecode compiled up front when every cell has a warm-up: compiling all of
    site-packages was most of a build, and a load imports a small part of it. The warm-up
    compiles what the load imports, as a pip-installed environment would have it, before
    any counted sample (Sample.bytecode_present says so per sample). A cell without a
    warm-up would pay for the compiling in a counted sample, so then everything is compiled;
    so it is when PYTHONDONTWRITEBYTECODE is set (as in many container images): then no
    process writes bytecode, and every sample would compile what it imports.

    Cold cells are built from a uv cache of the harness's own (:func:`cold_uv_cache`), not
    uv's: a hardlinked file is one inode in every environment built from that cache, and any
    process on the machine that loaded the same wheel from another environment pins its
    pages, which no eviction can then drop. Only the harness's cold environments link the
    files of its own cache, and their probes run one at a time, each evicting first. uv
    still hardlinks from it, so such a build takes a second or two once that cache holds the
    wheels; copying every file (UV_LINK_MODE=copy, as before) took 20-40 s per environment.
    """
    compile_all = any(cell.settings.warmups == 0 for cell in cells) or bool(
        os.environ.get("PYTHONDONTWRITEBYTECODE")
    )
    settings = {"UV_COMPILE_BYTECODE": "1" if compile_all else "0"}
    if any(cell.mode == "cold" for cell in cells):
        settings.update(cold_cells_settings())
    return settings


def cold_cells_settings() -> dict[str, str]:
    """What a build for cold cells sets in uv's settings: the harness's own cache
    (build_settings says why). The tests' and the benchmark's cold builds take it from here."""
    return {"UV_CACHE_DIR": str(cold_uv_cache())}


def stack_requirement(cells: list[Cell]) -> str:
    """sentence-transformers, with the extra of every backend besides torch that the cells
    load with (``sentence-transformers[onnx,openvino]``): from pip's configured sources, as
    the rest; an extra that will not resolve fails this environment's cells with uv's reason."""
    extras = sorted({cell.backend for cell in cells} - {"torch"})
    return f"sentence-transformers[{','.join(extras)}]" if extras else "sentence-transformers"


def install(
    session, env: EnvSpec, cells: list[Cell], run_dir: Path, root: Path, extra: tuple[str, ...] = ()
) -> EnvRecord:
    """Install torch and the environment's pins exactly, the model stack, ``extra`` (the
    matrix's ``install:``) and the harness into the session, record the build in
    ``env-<environment id>.json``; on failure, also fail the cells, and stop the session."""
    import nox

    from harness.measure import manager

    # uv created the environment just before the session function ran; its pyvenv.cfg is
    # written as creation begins, so timing from its mtime counts the creation too. One
    # older than this nox invocation was reused (nox -r): time the installs only.
    venv = Path(session.virtualenv.location)
    cfg = venv / "pyvenv.cfg"
    created = cfg.stat().st_mtime if cfg.exists() else 0.0
    started = created if created >= LOADED else time.time()
    previous = previous_build(venv) if created < LOADED else None
    build = build_settings(cells)
    base_env = {**uv_environment(), **build}
    record = EnvRecord(
        torch=env.torch.version,
        pins=env.pins,
        session=session.name,
        run_id=run_dir.name,
        python=_python_version(session),
        venv=str(venv),
        **how_built(build),
    )
    sources = sorted({dist for cell in cells if (dist := ModelSource.parse(cell.model.source).distribution)})
    steps = [
        ("torch", [env.torch.requirement], {**base_env, **env.torch.uv_env()}),
        # torch is pinned again so that no dependency can move it; the rest comes from the
        # default sources (a torch-only index need not serve sentence-transformers).
        (
            "packages",
            [*env.requirements, stack_requirement(cells), *sources, *extra, "-e", str(root)],
            {**base_env, **_pin_strategy(env)},
        ),
    ]
    if created < LOADED and not built_as_needed(previous, record):
        # A reused environment built otherwise than these cells need (hardlinks where cold
        # cells need copies, bytecode missing where a cell has no warm-up), or with no record
        # of how it was built: install afresh.
        steps = [(step, ["--reinstall", *args], step_env) for step, args, step_env in steps]
    with tempfile.TemporaryDirectory(prefix="harness-nox-") as tmp:
        log_path = Path(tmp) / "uv.log"
        for step, args, step_env in steps:
            step_started = time.perf_counter()
            try:
                with open(log_path, "w") as log:
                    session.install(*args, env=step_env, silent=False, stdout=log)
            except nox.command.CommandFailed:
                output = log_path.read_text(errors="replace")
                why = uv_reason(output)
                reason = (
                    f"{env.torch.requirement} could not be installed: {why}"
                    if step == "torch"
                    else f"the environment for {' '.join([*env.requirements, stack_requirement(cells)])} "
                    f"could not be built: {why}"
                )
                fail_record(record, started, run_dir, reason)
                manager.write_failed(
                    run_dir, cells, FailureKind.INSTALL, reason, output[-DETAIL_CHARS:] or None
                )
                session.error(f"{reason} ({len(cells)} cell(s) recorded as failed in {run_dir})")
            record.install_s[step] = time.perf_counter() - step_started
    record.torch_sources = env.torch.uv_env()
    finish_record(session, record, started, venv, run_dir, steps[-1][2], previous=previous)
    how = f"reused from {record.reused_from}" if record.reused_from else "built"
    session.log(f"environment for {' '.join(env.requirements)} {how} in {record.build_s:.1f} s")
    return record
