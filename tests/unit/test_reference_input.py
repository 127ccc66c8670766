"""Reference runs (issue 16), before anything runs: a REFERENCE that names no stored
baseline is one line and exit 2 (make and nox alike), no stored baseline yet is said, and
the matrix key reference_run is checked. tests/e2e/test_reference.py runs the chain."""

from __future__ import annotations

import re
import subprocess

import pytest
import yaml
from conftest import REPO, SMALL, harness, nox


def test_reference_naming_no_stored_baseline_is_one_line_and_exit_2(tmp_path):
    reports = tmp_path / "reports"
    not_a_report = tmp_path / "notes.json"
    not_a_report.write_text("{}")
    for spec in ("bogus", str(tmp_path / "missing.json"), str(not_a_report)):
        proc = subprocess.run(
            [
                "make",
                "-s",
                "--no-print-directory",
                "profile-matrix",
                f"REFERENCE={spec}",
                f"REPORTS={reports}",
                f"MATRIX={SMALL}",
            ],
            capture_output=True,
            text=True,
            cwd=REPO,
            timeout=300,
            check=False,
        )
        assert proc.returncode == 2, proc.stdout + proc.stderr
        # make adds its own lines ("make: *** [...] Error 2", a clock-skew warning) after ours.
        # Under `make test` this make is nested: its own lines start "make[1]:".
        lines = [line for line in proc.stderr.strip().splitlines() if not re.match(r"make(\[\d+\])?: ", line)]
        assert len(lines) == 1, proc.stderr
        (line,) = lines
        assert line.startswith("harness reference: error: REFERENCE=") and "stored baseline" in line
        assert not (reports / "runs").exists()  # nothing ran, nothing written
    # nox's own arguments say it in one line too, before anything is built.
    proc = nox(
        "-s",
        "profile_matrix",
        "--",
        "--reference",
        "bogus",
        matrix=SMALL,
        reports=reports,
        envdir=tmp_path / "envs",
    )
    assert proc.returncode != 0 and "--reference bogus: not baseline or numbers" in proc.stderr
    assert "Traceback" not in proc.stderr and not (reports / "runs").exists()


def test_no_stored_baseline_yet_is_said_not_an_error(tmp_path):
    proc = harness("reference", "--resolve", "baseline", "--baselines-dir", str(tmp_path))
    assert proc.returncode == 0 and "no baseline stored" in proc.stdout


def test_the_matrix_key_reference_run_is_checked(tmp_path):
    from harness.matrix import MatrixError, load_matrix

    data = yaml.safe_load(SMALL.read_text())
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump({**data, "reference_run": "baseline", "reference": "2.13.0"}))
    matrix = load_matrix(path)
    assert matrix.reference_run == "baseline" and matrix.reference == "2.13.0"  # the old key stands
    path.write_text(yaml.safe_dump({**data, "reference_run": "yesterday"}))
    with pytest.raises(MatrixError, match="reference_run"):
        load_matrix(path)
    assert load_matrix(SMALL).reference_run == "numbers"
