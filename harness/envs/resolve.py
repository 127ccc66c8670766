"""``harness matrix --resolve``: every environment a run would build, resolved by uv before
anything is built.

Each environment of the matrix (and the one of its other backends beside it,
``<id>+onnx+openvino``) is
resolved with ``uv pip compile`` from what its build would install (harness.envs.build's
install_steps: the same requirements, pip's sources handed on by harness.pipconf, torch's
own sources beside them, the same index strategy), for the matrix's Python. Nothing is
downloaded beyond metadata and nothing installed: a second or so each. One that cannot
resolve is reported with uv's reason in full, uv's hints, and where a resolution across
every index finds one, the versions of the stack that would resolve (pin them under the
torch entry's ``packages:``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from harness.envs.build import ANSI_RE, by_extras, install_steps, uv_reason, with_torch_sources
from harness.matrix import EnvSpec, Matrix
from harness.pipconf import uv_environment
from harness.result import extra_env_id

# The distributions whose versions a suggested pin names: the model stack.
STACK = ("sentence-transformers", "transformers")


@dataclass
class Resolution:
    """One environment's resolution: ``env`` its name (``torch-2.13.0``, ``torch-2.13.0+onnx``)."""

    env: str
    cells: list[str]
    reason: str | None = None  # None: it resolves; else uv's reason, in full
    hints: list[str] = field(default_factory=list)
    pins: dict[str, str] = field(default_factory=dict)  # the stack that would resolve, if any
    versions: dict[str, str] = field(default_factory=dict)  # what resolved (the stack's)


def uv_binary() -> str:
    """uv beside this Python (the harness's .venv has one), else the one on PATH."""
    beside = Path(sys.executable).parent / "uv"
    return str(beside) if beside.is_file() else (shutil.which("uv") or "uv")


def _requirement_lines(args: list[str]) -> list[str]:
    """uv install arguments as requirement-file lines (``-e PATH`` kept together)."""
    lines, pending = [], None
    for arg in args:
        if pending:
            lines.append(f"{pending} {arg}")
            pending = None
        elif arg in ("-e", "--editable"):
            pending = arg
        else:
            lines.append(arg)
    return lines


def _compile(lines: list[str], settings: dict[str, str], python: str) -> tuple[int, str, str]:
    """``uv pip compile`` of ``lines``: (status, resolved requirements, uv's messages)."""
    with tempfile.TemporaryDirectory(prefix="harness-resolve-") as tmp:
        requirements = Path(tmp) / "requirements.in"
        requirements.write_text("\n".join(lines) + "\n")
        proc = subprocess.run(
            [
                uv_binary(),
                "pip",
                "compile",
                "--quiet",
                "--no-header",
                "--no-annotate",
                "--python-version",
                python,
                str(requirements),
            ],
            env={**os.environ, **settings},
            capture_output=True,
            text=True,
            check=False,
        )
    return proc.returncode, proc.stdout, proc.stderr


def _versions(compiled: str) -> dict[str, str]:
    out = {}
    for line in compiled.splitlines():
        name, sep, version = line.strip().partition("==")
        if sep:
            out[name.strip().lower().replace("_", "-")] = version.strip()
    return out


def _hints(output: str) -> list[str]:
    lines = [ANSI_RE.sub("", line).strip() for line in output.splitlines()]
    return [line[len("hint:") :].strip() for line in lines if line.startswith("hint:")]


def _root() -> Path | None:
    """The harness's checkout (installed editable into every environment), if it is one."""
    root = Path(__file__).resolve().parents[2]
    return root if (root / "pyproject.toml").is_file() else None


def resolve_environment(
    matrix: Matrix, env: EnvSpec, extras: tuple[str, ...], cell_ids: list[str]
) -> Resolution:
    cells = [cell for cell in matrix.cells_for(env.id) if cell.id in cell_ids] or matrix.cells_for(env.id)
    root = _root()
    # install_steps names the harness's checkout last (-e ROOT): dropped when not a checkout.
    _, packages, settings = install_steps(
        env, cells, extras, root or Path("."), matrix.install, uv_environment()
    )[-1]
    if root is None:
        packages = packages[:-2]
    settings = with_torch_sources(settings, env.torch.uv_env())
    lines = _requirement_lines(packages)
    status, compiled, output = _compile(lines, settings, matrix.python)
    result = Resolution(extra_env_id(env.id, extras), cell_ids)
    if status == 0:
        found = _versions(compiled)
        result.versions = {name: found[name] for name in STACK if name in found}
        return result
    result.reason = uv_reason(output)
    result.hints = _hints(output)
    if not settings.get("UV_INDEX_STRATEGY"):
        # Across every index (uv takes a package from the first index that has it by
        # default): pinning the stack under packages: switches this on for the build too.
        status, compiled, _ = _compile(
            lines, {**settings, "UV_INDEX_STRATEGY": "unsafe-best-match"}, matrix.python
        )
        if status == 0:
            found = _versions(compiled)
            result.pins = {name: found[name] for name in STACK if name in found}
    return result


def resolve_matrix(matrix: Matrix) -> list[Resolution]:
    """Every environment of ``matrix`` as a run would build it, resolved, in build order."""
    results = []
    for env in matrix.environments:
        for extras, cells in by_extras(matrix.cells_for(env.id)).items():
            results.append(resolve_environment(matrix, env, extras, [cell.id for cell in cells]))
    return results


def report(path: object, results: list[Resolution]) -> tuple[str, int]:
    """The text ``matrix --resolve`` prints and its exit status: 0 when every environment
    resolves, 2 when any does not (each listed, with uv's reason in full)."""
    failed = [result for result in results if result.reason is not None]
    if not failed:
        stacks = [
            f"{result.env} ({', '.join(f'{name} {version}' for name, version in result.versions.items())})"
            for result in results
        ]
        return f"{path}: all {len(results)} environment(s) resolve: {'; '.join(stacks)}", 0
    lines = [f"{path}: {len(failed)} of {len(results)} environment(s) cannot resolve; nothing was built:"]
    for result in failed:
        cells = ", ".join(result.cells) if result.cells else "every cell of the environment"
        lines.append(f"  {result.env} (cells: {cells}): {result.reason}")
        lines += [f"    hint: {hint}" for hint in result.hints]
        if result.pins:
            pins = ", ".join(f'{name}: "{version}"' for name, version in result.pins.items())
            lines.append(f"    resolves with the stack pinned under its torch entry: packages: {{{pins}}}")
    return "\n".join(lines), 2
