"""Reference runs (issue 16): the baseline is an environment, rebuilt from its lock and
measured in the same rounds as the current one.

One real chain, shared by the slow tests (tests/matrices/small.yaml, warm only, one
model): a first nox run is merged and stored as the baseline (it must keep its locks); a
second run with ``-- --reference baseline`` rebuilds that lock beside the current
environment and interleaves ``<cell id>@baseline`` with the current cell; a third, from a
baseline whose lock names a version that does not exist, falls back to the stored numbers
with uv's reason. Every environment is built by real nox and uv (uv's cache makes a
rebuild seconds; nox -r reuses the current environment); one warm-up round keeps uv from
compiling all bytecode up front (harness.envbuild.build_settings).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid

import pytest
import yaml
from conftest import REPO
from test_nox_matrix import SMALL, nox

from harness.result import EnvRecord, RunPlan, read_matrix, read_report

PY = sys.executable
CELL = "all-MiniLM-L6-v2-torch2.13.0-warm-cpu"
REF = f"{CELL}@baseline"
# The A/A threshold. Two rounds give a t-interval with 1 degree of freedom (t = 12.7), so a
# `slower` or `faster` needs both per-round log ratios beyond log(1.5) = 0.405 *and* within
# about a tenth of each other. A busy run's A/A spread of one log ratio is sigma 0.155
# (tests/test_interleaving.py's figures): beyond 0.405 is 2.6 sigma, p = 0.0045 per round
# and side, so both rounds one way is below 2 x 0.0045^2 = 4e-5, far under 1 in 1,000.
AA_THRESHOLD = "0.5"


def harness(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [PY, "-m", "harness", *args], capture_output=True, text=True, cwd=REPO, timeout=600, check=False
    )


def _matrix(tmp) -> os.PathLike:
    data = yaml.safe_load(SMALL.read_text())
    data.update(modes=["warm"], runs=2, warmups=1)
    path = tmp / "matrix.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("reference")
    matrix = _matrix(tmp)
    reports, envdir, baselines = tmp / "reports", tmp / "envs", tmp / "reports" / "baselines"
    common = dict(matrix=matrix, envdir=envdir, reports=reports)
    first = f"first-{uuid.uuid4().hex[:6]}"
    proc = nox("-s", "profile_matrix", "--", "--runs", "1", run_id=first, **common)
    assert proc.returncode == 0, proc.stderr[-3000:]
    merged = reports / f"matrix-{first}.json"
    merging = harness("merge", str(reports / "runs" / first), "--output", str(merged), "--no-history")
    assert merging.returncode == 0, merging.stderr
    saved = harness("baseline", "save", str(merged), "--root", str(baselines))
    assert saved.returncode == 0, saved.stderr
    (stored,) = baselines.glob("*.json")

    second = f"second-{uuid.uuid4().hex[:6]}"
    ref_args = ("--", "--reference", "baseline", "--baselines-dir", str(baselines))
    proc2 = nox("-r", "-s", "profile_matrix", *ref_args, run_id=second, **common)
    return dict(
        tmp=tmp,
        common=common,
        reports=reports,
        baselines=baselines,
        stored=stored,
        second=second,
        proc2=proc2,
        ref_args=ref_args,
    )


@pytest.mark.slow
def test_a_stored_baseline_keeps_the_lock_of_every_environment(chain):
    stored = read_matrix(chain["stored"])
    (env,) = stored.environments.values()
    # Every distribution exactly, the Python and where uv found them: what rebuilds it.
    assert env.status == "ok" and env.python and env.sources
    assert any(line.startswith("torch==2.13.0") for line in env.lock)
    assert any(line.startswith("sentence-transformers==") for line in env.lock)
    assert all("==" in line or " @ " in line for line in env.lock)


@pytest.mark.slow
def test_a_reference_run_rebuilds_the_lock_and_interleaves_the_reference_cells(chain):
    proc = chain["proc2"]
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "the stack did not change" in proc.stderr
    run_dir = chain["reports"] / "runs" / chain["second"]
    ref_env = EnvRecord.read(run_dir / "env-torch-2.13.0@baseline.json")
    cur_env = EnvRecord.read(run_dir / "env-torch-2.13.0.json")
    assert ref_env.status == "ok" and ref_env.reference == str(chain["stored"])
    assert ref_env.venv != cur_env.venv and ref_env.venv.endswith("@baseline")
    assert (
        set(ref_env.lock)
        == set(cur_env.lock)
        == set(read_matrix(chain["stored"]).environments["2.13.0"].lock)
    )

    ref, cur = read_report(run_dir / f"{REF}.json"), read_report(run_dir / f"{CELL}.json")
    assert ref.status == cur.status == "complete" and ref.cell.stack == "baseline" and cur.cell.stack is None
    assert ref.environment.prefix == ref_env.venv  # measured in the rebuilt environment
    # Interleaved: every round holds both cells, and each sample carries its round.
    plan = RunPlan.read(run_dir / "run.json")
    assert plan.rounds and all(sorted(r) == sorted([CELL, REF]) for r in plan.rounds)
    assert {s.round for s in ref.samples} == {s.round for s in cur.samples} == set(range(len(plan.rounds)))

    # nox -r kept the first run's environment, whose resolved set is the same: said, and shown.
    assert cur_env.reused_from and cur_env.reused_from.startswith("first-")
    merged = chain["reports"] / f"matrix-{chain['second']}.json"
    merging = harness("merge", str(run_dir), "--output", str(merged), "--no-history")
    assert merging.returncode == 0 and f"(reused {cur_env.reused_from})" in merging.stdout, merging.stdout
    judged = harness(
        "reference", str(merged), "--baselines-dir", str(chain["baselines"]), "--threshold", AA_THRESHOLD
    )
    assert judged.returncode == 0, judged.stdout + judged.stderr
    assert "torch-2.13.0: the stack did not change" in judged.stdout
    verdict_rows = [line for line in judged.stdout.splitlines() if line.startswith(f"{CELL} ")]
    assert verdict_rows and all(REF in row for row in verdict_rows)
    assert not any(word in row.split()[-1] for row in verdict_rows for word in ("slower", "faster"))
    assert "A/A CHECK FAILED" not in judged.stdout

    # A stack that did change: the same run, the reference's lock holding another version of
    # one package. Those packages are listed beside the verdicts, which are gated.
    report = read_matrix(merged)
    ref_record = report.environments["torch-2.13.0@baseline"]
    name, _, version = next(line for line in ref_record.lock if line.startswith("tqdm==")).partition("==")
    ref_record.lock = [line for line in ref_record.lock if not line.startswith("tqdm==")] + ["tqdm==4.0.0"]
    edited = chain["tmp"] / "edited.json"
    report.write(edited)
    changed = harness("reference", str(edited), "--baselines-dir", str(chain["baselines"]))
    assert changed.returncode in (0, 1), changed.stderr
    assert "1 package(s) differ" in changed.stdout and f"tqdm 4.0.0 -> {version}" in changed.stdout
    assert "the stack did not change" not in changed.stdout
    # The HTML report shows the same: the environments, the paired verdicts, what differs.
    page = chain["tmp"] / "edited.html"
    shown = harness("report", str(edited), "--baselines-dir", str(chain["baselines"]), "--html", str(page))
    assert shown.returncode == 0, shown.stderr
    html = page.read_text()
    assert 'id="reference"' in html and "1 package(s) differ" in html
    assert f"tqdm 4.0.0 -&gt; {version}" in html
    assert REF in html and 'id="plot-reference"' in html

    # The baseline stored from a reference run keeps neither reference cells nor environments.
    again = harness("baseline", "save", str(merged), "--root", str(chain["tmp"] / "b2"))
    assert again.returncode == 0, again.stderr
    (kept,) = (chain["tmp"] / "b2").glob("*.json")
    kept = read_matrix(kept)
    assert list(kept.cells) == [CELL] and all(not e.reference for e in kept.environments.values())


@pytest.mark.slow
def test_a_lock_that_cannot_be_rebuilt_falls_back_to_the_stored_numbers_with_its_reason(chain):
    # The stored baseline's lock names a version that does not exist.
    baselines = chain["tmp"] / "yanked"
    baselines.mkdir()
    report = read_matrix(chain["stored"])
    (record,) = report.environments.values()
    record.lock = [line for line in record.lock if not line.startswith("tqdm==")] + ["tqdm==999.0"]
    report.write(baselines / chain["stored"].name)
    run_id = f"third-{uuid.uuid4().hex[:6]}"
    proc = nox(
        "-r",
        "-s",
        "profile_matrix",
        "--",
        "--reference",
        "baseline",
        "--baselines-dir",
        str(baselines),
        "--runs",
        "1",  # a fallback: no pair to judge, one counted sample says it all
        run_id=run_id,
        **chain["common"],
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    run_dir = chain["reports"] / "runs" / run_id
    failed = EnvRecord.read(run_dir / "env-torch-2.13.0@baseline.json")
    assert failed.status == "failed" and "could not be rebuilt" in failed.error and "999.0" in failed.error
    assert "\n" not in failed.error
    assert not (run_dir / f"{REF}.json").exists()
    assert read_report(run_dir / f"{CELL}.json").status == "complete"  # the run went on

    merged = chain["reports"] / f"matrix-{run_id}.json"
    assert harness("merge", str(run_dir), "--output", str(merged), "--no-history").returncode == 0
    judged = harness("reference", str(merged), "--baselines-dir", str(baselines))
    assert judged.returncode in (0, 1), judged.stderr
    assert (
        "torch-2.13.0: not rebuilt: the baseline's lock for torch-2.13.0 could not be rebuilt"
        in judged.stdout
    )
    assert "compared with the stored numbers instead" in judged.stdout
    assert f"against baseline {baselines / chain['stored'].name}" in judged.stdout


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
