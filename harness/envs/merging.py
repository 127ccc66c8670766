"""What the ``merge`` nox session needs: the newest run folder, the harness installed to
report, and where ``harness merge`` writes under HARNESS_REPORTS_DIR."""

from __future__ import annotations

import os
from pathlib import Path

from harness.envs.options import REPORTS_DIR_VAR, reports_dir
from harness.pipconf import uv_environment


def latest_run(root: Path) -> Path | None:
    """The newest run folder, or None."""
    runs = [p for p in (reports_dir(root) / "runs").glob("*") if p.is_dir()]
    return max(runs, key=lambda p: p.stat().st_mtime) if runs else None


def install_harness(session, root: Path) -> None:
    """The harness and what it needs to merge and report (no torch)."""
    session.install("-e", str(root), env=uv_environment())


def merge_args(root: Path, run_dir: Path) -> list[str]:
    """Where ``harness merge`` writes its report and history: under HARNESS_REPORTS_DIR when
    set (its defaults are the checkout's reports/ otherwise)."""
    if not os.environ.get(REPORTS_DIR_VAR):
        return []
    reports = reports_dir(root)
    return ["--output", str(reports / f"matrix-{run_dir.name}.json"), "--history", str(reports / "history")]
