"""A file written moments ago (its pages still dirty, not yet written back) is evicted too:
posix_fadvise's DONTNEED drops clean pages only, so a config file an application wrote just
before a cold sample stayed resident (tests/e2e/test_sample_protocol.py's JSON config failed
whenever the first eviction of a counted sample was enough, i.e. on a quiet machine)."""

from __future__ import annotations

import mmap
import os
import sys
from pathlib import Path

import pytest

from harness.measure import coldcache


def _filesystem(path: Path) -> str | None:
    """The type of the filesystem that holds ``path`` (the longest mount point above it)."""
    best, kind = "", None
    try:
        lines = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        fields = line.split()
        above = len(fields) > 2 and str(path).startswith(fields[1].rstrip("/") + "/")
        if above and len(fields[1]) > len(best):
            best, kind = fields[1], fields[2]
    return kind


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="evicts with posix_fadvise (Linux)")
def test_a_file_written_just_now_is_evicted(tmp_path):
    if _filesystem(tmp_path) in ("tmpfs", "ramfs"):
        pytest.skip("a tmpfs file's pages are its storage: nothing evicts them")
    path = tmp_path / "app-config.json"
    # Several pages, so that one page written back by chance does not decide the result.
    path.write_bytes(os.urandom(16 * mmap.PAGESIZE))
    assert coldcache.residency(path) == 1.0  # the control: just written, all in the cache
    assert coldcache.evict_file(path)
    # Written back and dropped, at once: not left for the kernel's flusher (30 s and more).
    assert coldcache.residency(path) == 0.0
