"""`harness history` names its folder --history, as merge and report do; --root, its older
name, still works (a documented option keeps working)."""

from __future__ import annotations

from conftest import harness


def test_history_takes_history_and_keeps_root(tmp_path):
    empty = tmp_path / "history"
    for flag in ("--history", "--root"):
        proc = harness("history", flag, str(empty))
        assert proc.returncode == 0, proc.stderr
        assert f"no runs recorded under {empty}" in proc.stdout
