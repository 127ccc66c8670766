"""The nightly workflow publishes the dashboard (issue 26): built in the merge job from the
carried-forward history and the kept merged reports, deployed to GitHub Pages by a job that
only a repository which turned the dashboard on, on its default branch, ever runs.
(actionlint runs on the whole workflow in tests/test_ci_workflow.py, `make ci-lint`.)
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
WORKFLOW = REPO / ".github" / "workflows" / "profile-matrix.yml"


@pytest.fixture(scope="module")
def workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


def _steps_using(job: dict, action: str) -> list[dict]:
    return [s for s in job["steps"] if str(s.get("uses", "")).startswith(action + "@")]


def _default_branch_only(condition: str) -> None:
    assert "github.event_name == 'schedule'" in condition
    assert re.search(
        r"github.event_name == 'workflow_dispatch'\s*&& github.ref_name == "
        r"github.event.repository.default_branch",
        condition,
    )
    assert "pull_request" not in condition
    # A fork without Pages leaves the repository variable unset: skipped, the run passes.
    assert "vars.DASHBOARD_PAGES == 'true'" in condition


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


def test_the_pages_job_deploys_with_only_the_permissions_it_needs(workflow):
    pages = workflow["jobs"]["pages"]
    assert pages["needs"] == "merge"
    assert pages["permissions"] == {"pages": "write", "id-token": "write"}
    assert pages["environment"]["name"] == "github-pages"
    (deploy,) = _steps_using(pages, "actions/deploy-pages")
    assert pages["environment"]["url"] == f"${{{{ steps.{deploy['id']}.outputs.page_url }}}}"
    _default_branch_only(pages["if"])


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
