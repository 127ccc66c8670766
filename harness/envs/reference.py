"""A reference run's baseline environment: which stored baseline it is, and its environment
rebuilt from the stored lock beside the session's own (``<session venv>@baseline``)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from harness.envs.build import build_settings, uv_reason, with_torch_sources
from harness.envs.options import Options, reports_dir
from harness.envs.record import fail_record, finish_record, how_built
from harness.errors import UserError
from harness.matrix import Cell, EnvSpec, Matrix
from harness.pipconf import uv_environment
from harness.result import EnvRecord, ReportError, lock_changes, reference_id


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
    return with_torch_sources(stored.sources, stored.torch_sources)


def _stored_environment(baseline: Path, env_id: str) -> tuple[EnvRecord | None, str]:
    """The baseline's record of an environment with a lock, or None and why not."""
    from harness.result import MatrixReport, read_any

    try:
        report = read_any(baseline)
    except (ReportError, UserError) as exc:
        return None, f"the baseline cannot be read: {exc}"
    records = report.environments.values() if isinstance(report, MatrixReport) else []
    for record in records:
        if record.env_id == env_id and not record.reference and not record.extras and record.status == "ok":
            if not record.lock:
                return (
                    None,
                    f"the baseline {baseline} keeps no lock for {env_id} (stored before locks were kept)",
                )
            return record, ""
    return None, f"the baseline {baseline} has no environment {env_id}"


def lock_requirements(lines: list[str], where: str) -> list[str]:
    """A stored lock's lines, each checked to be a pin (``name==version``) or a direct
    reference (``name @ url``), as ``uv pip freeze`` writes them: nothing else reaches uv,
    which would take a line starting with ``-`` as an option (``--extra-index-url=...``
    would send the rebuild to another index). UserError (one line naming the line)."""
    from packaging.requirements import InvalidRequirement, Requirement

    for number, line in enumerate(lines, 1):
        problem = None
        if line.lstrip().startswith("-"):
            problem = "an option, not a requirement"
        else:
            try:
                requirement = Requirement(line)
            except InvalidRequirement:
                problem = "not a requirement"
            else:
                specs = list(requirement.specifier)
                pinned = (
                    len(specs) == 1 and specs[0].operator in ("==", "===") and "*" not in specs[0].version
                )
                if requirement.marker is not None or requirement.extras:
                    problem = "not a plain pin (extras or markers)"
                elif not requirement.url and not pinned:
                    problem = "neither name==version nor name @ url"
        if problem:
            raise UserError(
                f"{where}: lock line {number} {line.strip()!r} is {problem}; "
                "a lock holds only name==version and name @ url lines"
            )
    return [line.strip() for line in lines]


def checked_lock(baseline: Path, env_id: str) -> None:
    """Refuse (UserError, one line) a baseline whose stored lock of ``env_id`` holds anything
    but pins, before any environment is built. A baseline with no usable record is left to
    install_reference, which compares with the stored numbers instead."""
    stored, _ = _stored_environment(baseline, env_id)
    if stored is not None:
        lock_requirements(stored.lock, f"{baseline} ({env_id})")


def install_reference(
    session, env: EnvSpec, cells: list[Cell], run_dir: Path, root: Path, baseline: Path, current: EnvRecord
) -> str | None:
    """Rebuild the baseline's environment of ``env`` from its lock beside the session's own
    (``<session venv>@baseline``): a fresh venv of the recorded Python (major.minor), the
    lock installed exactly with ``uv pip install --no-deps`` from the recorded sources, the
    harness editable on top. Recorded as ``env-<environment id>@baseline.json``. Returns its
    Python, or None when the lock cannot be rebuilt: then the record's error is the one-line
    reason and the run goes on (its comparison uses the stored numbers)."""
    record = EnvRecord(
        torch=env.torch.version,
        pins=env.pins,
        session=session.name,
        run_id=run_dir.name,
        reference=str(baseline),
    )
    started = time.time()

    def fail(why: str) -> None:
        fail_record(record, started, run_dir, f"the baseline's lock for {env.id} could not be rebuilt: {why}")
        session.warn(f"{record.error}; its cells are compared with the stored numbers instead")

    stored, why = _stored_environment(baseline, env.id)
    if stored is None:
        fail(why)
        return None
    venv = Path(f"{session.virtualenv.location}{reference_id('')}")
    if (venv / "pyvenv.cfg").is_file():
        shutil.rmtree(venv)  # fresh, as nox builds every environment of a run
    python = str(venv / "bin" / "python")
    build = build_settings(cells)
    uv_env = {**uv_environment(), **lock_sources(stored), **build}
    minor = ".".join((stored.python or "").split(".")[:2]) or None
    with tempfile.TemporaryDirectory(prefix="harness-lock-") as tmp:
        lock = Path(tmp) / "lock.txt"
        lock.write_text("\n".join(lock_requirements(stored.lock, f"{baseline} ({env.id})")) + "\n")
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
                fail(uv_reason(log_path.read_text(errors="replace")))
                return None
            record.install_s[step] = time.perf_counter() - step_started
    record.venv = str(venv)
    record.python = subprocess.run(
        [python, "-c", "import platform; print(platform.python_version())"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    for name, value in how_built(build).items():
        setattr(record, name, value)
    finish_record(session, record, started, venv, run_dir, uv_env, python=python)
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
