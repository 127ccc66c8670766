"""What may follow ``--`` on a nox session's command line, and the run folder it names.

Checked with the settings' bounds, as the command line and matrix.yaml are; a bad value is
one line (UserError).
"""

from __future__ import annotations

import argparse
import functools
import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from harness.errors import UserError
from harness.matrix.model import ORDERS
from harness.result import safe_name
from harness.result.settings import RUNS, WARMUPS

# Where reports go: <reports>/runs/<run id>/. Tests point it outside the checkout.
REPORTS_DIR_VAR = "HARNESS_REPORTS_DIR"
RUN_ID_VAR = "HARNESS_RUN_ID"


def reports_dir(root: Path) -> Path:
    return Path(os.environ.get(REPORTS_DIR_VAR) or Path(root) / "reports")


def run_id_from_env() -> str | None:
    """HARNESS_RUN_ID, checked: it becomes a folder name."""
    value = os.environ.get(RUN_ID_VAR)
    return safe_name(value, RUN_ID_VAR) if value else None


@functools.cache
def default_run_id() -> str:
    """The run id when none is given: the time a session of this nox invocation first asked
    for it, so every session of one invocation writes into one run folder (and loading the
    noxfile, as ``nox -l`` does, reads no clock)."""
    return datetime.now().strftime("%Y%m%d-%H%M%S")


@dataclass(frozen=True)
class Options:
    """What may follow ``--``: --runs N, --warmups N, --resume RUN_ID, --order ORDER,
    --seed N, --reference baseline|numbers|FILE, --baselines-dir DIR, --run-id ID (merge),
    --inherit-env;
    anything else is handed on to ``harness merge``."""

    runs: int | None = None
    warmups: int | None = None
    resume: str | None = None
    run_id: str | None = None
    order: str | None = None
    seed: int | None = None
    reference: str | None = None  # baseline, numbers or a stored baseline file (None: the matrix's)
    baselines_dir: str | None = None  # where stored baselines are (default: <reports>/baselines)
    inherit_env: bool = False  # the probes get the caller's whole environment (--inherit-env)
    merge_args: list[str] = field(default_factory=list)

    def run_dir(self, root: Path) -> Path:
        return (
            reports_dir(root) / "runs" / (self.resume or self.run_id or run_id_from_env() or default_run_id())
        )


def parse_options(posargs: list[str], session_name: str = "SESSION") -> Options:
    """The arguments after ``--``, checked with the settings' bounds; UserError (one line)."""
    parser = argparse.ArgumentParser(
        prog=f"nox -s {session_name} --", add_help=False, allow_abbrev=False, exit_on_error=False
    )
    for flag in (
        "--runs",
        "--warmups",
        "--resume",
        "--run-id",
        "--reference",
        "--baselines-dir",
        "--order",
        "--seed",
    ):
        parser.add_argument(flag)
    parser.add_argument("--inherit-env", action="store_true")
    try:
        given, rest = parser.parse_known_args(posargs)
    except argparse.ArgumentError as exc:
        raise UserError(f"arguments after --: {exc}") from None
    counts: dict[str, int | None] = {}
    # --seed: any whole number from 0, as run-cells takes it (the warm-ups' bound).
    for name, bound in (("runs", RUNS), ("warmups", WARMUPS), ("seed", WARMUPS)):
        text = getattr(given, name)
        try:
            counts[name] = None if text is None else int(bound.parse(text))  # whole-number bounds
        except ValueError as exc:
            raise UserError(f"arguments after --: --{name}: {exc}") from None
    if given.order is not None and given.order not in ORDERS:
        raise UserError(f"arguments after --: --order: {given.order!r} is not {' or '.join(ORDERS)}")
    resume, run_id = (
        None if text is None else safe_name(text, f"--{flag} run id")
        for flag, text in (("resume", given.resume), ("run-id", given.run_id))
    )
    return Options(
        counts["runs"],
        counts["warmups"],
        resume,
        run_id,
        given.order,
        counts["seed"],
        given.reference,
        given.baselines_dir,
        given.inherit_env,
        rest,
    )
