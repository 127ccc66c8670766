"""bench/stopping.py's simulation, run as a user runs it, on a synthetic trace (generated
here, never a measurement): it writes --json in the issue's fixed shape, and bad input is a
one-line error with exit status 2. The benchmark's figures come from real traces (docs/
benchmarks.md); this checks only that the simulator reads a trace and reports every field."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "bench" / "stopping.py"
CASES = {"aa", "b05", "b10", "b20"}
RULES = {"stopping", "peeking", "fixed10", "fixed30"}
FIELDS = {"false_rate", "slower_rate", "changed_rate", "rounds_median", "rounds_p90"}


def synthetic_trace(load: str, rounds: int, sd: float, seed: int, cpu: bool = True) -> dict:
    """A trace shaped as --record writes one: A and A' identical, sharing a slow drift."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(rounds):
        drift = float(np.exp(0.1 * np.sin(i / 7)))
        out.append(
            {
                name: {
                    "total_s": 5.0 * drift * float(np.exp(sd * rng.standard_normal())),
                    **({"total_cpu_s": 4.0 * float(np.exp(sd / 3 * rng.standard_normal()))} if cpu else {}),
                }
                for name in ("A", "A-prime")
            }
        )
    out[5]["A"] = None  # a failed sample: its round is dropped
    return {
        "kind": "stopping trace",
        "version": 1,
        "load": load,
        "smoke": False,
        "recorded": "synthetic",
        "cells": ["A", "A-prime"],
        "rounds": out,
    }


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(BENCH), *args], capture_output=True, text=True, timeout=300, cwd=REPO
    )


def test_json_has_the_fixed_shape(tmp_path):
    hog, quiet = tmp_path / "hog.json", tmp_path / "quiet.json"
    hog.write_text(json.dumps(synthetic_trace("hog", 80, 0.07, 1)))
    quiet.write_text(json.dumps(synthetic_trace("quiet", 80, 0.02, 2, cpu=False)))
    out = tmp_path / "figures.json"
    proc = run("--traces", str(hog), str(quiet), "--trials", "300", "--json", str(out))
    assert proc.returncode == 0, proc.stderr
    figures = json.loads(out.read_text())
    assert set(figures) == {"hog", "quiet"}
    assert set(figures["hog"]) == {"total_s", "total_cpu_s"}
    assert set(figures["quiet"]) == {"total_s"}  # a metric the trace lacks is left out
    for per_metric in figures.values():
        for per_case in per_metric.values():
            assert set(per_case) == CASES
            for case, per_rule in per_case.items():
                assert set(per_rule) == RULES
                for rule, fields in per_rule.items():
                    assert set(fields) == (FIELDS if case == "aa" else FIELDS - {"false_rate"})
                    assert all(0 <= fields[k] <= 1 for k in fields if k.endswith("_rate"))
                    if rule.startswith("fixed"):
                        assert fields["rounds_median"] == fields["rounds_p90"] == int(rule[5:])
                    else:
                        assert 3 <= fields["rounds_median"] <= fields["rounds_p90"] <= 60
    assert "| aa     | stopping |" in proc.stdout and "Targets" in proc.stdout


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "Expecting property name"),
        (json.dumps({"kind": "cell report"}), "not a stopping trace version 1"),
        (json.dumps({"kind": "stopping trace", "version": 1, "load": "busy", "rounds": []}), "needs a load"),
    ],
)
def test_a_bad_trace_is_a_one_line_error(tmp_path, content, message):
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    proc = run("--traces", str(bad), "--trials", "10")
    assert proc.returncode == 2
    assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_bad_rounds_are_refused(tmp_path):
    trace = tmp_path / "hog.json"
    trace.write_text(json.dumps(synthetic_trace("hog", 20, 0.07, 1)))
    proc = run("--traces", str(trace), "--min-rounds", "9", "--max-rounds", "4")
    assert proc.returncode == 2 and "MIN:MAX" in proc.stderr
