"""An entry point that ends with SystemExit fails its cell at once, kind ``load``
(issue 27, item 9).

``raise SystemExit(0)`` (``sys.exit()``) in FUNCTION or in its ``encode`` passed the
probe's ``except Exception``: the probe exited 0 without a result, recorded as a ``crash``
("exit status 0: no error output") and retried for every sample. The application here
imports nothing heavy, so no model is loaded.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from harness.result import FailureKind, read_report

APP = """
import sys

class Encoder:
    def __init__(self, exit_on_call):
        self.calls = 0
        self.exit_on_call = exit_on_call

    def encode(self, sentence):
        self.calls += 1
        if self.calls == self.exit_on_call:
            sys.exit(0)
        return [0.0, 1.0]

def exits():
    raise SystemExit(0)

def exits_with_words():
    sys.exit("the configuration file is missing")

def first_encode_exits():
    return Encoder(1)

def later_encode_exits():
    return Encoder(3)
"""


@pytest.fixture(scope="module")
def app_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("exitapp")
    (folder / "exitapp.py").write_text(APP)
    return folder


@pytest.mark.parametrize(
    "function, said",
    [
        ("exits", "exits() raised SystemExit: 0"),
        ("exits_with_words", "exits_with_words() raised SystemExit: the configuration file is missing"),
        ("first_encode_exits", "encode() raised SystemExit: 0"),
        ("later_encode_exits", "encode() raised SystemExit: 0"),
    ],
)
def test_an_entry_point_that_exits_fails_at_once_as_a_load_failure(app_dir, tmp_path, function, said):
    out = tmp_path / "r.json"
    proc = subprocess.run(
        [sys.executable, "-m", "harness", "profile", "--model", f"entry:exitapp:{function}"]
        + ["--app-path", str(app_dir), "--runs", "3", "--warmups", "1", "--no-import-attribution"]
        + ["--quiet", "--output", str(out)],
        capture_output=True, text=True, cwd=tmp_path, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stdout + proc.stderr
    report = read_report(out)
    assert report.status == "failed"
    assert report.failure is not None and report.failure.kind == FailureKind.LOAD
    assert said in (report.failure.detail or ""), report.failure
    # Stopped at the first sample, not retried for each of the four.
    assert len(report.samples) == 1
