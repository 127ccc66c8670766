"""Empty the page cache of the files a load reads, and prove that it is empty.

A cold start is one where the model stack comes off the disk, not out of memory. Linux
lets an unprivileged process drop a file's clean pages with
``posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED)``, and tells which pages are resident through
``mincore(2)`` on a mapping of the file (what util-linux's ``fincore`` prints). A cold
measurement that did not check its cache is not a cold measurement, so every cold sample
stores the resident fraction of the bytes it will read.

What a load reads is what its first sample listed (the probe writes every imported
module's file and bytecode and every mapped file after its clock stops): later samples
evict exactly that set and check all of it. Before there is such a list, the folders of
the environment are walked (:func:`files_to_evict`) and two large files checked.

Limits, stated in the report rather than hidden: pages that another process has mapped
stay resident (so the harness itself must not import torch or scipy before its cold
samples); the interpreter binary that runs the harness is mapped by it and stays warm.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import mmap
import os
import sys
import sysconfig
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

CAN_EVICT = hasattr(os, "posix_fadvise") and hasattr(os, "POSIX_FADV_DONTNEED")
METHOD = "posix_fadvise(POSIX_FADV_DONTNEED) + mincore"

_PAGE = mmap.PAGESIZE
_LOWEST_BIT = bytes(i & 1 for i in range(256))
_libc = None


def _load_libc():
    global _libc
    if _libc is None:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        libc.mmap.restype = ctypes.c_void_p
        libc.mmap.argtypes = [
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_int,
            ctypes.c_int,
            ctypes.c_int,
            ctypes.c_long,
        ]
        libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
        libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.POINTER(ctypes.c_ubyte)]
        _libc = libc
    return _libc


def residency(path: str | os.PathLike) -> float:
    """Fraction (0..1) of a file's pages that are in the page cache now.

    Raises OSError where the platform has no mincore or the file cannot be mapped.
    An empty file counts as not resident.
    """
    size = os.path.getsize(path)
    if size == 0:
        return 0.0
    libc = _load_libc()
    fd = os.open(path, os.O_RDONLY)
    try:
        addr = libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
        if addr is None or addr == ctypes.c_void_p(-1).value:
            err = ctypes.get_errno()
            raise OSError(err, f"mmap failed: {os.strerror(err)}", str(path))
        try:
            pages = (size + _PAGE - 1) // _PAGE
            vec = (ctypes.c_ubyte * pages)()
            if libc.mincore(addr, size, vec) != 0:
                err = ctypes.get_errno()
                raise OSError(err, f"mincore failed: {os.strerror(err)}", str(path))
            # Only the lowest bit of each byte means "resident"; the rest are reserved.
            return (pages - bytes(vec).translate(_LOWEST_BIT).count(0)) / pages
        finally:
            libc.munmap(addr, size)
    finally:
        os.close(fd)


# DONTNEED drops clean pages only: a page written and not yet written back (a config an
# application wrote just before the sample) stays. The kernel writes back what has been
# dirty for dirty_expire_centisecs (30 s by default), so a file modified within this many
# seconds is written back first; an fdatasync for every file would cost a device flush each.
RECENT_WRITE_S = 120.0


def evict_file(path: str | os.PathLike) -> bool:
    """Ask the kernel to drop a file's cached pages. False where the file cannot be opened."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        if time.time() - os.fstat(fd).st_mtime < RECENT_WRITE_S:
            os.fdatasync(fd)  # its dirty pages, written back, can be dropped
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def _walk_files(root: Path) -> Iterator[str]:
    stack = [str(root)]
    while stack:
        current = stack.pop()
        try:
            with os.scandir(current) as entries:
                for entry in entries:
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            stack.append(entry.path)
                        elif entry.is_file(follow_symlinks=True):
                            yield entry.path
                    except OSError:
                        continue
        except OSError:
            continue


def _pyvenv_cfg(prefix: Path) -> dict[str, str]:
    try:
        lines = (prefix / "pyvenv.cfg").read_text().splitlines()
    except OSError:
        return {}
    return {k.strip(): v.strip() for k, sep, v in (ln.partition("=") for ln in lines) if sep}


def site_packages(python: str = sys.executable) -> list[Path]:
    """The site-packages folders of ``python``'s environment, found without running it.

    A cell's probe may run in another environment than this process (an interleaved run
    measures every environment from one process), so its folders are derived from its
    executable: ``<prefix>/bin/python`` with ``<prefix>/lib*/python*/site-packages``.
    """
    if python == sys.executable:
        paths = sysconfig.get_paths()
        return sorted({Path(paths[k]) for k in ("purelib", "platlib") if k in paths})
    # Not resolved: a venv's python is a symlink to its base interpreter.
    prefix = Path(os.path.abspath(python)).parent.parent
    return sorted(p for p in prefix.glob("lib*/python*/site-packages") if p.is_dir())


def _stdlib(python: str) -> list[Path]:
    """``python``'s standard library: its base interpreter's (pyvenv.cfg ``home``) for a venv."""
    if python == sys.executable:
        paths = sysconfig.get_paths()
        return sorted({Path(paths[k]) for k in ("stdlib", "platstdlib") if k in paths})
    prefix = Path(os.path.abspath(python)).parent.parent
    config = _pyvenv_cfg(prefix)
    base = Path(config["home"]).parent if "home" in config else prefix
    version = ".".join((config.get("version_info") or config.get("version") or "").split(".")[:2])
    return sorted(p for p in base.glob(f"lib*/python{version or '*'}") if (p / "os.py").is_file())


def load_roots(python: str = sys.executable) -> list[Path]:
    """Folders whose files a Python start-up plus model-stack import reads: the site-packages
    of ``python``'s environment and its interpreter's standard library."""
    roots = {*site_packages(python), *_stdlib(python)}
    return sorted(r for r in roots if r.is_dir())


def interpreter_files(python: str = sys.executable) -> list[Path]:
    files = {Path(os.path.realpath(python))}
    libdir = sysconfig.get_config_var("LIBDIR")
    ldlibrary = sysconfig.get_config_var("LDLIBRARY")
    if libdir and ldlibrary and (Path(libdir) / ldlibrary).is_file():
        files.add(Path(libdir) / ldlibrary)
    return sorted(files)


def files_to_evict(model_files: Iterable[Path], python: str = sys.executable) -> list[str]:
    """Every file a cold load in ``python``'s environment may read. Roots that contain each
    other are walked once."""
    roots = load_roots(python)
    kept: list[Path] = []
    for root in sorted(roots, key=lambda p: len(p.parts)):
        if not any(root.is_relative_to(k) for k in kept):
            kept.append(root)
    seen: set[str] = set()
    out: list[str] = []
    for path in [*(str(p) for p in interpreter_files(python)), *(str(p) for p in model_files)]:
        if path not in seen:
            seen.add(path)
            out.append(path)
    for root in kept:
        for path in _walk_files(root):
            if path not in seen:
                seen.add(path)
                out.append(path)
    return out


def evict(paths: Iterable[str]) -> int:
    """Drop the cached pages of every path; returns how many files were advised."""
    return sum(evict_file(p) for p in paths)


def largest_torch_library(python: str = sys.executable) -> Path | None:
    """torch's biggest shared library (libtorch_cpu.so on a CPU build) in ``python``'s
    environment, found without importing torch, which would map it into this process and
    pin it in memory."""
    libs = [
        p for root in site_packages(python) for p in (root / "torch" / "lib").glob("*.so*") if p.is_file()
    ]
    return max(libs, key=lambda p: p.stat().st_size) if libs else None


def check_files(weights_file: Path | None, python: str = sys.executable) -> list[Path]:
    """The files whose residency stands for the whole cold cache: the weights, and the
    largest library of the stack in ``python``'s environment. Both are big and both must be
    read on every cold load."""
    return [p for p in (weights_file, largest_torch_library(python)) if p is not None]


def load_residency(
    paths: Iterable[str | os.PathLike], top: int = 5
) -> tuple[float | None, dict[str, float | None]]:
    """The resident fraction of all the bytes of ``paths`` (None when none can be read), and
    the ``top`` files holding the most resident bytes, with their own fractions.

    Weighted by size: a cold load reads every byte of the set, so a 400 MB library half in
    memory matters more than a small module wholly in it. Files that vanished are skipped.
    """
    total = resident = 0.0
    holders: list[tuple[float, str, float]] = []
    for path in paths:
        try:
            size = os.path.getsize(path)
            fraction = residency(path)
        except OSError:
            continue
        total += size
        resident += fraction * size
        if fraction > 0:
            holders.append((fraction * size, str(path), fraction))
    holders.sort(reverse=True)
    return (resident / total if total else None), {path: frac for _, path, frac in holders[:top]}


def _maps_entry_matches(line: str, device: tuple[int, int], inode: int) -> str | None:
    """The mapped path when a /proc/<pid>/maps line maps the file (device, inode); else None.

    Lines read ``address perms offset MAJOR:MINOR INODE [path]``, the device in hex.
    """
    fields = line.split(maxsplit=5)
    if len(fields) < 5 or fields[4] != str(inode):
        return None
    major, _, minor = fields[3].partition(":")
    try:
        if (int(major, 16), int(minor, 16)) != device:
            return None
    except ValueError:
        return None
    return fields[5].strip() if len(fields) > 5 else ""


def mapped_by(path: str | os.PathLike) -> list[str]:
    """Processes that have the file mapped, as "pid name (path it mapped)": why it cannot be
    evicted, since a page another process maps stays resident whatever we advise.

    Matched by device and inode, not by path: uv hardlinks one inode into every environment
    it builds from its cache, so a process that loaded the same wheel from another
    environment maps the same pages under another path. Reads /proc/<pid>/maps, so it sees
    only the processes we may read.
    """
    try:
        info = os.stat(path)
    except OSError:
        return []
    device, inode = (os.major(info.st_dev), os.minor(info.st_dev)), info.st_ino
    holders = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/maps") as fh:
                mapped = next(
                    (p for line in fh if (p := _maps_entry_matches(line, device, inode)) is not None), None
                )
            if mapped is None:
                continue
            with open(f"/proc/{entry}/comm") as fh:
                name = fh.read().strip()
        except OSError:
            continue
        holders.append(f"{entry} {name} ({mapped})")
    return holders
