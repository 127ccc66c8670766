"""Reference runs (issue 16): the baseline is an environment, rebuilt from its lock and
measured in the same rounds as the current one.

The chain is the session's shared one (tests/e2e/shared_runs.py, reference_chain:
tests/matrices/small.yaml, warm only, one model): a first nox run merged and stored as the
baseline (it must keep its locks), and a second run with ``-- --reference baseline`` that
rebuilds that lock beside the current environment and interleaves ``<cell id>@baseline``
with the current cell. A third run, here, from a baseline whose lock names a version that
does not exist, falls back to the stored numbers with uv's reason. Every environment is built
by real nox and uv (uv's cache makes a rebuild seconds; nox -r reuses the current
environment). What is refused before anything runs is in tests/unit/test_reference_input.py.
"""

from __future__ import annotations

import uuid

import pytest
from conftest import harness, nox

from harness.result import EnvRecord, RunPlan, read_matrix, read_report

pytestmark = pytest.mark.statistic

CELL = "all-MiniLM-L6-v2-torch2.13.0-warm-cpu"
REF = f"{CELL}@baseline"
# The A/A threshold. Two rounds give a t-interval with 1 degree of freedom (t = 12.7), so a
# `slower` or `faster` needs both per-round log ratios beyond log(1.5) = 0.405 *and* within
# about a tenth of each other. A busy run's A/A spread of one log ratio is sigma 0.155
# (tests/e2e/test_paired_run.py's figures): beyond 0.405 is 2.6 sigma, p = 0.0045 per round
# and side, so both rounds one way is below 2 x 0.0045^2 = 4e-5, far under 1 in 1,000.
AA_THRESHOLD = "0.5"


def test_a_stored_baseline_keeps_the_lock_of_every_environment(reference_chain):
    stored = read_matrix(reference_chain["stored"])
    (env,) = stored.environments.values()
    # Every distribution exactly, the Python and where uv found them: what rebuilds it.
    assert env.status == "ok" and env.python and env.sources
    assert any(line.startswith("torch==2.13.0") for line in env.lock)
    assert any(line.startswith("sentence-transformers==") for line in env.lock)
    assert all("==" in line or " @ " in line for line in env.lock)


def test_a_reference_run_rebuilds_the_lock_and_interleaves_the_reference_cells(reference_chain):
    proc = reference_chain["proc2"]
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "the stack did not change" in proc.stderr
    run_dir = reference_chain["reports"] / "runs" / reference_chain["second"]
    ref_env = EnvRecord.read(run_dir / "env-torch-2.13.0@baseline.json")
    cur_env = EnvRecord.read(run_dir / "env-torch-2.13.0.json")
    assert ref_env.status == "ok" and ref_env.reference == str(reference_chain["stored"])
    assert ref_env.venv != cur_env.venv and ref_env.venv.endswith("@baseline")
    assert (
        set(ref_env.lock)
        == set(cur_env.lock)
        == set(read_matrix(reference_chain["stored"]).environments["2.13.0"].lock)
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
    merged = reference_chain["reports"] / f"matrix-{reference_chain['second']}.json"
    merging = harness("merge", str(run_dir), "--output", str(merged), "--no-history")
    assert merging.returncode == 0 and f"(reused {cur_env.reused_from})" in merging.stdout, merging.stdout
    judged = harness(
        "reference",
        str(merged),
        "--baselines-dir",
        str(reference_chain["baselines"]),
        "--threshold",
        AA_THRESHOLD,
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
    edited = reference_chain["tmp"] / "edited.json"
    report.write(edited)
    changed = harness("reference", str(edited), "--baselines-dir", str(reference_chain["baselines"]))
    assert changed.returncode in (0, 1), changed.stderr
    assert "1 package(s) differ" in changed.stdout and f"tqdm 4.0.0 -> {version}" in changed.stdout
    assert "the stack did not change" not in changed.stdout
    # The HTML report shows the same: the environments, the paired verdicts, what differs.
    page = reference_chain["tmp"] / "edited.html"
    shown = harness(
        "report", str(edited), "--baselines-dir", str(reference_chain["baselines"]), "--html", str(page)
    )
    assert shown.returncode == 0, shown.stderr
    html = page.read_text()
    assert 'id="reference"' in html and "1 package(s) differ" in html
    assert f"tqdm 4.0.0 -&gt; {version}" in html
    assert REF in html and 'id="plot-reference"' in html

    # The baseline stored from a reference run keeps neither reference cells nor environments.
    again = harness("baseline", "save", str(merged), "--root", str(reference_chain["tmp"] / "b2"))
    assert again.returncode == 0, again.stderr
    (kept,) = (reference_chain["tmp"] / "b2").glob("*.json")
    kept = read_matrix(kept)
    assert list(kept.cells) == [CELL] and all(not e.reference for e in kept.environments.values())


def test_a_lock_that_cannot_be_rebuilt_falls_back_to_the_stored_numbers_with_its_reason(reference_chain):
    # The stored baseline's lock names a version that does not exist.
    baselines = reference_chain["tmp"] / "yanked"
    baselines.mkdir()
    report = read_matrix(reference_chain["stored"])
    (record,) = report.environments.values()
    record.lock = [line for line in record.lock if not line.startswith("tqdm==")] + ["tqdm==999.0"]
    report.write(baselines / reference_chain["stored"].name)
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
        **reference_chain["common"],
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    run_dir = reference_chain["reports"] / "runs" / run_id
    failed = EnvRecord.read(run_dir / "env-torch-2.13.0@baseline.json")
    assert failed.status == "failed" and "could not be rebuilt" in failed.error and "999.0" in failed.error
    assert "\n" not in failed.error
    assert not (run_dir / f"{REF}.json").exists()
    assert read_report(run_dir / f"{CELL}.json").status == "complete"  # the run went on

    merged = reference_chain["reports"] / f"matrix-{run_id}.json"
    assert harness("merge", str(run_dir), "--output", str(merged), "--no-history").returncode == 0
    judged = harness("reference", str(merged), "--baselines-dir", str(baselines))
    assert judged.returncode in (0, 1), judged.stderr
    assert (
        "torch-2.13.0: not rebuilt: the baseline's lock for torch-2.13.0 could not be rebuilt"
        in judged.stdout
    )
    assert "compared with the stored numbers instead" in judged.stdout
    assert f"against baseline {baselines / reference_chain['stored'].name}" in judged.stdout
