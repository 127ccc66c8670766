"""What the measuring process needs to know of an environment other than its own, asked of
that environment's Python: its Environment block (versions, freeze hash, bytecode) and
each model source resolved there (a ``package:`` model lives in that environment's
site-packages).

    <env python> -m harness.measure.envinfo SOURCE [SOURCE ...]

prints one JSON object: ``{"environment": {...}, "models": {SOURCE: {...} | {"error": "..."}}}``.
Standard library, msgspec and harness only; it imports no part of the model stack, so
asking costs well under a second and leaves nothing of the stack in the page cache.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import msgspec

from harness.errors import UserError
from harness.result import Environment, ModelSource

# Seconds an environment gets to answer (it walks its packages for the bytecode figure).
TIMEOUT_S = 120.0


def describe(sources: list[str]) -> dict:
    """This environment, and each source resolved in it (or why it will not resolve)."""
    from harness.measure import metadata
    from harness.measure.models import resolve

    models: dict[str, dict] = {}
    for spec in sources:
        try:
            model = resolve(spec)
        except UserError as exc:
            models[spec] = {"error": str(exc)}
            continue
        models[spec] = {
            "load_id": model.load_id,
            "local_dir": str(model.local_dir) if model.local_dir else None,
            "offline_ok": model.offline_ok,
            "app_files": [str(p) for p in model.app_files],
        }
    return {"environment": msgspec.to_builtins(metadata.environment()), "models": models}


class EnvironmentInfo:
    """One environment's answer, as the measuring process uses it."""

    def __init__(self, python: str, answer: dict):
        self.python = python
        self.environment = msgspec.convert(answer["environment"], Environment)
        self._models = answer["models"]

    @classmethod
    def ask(cls, python: str, sources: list[str], app_paths: Sequence[str] = ()) -> EnvironmentInfo:
        """Run this module in ``python``; UserError (one line) when it cannot answer.
        ``app_paths``: folders where entry: sources' modules are found (on its PYTHONPATH)."""
        env = dict(os.environ)
        if app_paths:
            env["PYTHONPATH"] = os.pathsep.join([*app_paths, *filter(None, [env.get("PYTHONPATH")])])
        try:
            proc = subprocess.run(
                [python, "-m", "harness.measure.envinfo", *sources],
                capture_output=True,
                text=True,
                timeout=TIMEOUT_S,
                stdin=subprocess.DEVNULL,
                check=False,
                env=env,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise UserError(f"the environment of {python} does not answer: {exc}") from None
        if proc.returncode != 0:
            lines = [line for line in proc.stderr.splitlines() if line.strip()]
            why = lines[-1].strip() if lines else f"exit status {proc.returncode}"
            raise UserError(f"the environment of {python} does not answer: {why}")
        return cls(python, json.loads(proc.stdout))

    def model(self, spec: str):
        """The ResolvedModel of a source in this environment; ModelError when it has none."""
        from harness.measure.models import ModelError, ResolvedModel

        found = self._models[spec]
        if "error" in found:
            raise ModelError(found["error"])
        return ResolvedModel(
            ModelSource.parse(spec),
            found["load_id"],
            Path(found["local_dir"]) if found["local_dir"] else None,
            found["offline_ok"],
            tuple(Path(p) for p in found["app_files"]),
        )


if __name__ == "__main__":
    print(json.dumps(describe(sys.argv[1:])))
