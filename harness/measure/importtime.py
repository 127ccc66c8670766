"""Where the import seconds go, package by package (``python -X importtime``).

Read from a cell's warm-up sample, which the runner runs under -X importtime: a warm-up is
not counted, so the line per module that -X importtime writes to stderr (which costs time
and would inflate the very figure it explains) inflates nothing reported. A cold cell's
warm-up starts cold, so its attribution is the cold import cost. A cell without a warm-up
gets a run of its own (:func:`attribute`), after its samples.
Self time (not cumulative) is summed per top-level package so that torch is not charged
for the numpy it imports, and the shares add up to the whole.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import defaultdict

from harness.measure.probe import IMPORTS_DONE
from harness.result import ImportAttribution, PackageShare
from harness.result.cell import AttributionRun, Mode

IMPORT_STATEMENT = "import torch, sentence_transformers"


def parse(stderr: str) -> dict[str, float]:
    """Self seconds per top-level package from -X importtime output, up to the probe's
    IMPORTS_DONE line where there is one (what the model's init imports later is not part
    of the import statement), the probe's own package left out."""
    per_package: dict[str, float] = defaultdict(float)
    for line in stderr.splitlines():
        if line == IMPORTS_DONE:
            break
        if not line.startswith("import time:"):
            continue
        fields = line[len("import time:") :].split("|")
        if len(fields) != 3:
            continue
        self_us, _cumulative, name = fields
        try:
            micros = int(self_us.strip())
        except ValueError:  # the header line
            continue
        package = name.strip().split(".")[0]
        if package != "harness":
            per_package[package] += micros / 1e6
    return dict(per_package)


def without_lines(stderr: bytes) -> bytes:
    """stderr less the -X importtime lines, so that an error's last line is the error."""
    marks = (b"import time:", IMPORTS_DONE.encode())
    return b"".join(line for line in stderr.splitlines(keepends=True) if not line.startswith(marks))


def from_stderr(stderr: str, ok: bool, run: AttributionRun, cache: Mode, top: int = 12) -> ImportAttribution:
    """The top packages by self time in a -X importtime run's stderr."""
    per_package = parse(stderr)
    total = sum(per_package.values())
    ranked = sorted(per_package.items(), key=lambda kv: kv[1], reverse=True)
    return ImportAttribution(
        statement=IMPORT_STATEMENT,
        ok=ok,
        run=run,
        cache=cache,
        total_self_s=total,
        packages=[
            PackageShare(package=name, self_s=seconds, share=seconds / total if total else 0.0)
            for name, seconds in ranked[:top]
        ],
    )


def attribute(
    python: str = sys.executable, env: dict[str, str] | None = None, timeout: float = 300.0, top: int = 12
) -> ImportAttribution:
    """Run the import once under -X importtime, warm, and return the top packages by self
    time: for a cell that has no warm-up to read it from."""
    proc = subprocess.run(
        [python, "-X", "importtime", "-c", IMPORT_STATEMENT],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env if env is not None else dict(os.environ),
        timeout=timeout,
        check=False,
    )
    return from_stderr(proc.stderr, proc.returncode == 0, run="separate", cache="warm", top=top)
