"""Page-cache eviction and its check, verified against util-linux's fincore."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import pytest
from conftest import fincore_pages

from harness.measure import coldcache

pytestmark = pytest.mark.skipif(not coldcache.CAN_EVICT, reason="no posix_fadvise on this platform")


@pytest.fixture
def data_file(tmp_path):
    path = tmp_path / "weights.bin"
    path.write_bytes(os.urandom(8 * 1024 * 1024))
    os.sync()  # dirty pages cannot be dropped; write them out first
    return path


@pytest.mark.skipif(shutil.which("fincore") is None, reason="util-linux fincore not installed")
def test_eviction_empties_the_cache_and_mincore_agrees_with_fincore(data_file):
    data_file.read_bytes()
    assert coldcache.residency(data_file) == 1.0
    resident, total = fincore_pages(data_file)
    assert resident == total

    assert coldcache.evict([str(data_file)]) == 1
    assert coldcache.residency(data_file) <= 0.05
    resident, total = fincore_pages(data_file)
    assert resident / total <= 0.05


def test_reading_half_a_file_makes_it_half_resident(data_file):
    # Pages still under writeback cannot be dropped: on a busy machine the first advice can
    # come too early, so evict until the check itself says the file is out.
    for _ in range(20):
        os.sync()
        coldcache.evict_file(data_file)
        if coldcache.residency(data_file) <= 0.05:
            break
        time.sleep(0.1)
    assert coldcache.residency(data_file) <= 0.05
    with open(data_file, "rb") as fh:
        # No read-ahead, so what is resident is what was read.
        os.posix_fadvise(fh.fileno(), 0, 0, os.POSIX_FADV_RANDOM)
        fh.read(4 * 1024 * 1024)
    assert 0.5 <= coldcache.residency(data_file) < 0.9


def test_the_eviction_list_covers_what_a_load_reads():
    files = set(coldcache.files_to_evict([]))
    torch_lib = coldcache.largest_torch_library()
    assert torch_lib is not None and str(torch_lib) in files
    assert any(f.endswith("/os.py") for f in files)  # the standard library
    assert any("sentence_transformers" in f for f in files)


def test_the_eviction_list_of_another_environment_names_its_files(tmp_path):
    """A cell whose probe runs in another venv (an interleaved run measures every environment
    from one process) evicts and checks that venv's files, not the measuring process's."""
    venv = tmp_path / "other-env"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    (site,) = venv.glob("lib/python*/site-packages")
    (site / "only_here.py").write_text("")
    (site / "torch" / "lib").mkdir(parents=True)
    (site / "torch" / "lib" / "libtorch_cpu.so").write_bytes(b"\0" * 4096)
    python = str(venv / "bin" / "python")
    files = set(coldcache.files_to_evict([], python))
    assert str(site / "only_here.py") in files
    assert not any("sentence_transformers" in f for f in files)  # this process's environment
    assert any(f.endswith("/os.py") for f in files)  # the base interpreter's standard library
    assert coldcache.largest_torch_library(python) == site / "torch" / "lib" / "libtorch_cpu.so"
    assert coldcache.check_files(None, python) == [site / "torch" / "lib" / "libtorch_cpu.so"]


def test_empty_and_unreadable_files(tmp_path):
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    assert coldcache.residency(empty) == 0.0
    assert coldcache.evict_file(tmp_path / "missing") is False
    assert coldcache.load_residency([tmp_path / "missing"]) == (None, {})
    assert coldcache.load_residency([empty, tmp_path / "missing"]) == (None, {})  # no bytes to check


def test_the_holder_of_a_file_is_found_by_inode_through_a_hardlink(data_file, tmp_path):
    # uv hardlinks one inode into every environment it builds: a process mapping the file
    # under another path pins the same pages, and must be named all the same.
    other = tmp_path / "other-environment.bin"
    os.link(data_file, other)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import mmap, sys, time\n"
            "f = open(sys.argv[1], 'rb'); m = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)\n"
            "print('mapped', flush=True); time.sleep(900)",
            str(other),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "mapped"
        holders = coldcache.mapped_by(data_file)
    finally:
        holder.kill()
        holder.wait()
    assert [h for h in holders if h.startswith(f"{holder.pid} ")] == [f"{holder.pid} python ({other})"]
    assert coldcache.mapped_by(tmp_path / "missing") == []
