"""The type checker over harness/: mypy, configured in pyproject.toml ([tool.mypy]), clean.

The result format's types (msgspec structs with literal fields) are only as good as the
code that fills them: mypy checks every construction against them, so a cell's mode, a
backend or a dtype cannot be a stray string, and a field read off None is caught here.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# mypy's incremental cache, outside the checkout (no test writes there) but kept between
# runs (a cold check takes about 30 s here, a warm one a few): one per checkout.
CACHE = Path(tempfile.gettempdir()) / f"harness-mypy-cache-{hashlib.sha256(bytes(REPO)).hexdigest()[:12]}"


def test_mypy_finds_no_error_in_the_harness():
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--cache-dir", str(CACHE)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    assert "Success: no issues found" in proc.stdout
