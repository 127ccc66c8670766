"""Reading and writing result files safely: atomic writes that never replace a device, and
bounded reads that never hang on a FIFO or run out of memory on /dev/zero.

Every JSON file the harness writes goes through :func:`write_atomic`, and every report it
reads through :func:`read_bytes`; the typed readers decode what this returns.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from harness.errors import UserError

# A report of 10,000 samples is about 10 MB; anything past this is not a report.
MAX_REPORT_BYTES = 256 * 1024 * 1024


class ReportError(UserError):
    """A report file that cannot be used; the message is one line naming the file."""


class TargetError(UserError):
    """A path the user named that must not be replaced (a device, a FIFO, a folder)."""


class WriteError(UserError):
    """A target that cannot be written (no such folder, read-only, /proc); distinct status."""

    exit_code = 3


class PathLoopError(UserError):
    """A path that cannot be resolved: a symlink loop (a link that leads back to itself)."""


def real_path(path: str | os.PathLike, what: str = "path", *, error: type[UserError] = PathLoopError) -> Path:
    """``path`` made absolute, ``~`` expanded and every symlink followed (``Path.resolve``);
    a symlink loop is one line (``error``, naming ``what``), not ``RuntimeError: Symlink
    loop``'s traceback. Every model path, entry folder and install folder goes through it."""
    path = Path(path)
    try:
        found = path.expanduser().resolve()
    except RuntimeError:  # Python < 3.13: "Symlink loop from ..."
        found = None
    except OSError as exc:
        raise error(f"{what} {path}: cannot be resolved ({exc.strerror or exc})") from None
    # Python 3.13 returns a loop unresolved instead of raising: it is still a link then.
    if found is None or found.is_symlink():
        raise error(
            f"{what} {path}: is a symlink loop (a link that leads back to itself); point it at a real folder"
        )
    return found


def check_target(path: str | os.PathLike) -> Path:
    """``path`` if writing there replaces nothing but a regular file; else one line, exit 2."""
    path = Path(path)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return path
    except OSError as exc:
        raise WriteError(f"{path}: cannot be written ({exc.strerror or exc})") from None
    if not stat.S_ISREG(mode):
        kind = "a folder" if stat.S_ISDIR(mode) else "not a regular file (a device, FIFO or socket)"
        raise TargetError(f"{path}: is {kind}; name a file to write the result to")
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` so that a reader (or a Ctrl-C) never sees half a file.

    The file gets the mode a plain ``open()`` would give it (0666 less the umask), and an
    existing path that is not a regular file is refused rather than replaced.
    """
    path = check_target(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    except OSError as exc:
        raise WriteError(f"{path}: cannot be written ({exc.strerror or exc})") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise WriteError(f"{path}: cannot be written ({exc.strerror or exc})") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def append_bytes(path: str | os.PathLike, data: bytes, *, sync: bool = False) -> Path:
    """Append ``data`` in one write (a history line, a job summary) to a regular file, made
    if missing, and with ``sync`` flush it to the disk before returning. Anything else at the
    path is refused, as :func:`write_atomic` does; a FIFO is never waited on."""
    path = check_target(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK, 0o666)
    except OSError as exc:
        raise WriteError(f"{path}: cannot be written ({exc.strerror or exc})") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):  # replaced by something else since the check
            raise TargetError(f"{path}: is not a regular file (a device, FIFO or socket); name a file")
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        if sync:
            os.fsync(fd)
    except OSError as exc:
        raise WriteError(f"{path}: cannot be written ({exc.strerror or exc})") from None
    finally:
        os.close(fd)
    return path


def read_bytes(
    path: str | os.PathLike,
    limit: int = MAX_REPORT_BYTES,
    *,
    error: type[UserError] = ReportError,
    noun: str = "report",
    missing_hint: str = "",
) -> bytes:
    """The bytes of a regular UTF-8 file of at most ``limit`` bytes; anything else is one
    line (``error``, naming the file as a ``noun``): never a hang on a FIFO, never all of
    /dev/zero in memory. matrix.yaml is read through it too."""
    path = Path(path)
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise error(f"{path}: no such file{missing_hint}") from None
    except OSError as exc:
        raise error(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if stat.S_ISDIR(info.st_mode):
        raise error(f"{path}: is a folder, not a {noun}")
    if not stat.S_ISREG(info.st_mode):
        raise error(f"{path}: not a regular file (a device, FIFO or socket); not a {noun}")
    if info.st_size > limit:
        raise error(f"{path}: {info.st_size} bytes, over the {limit} bytes a {noun} may have")
    try:
        with open(path, "rb") as fh:
            data = fh.read(limit + 1)
    except OSError as exc:
        raise error(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if len(data) > limit:
        raise error(f"{path}: over the {limit} bytes a {noun} may have")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{path}: not UTF-8 text (byte {exc.start}); not a {noun}") from None
    return data
