"""What the noxfile's sessions do besides being declared: read the arguments after ``--``,
plan a session's cells, build its environment with uv and record that build.

A profiling session builds one fresh environment per torch version: exactly that torch, from
the sources the matrix names for it layered over pip's (harness.pipconf hands pip's on to
uv), then sentence-transformers, the model packages and the harness. The build is timed and
recorded as ``env-torch-<version>.json`` (harness.result.EnvRecord) with the versions that
resolved (``uv pip list --format json``). A torch that will not install fails its own
session: its cells get failed reports (``FailureKind.INSTALL``) with uv's one-line reason.

Imported by noxfile.py, which runs wherever nox does (a venv holding only nox and the
noxfile's script dependencies): the standard library, harness.result and harness.matrix
only; nox itself and the run manager are imported where a session needs them.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import UserError
from harness.matrix import Cell, EnvSpec, Matrix
from harness.pipconf import uv_environment
from harness.result import (
    EnvRecord,
    FailureKind,
    ModelSource,
    ReportError,
    lock_changes,
    now_iso,
    reference_id,
    safe_name,
)
from harness.result.settings import RUNS, WARMUPS

# Where reports go: <reports>/runs/<run id>/. Tests point it outside the checkout.
REPORTS_DIR_VAR = "HARNESS_REPORTS_DIR"
RUN_ID_VAR = "HARNESS_RUN_ID"
# The tail of uv's output a failed cell keeps as its failure's detail.
DETAIL_CHARS = 3000
ANSI_RE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
# When nox loaded the noxfile (which imports this): environments created since are this run's.
LOADED = time.time()
# The harness's own distribution: installed editable into every environment.
HARNESS_DIST = "embedding-load-harness"
# A copy of the build's EnvRecord kept in the environment itself: when nox reuses the
# environment (nox -r), it says what the last build resolved and how it was built.
BUILD_RECORD = "harness-env.json"
# The uv cache that the environments of cold cells are built from (build_settings says why).
COLD_UV_CACHE_VAR = "HARNESS_COLD_UV_CACHE"


def cold_uv_cache() -> Path:
    """The harness's own uv cache for cold cells: HARNESS_COLD_UV_CACHE, else
    ``$XDG_CACHE_HOME/embedding-load-harness/uv-cold`` (``~/.cache/...``)."""
    if os.environ.get(COLD_UV_CACHE_VAR):
        return Path(os.environ[COLD_UV_CACHE_VAR]).expanduser().absolute()
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "embedding-load-harness" / "uv-cold"


def reports_dir(root: Path) -> Path:
    return Path(os.environ.get(REPORTS_DIR_VAR) or Path(root) / "reports")


def run_id_from_env() -> str | None:
    """HARNESS_RUN_ID, checked: it becomes a folder name."""
    value = os.environ.get(RUN_ID_VAR)
    return safe_name(value, RUN_ID_VAR) if value else None


# --------------------------------------------------------------------------- -- arguments


@dataclass(frozen=True)
class Options:
    """What may follow ``--``: --runs N, --warmups N, --resume RUN_ID, --order ORDER,
    --seed N, --reference baseline|numbers|FILE, --baselines-dir DIR, --run-id ID (merge),
    --inherit-env;
    anything else is handed on to ``harness merge``."""

    runs: int | None = None
    warmups: int | None = None
    resume: str | None = None
    run_id: str | None = None
    order: str | None = None
    seed: int | None = None
    reference: str | None = None  # baseline, numbers or a stored baseline file (None: the matrix's)
    baselines_dir: str | None = None  # where stored baselines are (default: <reports>/baselines)
    inherit_env: bool = False  # the probes get the caller's whole environment (--inherit-env)
    merge_args: list[str] = field(default_factory=list)

    def run_dir(self, root: Path, default_run_id: str) -> Path:
        return (
            reports_dir(root) / "runs" / (self.resume or self.run_id or run_id_from_env() or default_run_id)
        )


def parse_options(posargs: list[str], session_name: str = "SESSION") -> Options:
    """The arguments after ``--``, checked with the settings' bounds; UserError (one line)."""
    parser = argparse.ArgumentParser(
        prog=f"nox -s {session_name} --", add_help=False, allow_abbrev=False, exit_on_error=False
    )
    from harness.commands.argtypes import non_negative_int
    from harness.commands.run_cells import order

    for flag in ("--runs", "--warmups", "--resume", "--run-id", "--reference", "--baselines-dir"):
        parser.add_argument(flag)
    parser.add_argument("--order", type=order)
    parser.add_argument("--seed", type=non_negative_int)
    parser.add_argument("--inherit-env", action="store_true")
    try:
        given, rest = parser.parse_known_args(posargs)
    except argparse.ArgumentError as exc:
        raise UserError(f"arguments after --: {exc}") from None
    counts = {}
    for name, bound in (("runs", RUNS), ("warmups", WARMUPS)):
        text = getattr(given, name)
        try:
            counts[name] = None if text is None else bound.parse(text)
        except ValueError as exc:
            raise UserError(f"arguments after --: --{name}: {exc}") from None
    resume, run_id = (
        None if text is None else safe_name(text, f"--{flag} run id")
        for flag, text in (("resume", given.resume), ("run-id", given.run_id))
    )
    return Options(
        counts["runs"],
        counts["warmups"],
        resume,
        run_id,
        given.order,
        given.seed,
        given.reference,
        given.baselines_dir,
        given.inherit_env,
        rest,
    )


# --------------------------------------------------------------------------- planning


def plan(
    session, matrix: Matrix, torch_version: str, modes: list[str], options: Options, run_dir: Path
) -> list[Cell]:
    """The cells this session runs (with the overrides), recorded in run.json; under
    --resume only those not complete yet. Skips the session when there are none."""
    from harness.measure import manager

    matrix = matrix.with_overrides(runs=options.runs, warmups=options.warmups)
    cells = matrix.cells_for(torch_version, modes)
    if not cells:
        session.skip(f"the matrix has no {'/'.join(modes)} cells for torch {torch_version}")
    if options.resume and not run_dir.is_dir():
        session.error(f"--resume {options.resume}: no run folder {run_dir}")
    manager.record_plan(run_dir, matrix, cells)
    if options.resume:
        cells = manager.incomplete(run_dir, cells)
        if not cells:
            session.skip(
                f"every {'/'.join(modes)} cell of torch {torch_version} is complete in run {run_dir.name}"
            )
    session.log(f"run {run_dir.name}: {len(cells)} cell(s) of torch {torch_version} -> {run_dir}")
    return cells


@dataclass
class Built:
    """The environments this nox invocation built, and the cells each measures: the
    profiling sessions build (phase one) and leave the measuring to the ``measure`` session
    that the first of them queues last (phase two), so one run interleaves them all."""

    run_dir: Path | None = None
    cells: dict[str, Cell] = field(default_factory=dict)  # id -> cell, in the order built
    pythons: dict[str, str] = field(default_factory=dict)  # EnvSpec.id -> its Python
    # A reference run: EnvSpec.id -> the Python of the baseline's environment rebuilt from
    # its lock (its cells are measured there too, as <cell id>@baseline).
    references: dict[str, str] = field(default_factory=dict)

    def add(self, cells: list[Cell], record: EnvRecord, run_dir: Path) -> None:
        if self.run_dir is not None and self.run_dir != run_dir:
            raise UserError(f"one nox invocation measures one run; {run_dir} is not {self.run_dir}")
        self.run_dir = run_dir
        self.cells.update({cell.id: cell for cell in cells})
        # cold_start and warm_start of one environment build it alike; the later one's
        # Python measures both.
        for cell in cells:
            self.pythons[cell.env.id] = str(Path(record.venv or "") / "bin" / "python")


BUILT = Built()


def run_cells_args(matrix: Matrix, built: Built, options: Options) -> list[str]:
    """``python -m harness run-cells ...`` over every cell built in this nox invocation,
    each in its own environment's Python: the first environment's runs the planner."""
    cells = list(built.cells.values())
    envs = list(dict.fromkeys(cell.env.id for cell in cells))
    modes = list(dict.fromkeys(cell.mode for cell in cells))
    args = [
        next(iter(built.pythons.values())),
        "-m",
        "harness",
        "run-cells",
        "--matrix",
        str(matrix.path),
        "--torch",
        ",".join(envs),
        "--modes",
        ",".join(modes),
        "--cells",
        ",".join(built.cells),
        "--run-dir",
        str(built.run_dir),
    ]
    for env, python in built.pythons.items():
        args += ["--python", f"{env}={python}"]
    for env, python in built.references.items():
        args += ["--reference-python", f"{env}={python}"]
    for flag, value in (
        ("--runs", options.runs),
        ("--warmups", options.warmups),
        ("--order", options.order),
        ("--seed", options.seed),
    ):
        if value is not None:
            args += [flag, str(value)]
    if options.resume:
        args += ["--resume"]
    if options.inherit_env:
        args += ["--inherit-env"]
    return args


# --------------------------------------------------------------------------- the build


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


# The uv settings that say where packages came from: with the Python version and the frozen
# versions, what rebuilds an environment from its lock.
SOURCE_SETTINGS = ("UV_INDEX_URL", "UV_EXTRA_INDEX_URL", "UV_FIND_LINKS", "UV_INDEX_STRATEGY")


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


def _previous_build(venv: Path) -> EnvRecord | None:
    """The record the last build left in an environment nox reused, if it is readable."""
    try:
        return EnvRecord.read(venv / BUILD_RECORD)
    except (OSError, ReportError):
        return None


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


def how_built(build: dict[str, str]) -> dict:
    """The EnvRecord fields that say how ``build`` (build_settings) had uv install."""
    return {
        "link_mode": os.environ.get("UV_LINK_MODE", "hardlink"),
        "compile_bytecode": build["UV_COMPILE_BYTECODE"] == "1",
        "uv_cache": build.get("UV_CACHE_DIR"),
    }


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
    previous = _previous_build(venv) if created < LOADED else None
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
                record.error = reason
                record.build_s = time.time() - started
                record.write(record.path_in(run_dir))
                manager.write_failed(
                    run_dir, cells, FailureKind.INSTALL, reason, output[-DETAIL_CHARS:] or None
                )
                session.error(f"{reason} ({len(cells)} cell(s) recorded as failed in {run_dir})")
            record.install_s[step] = time.perf_counter() - step_started
    record.build_s = time.time() - started
    record.status = "ok"
    record.built = now_iso()
    record.packages = installed_packages(session)
    record.resolved_sha256 = resolved_sha256(record.packages, record.python)
    record.lock = frozen_lock(session)
    packages_env = steps[-1][2]
    record.sources = {key: packages_env[key] for key in SOURCE_SETTINGS if packages_env.get(key)}
    record.torch_sources = env.torch.uv_env()
    if built_as_needed(previous, record) and previous.resolved_sha256 == record.resolved_sha256:
        # nox reused the environment (nox -r) and the installs changed nothing in it.
        record.reused_from = f"{previous.run_id}/{previous.name}"
    record.write(venv / BUILD_RECORD)
    record.write(record.path_in(run_dir))
    how = f"reused from {record.reused_from}" if record.reused_from else "built"
    session.log(f"environment for {' '.join(env.requirements)} {how} in {record.build_s:.1f} s")
    return record


# --------------------------------------------------------------------------- the reference


def reference_baseline(options: Options, matrix: Matrix, root: Path) -> Path | None:
    """The stored baseline whose environments a reference run rebuilds, or None (the
    stored-number comparison, or no baseline stored yet); UserError (one line) for a
    --reference that is neither a choice nor a stored baseline file."""
    from harness.analysis.baseline import REFERENCE_BASELINE, REFERENCE_CHOICES, reference_for

    spec = options.reference or matrix.reference_run
    if options.reference and options.reference not in REFERENCE_CHOICES and not Path(spec).is_file():
        raise UserError(
            f"arguments after --: --reference {spec}: not {' or '.join(REFERENCE_CHOICES)} "
            "and not a stored baseline file"
        )
    path = reference_for(spec, baselines_dir(options, root))
    if path is None and spec == REFERENCE_BASELINE:
        return None
    return path


def baselines_dir(options: Options, root: Path) -> Path:
    return Path(options.baselines_dir) if options.baselines_dir else reports_dir(root) / "baselines"


def lock_sources(stored: EnvRecord) -> dict[str, str]:
    """The uv settings that find a lock's distributions again: the sources the stored build
    was given, with torch's own index and find-links added beside them (one install with
    --no-deps takes torch and the rest together)."""
    env = dict(stored.sources)
    torch = stored.torch_sources
    extra = [url for url in (torch.get("UV_INDEX_URL"), torch.get("UV_EXTRA_INDEX_URL")) if url]
    if extra:
        env["UV_EXTRA_INDEX_URL"] = " ".join([*extra, *filter(None, [env.get("UV_EXTRA_INDEX_URL")])])
        env.setdefault("UV_INDEX_STRATEGY", "unsafe-best-match")
    if torch.get("UV_FIND_LINKS"):
        env["UV_FIND_LINKS"] = ",".join(filter(None, [torch["UV_FIND_LINKS"], env.get("UV_FIND_LINKS")]))
    return env


def _stored_environment(baseline: Path, env_id: str) -> tuple[EnvRecord | None, str]:
    """The baseline's record of an environment with a lock, or None and why not."""
    from harness.result import MatrixReport, read_any

    try:
        report = read_any(baseline)
    except (ReportError, UserError) as exc:
        return None, f"the baseline cannot be read: {exc}"
    records = report.environments.values() if isinstance(report, MatrixReport) else []
    for record in records:
        if record.env_id == env_id and not record.reference and record.status == "ok":
            if not record.lock:
                return (
                    None,
                    f"the baseline {baseline} keeps no lock for {env_id} (stored before locks were kept)",
                )
            return record, ""
    return None, f"the baseline {baseline} has no environment {env_id}"


def install_reference(
    session, env: EnvSpec, cells: list[Cell], run_dir: Path, root: Path, baseline: Path, current: EnvRecord
) -> str | None:
    """Rebuild the baseline's environment of ``env`` from its lock beside the session's own
    (``<session venv>@baseline``): a fresh venv of the recorded Python (major.minor), the
    lock installed exactly with ``uv pip install --no-deps`` from the recorded sources, the
    harness editable on top. Recorded as ``env-<environment id>@baseline.json``. Returns its
    Python, or None when the lock cannot be rebuilt: then the record's error is the one-line
    reason and the run goes on (its comparison uses the stored numbers)."""
    import shutil

    record = EnvRecord(
        torch=env.torch.version,
        pins=env.pins,
        session=session.name,
        run_id=run_dir.name,
        reference=str(baseline),
    )
    started = time.time()

    def fail(why: str) -> None:
        record.error = f"the baseline's lock for {env.id} could not be rebuilt: {why}"
        record.build_s = time.time() - started
        record.write(record.path_in(run_dir))
        session.warn(f"{record.error}; its cells are compared with the stored numbers instead")

    stored, why = _stored_environment(baseline, env.id)
    if stored is None:
        return fail(why)
    venv = Path(f"{session.virtualenv.location}{reference_id('')}")
    if (venv / "pyvenv.cfg").is_file():
        shutil.rmtree(venv)  # fresh, as nox builds every environment of a run
    python = str(venv / "bin" / "python")
    build = build_settings(cells)
    uv_env = {**uv_environment(), **lock_sources(stored), **build}
    minor = ".".join((stored.python or "").split(".")[:2]) or None
    with tempfile.TemporaryDirectory(prefix="harness-lock-") as tmp:
        lock = Path(tmp) / "lock.txt"
        lock.write_text("\n".join(stored.lock) + "\n")
        log_path = Path(tmp) / "uv.log"
        steps = [
            ("venv", ["uv", "venv", "--quiet", *(["--python", minor] if minor else []), str(venv)]),
            ("lock", ["uv", "pip", "install", "--no-deps", "--python", python, "-r", str(lock)]),
            ("harness", ["uv", "pip", "install", "--no-deps", "--python", python, "-e", str(root)]),
        ]
        for step, args in steps:
            step_started = time.perf_counter()
            with open(log_path, "w") as log:
                proc = subprocess.run(
                    args, env={**os.environ, **uv_env}, stdout=log, stderr=subprocess.STDOUT, check=False
                )
            if proc.returncode != 0:
                return fail(uv_reason(log_path.read_text(errors="replace")))
            record.install_s[step] = time.perf_counter() - step_started
    record.status = "ok"
    record.build_s = time.time() - started
    record.built = now_iso()
    record.venv = str(venv)
    record.python = subprocess.run(
        [python, "-c", "import platform; print(platform.python_version())"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    for name, value in how_built(build).items():
        setattr(record, name, value)
    record.packages = installed_packages(session, python)
    record.resolved_sha256 = resolved_sha256(record.packages, record.python)
    record.lock = frozen_lock(session, python)
    record.sources = {key: uv_env[key] for key in SOURCE_SETTINGS if uv_env.get(key)}
    record.write(venv / BUILD_RECORD)
    record.write(record.path_in(run_dir))
    changes = lock_changes(record.lock, current.lock)
    what = (
        "the stack did not change"
        if not changes
        else f"{len(changes)} package(s) differ: {', '.join(change.text for change in changes)}"
    )
    session.log(
        f"reference environment {record.name} rebuilt from {baseline} in {record.build_s:.1f} s; {what}"
    )
    return python


# --------------------------------------------------------------------------- merge


def latest_run(root: Path) -> Path | None:
    """The newest run folder, or None."""
    runs = [p for p in (reports_dir(root) / "runs").glob("*") if p.is_dir()]
    return max(runs, key=lambda p: p.stat().st_mtime) if runs else None


def install_harness(session, root: Path) -> None:
    """The harness and what it needs to merge and report (no torch)."""
    session.install("-e", str(root), env=uv_environment())


def merge_args(root: Path, run_dir: Path) -> list[str]:
    """Where ``harness merge`` writes its report and history: under HARNESS_REPORTS_DIR when
    set (its defaults are the checkout's reports/ otherwise)."""
    if not os.environ.get(REPORTS_DIR_VAR):
        return []
    reports = reports_dir(root)
    return ["--output", str(reports / f"matrix-{run_dir.name}.json"), "--history", str(reports / "history")]
