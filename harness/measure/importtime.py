"""Where the import seconds go, package by package (``python -X importtime``).

Run in a process of its own, apart from the timed samples: -X importtime writes a line
per module to stderr, which costs time and would inflate the very figure it explains.
Self time (not cumulative) is summed per top-level package so that torch is not charged
for the numpy it imports, and the shares add up to the whole.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import defaultdict

from harness.result import ImportAttribution, PackageShare

IMPORT_STATEMENT = "import torch, sentence_transformers"


def parse(stderr: str) -> dict[str, float]:
    """Self seconds per top-level package from -X importtime output."""
    per_package: dict[str, float] = defaultdict(float)
    for line in stderr.splitlines():
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
        per_package[package] += micros / 1e6
    return dict(per_package)


def attribute(
    python: str = sys.executable, env: dict[str, str] | None = None, timeout: float = 300.0, top: int = 12
) -> ImportAttribution:
    """Run the import once under -X importtime and return the top packages by self time."""
    proc = subprocess.run(
        [python, "-X", "importtime", "-c", IMPORT_STATEMENT],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env if env is not None else dict(os.environ),
        timeout=timeout,
        check=False,
    )
    per_package = parse(proc.stderr)
    total = sum(per_package.values())
    ranked = sorted(per_package.items(), key=lambda kv: kv[1], reverse=True)
    return ImportAttribution(
        statement=IMPORT_STATEMENT,
        ok=proc.returncode == 0,
        total_self_s=total,
        packages=[
            PackageShare(package=name, self_s=seconds, share=seconds / total if total else 0.0)
            for name, seconds in ranked[:top]
        ],
    )
