"""One run at a time per nox environment folder and per run folder.

Two ``make profile-matrix`` started at once in one checkout would share ``.nox/`` (nox's
``uv venv --clear`` of the second deleting the first's environments while it measures) and,
with the same run id, one run folder (each overwriting the other's samples). So a nox
invocation that builds environments holds an exclusive ``flock`` on
``<envdir>/harness-run.lock`` (the checkout's ``.nox/harness-run.lock`` by default) from the
moment the noxfile is loaded, before nox creates any environment, and its first profiling
session holds ``<run dir>/run.lock`` before it writes anything there. A second invocation
finds one held and stops with one line and exit status 2. The locks go with the process
(the kernel drops a flock when its holder exits, killed or not); the files stay.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import os
from pathlib import Path

from harness.errors import UserError
from harness.result import now_iso

ENVDIR_LOCK = "harness-run.lock"
RUN_DIR_LOCK = "run.lock"
# Sessions that build no environment: an invocation of only these takes no envdir lock.
BUILDS_NOTHING = frozenset({"merge", "measure"})

# Lock file -> its open descriptor, held until this process exits.
_held: dict[Path, int] = {}


def hold(path: Path, hint: str) -> None:
    """Hold an exclusive lock on ``path`` for the rest of this process; UserError (one line,
    naming the holder and ``hint``) when another process holds it."""
    path = Path(path).absolute()
    if path in _held:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 1000).decode(errors="replace").strip() or "a process"
        os.close(fd)
        raise UserError(f"another run holds {path} ({holder}); wait for it or {hint}") from None
    os.ftruncate(fd, 0)
    os.write(fd, f"pid {os.getpid()} since {now_iso()}".encode())
    _held[path] = fd


def envdir_to_lock(argv: list[str]) -> Path | None:
    """The environment folder this nox command line builds in, or None when it builds
    nothing (``nox -l``, or only the merge/measure sessions). Read with nox's own parser; a
    command line it cannot read is taken to build in ``.nox``."""
    try:
        from nox._options import options

        with contextlib.redirect_stderr(io.StringIO()):  # nox reports its own usage errors later
            config = options.parse_args(argv)
    except (Exception, SystemExit):
        return Path(".nox")
    if config.list_sessions:
        return None
    if config.sessions and all(name.split("(")[0] in BUILDS_NOTHING for name in config.sessions):
        return None
    return Path(config.envdir or ".nox")
