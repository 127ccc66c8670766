"""What every JSON document of the harness shares: one writer, one reader, its versions.

A document class (a cell report, a matrix report, an environment record, a run plan) is a
msgspec Struct with ``schema_version`` and ``kind`` first. ``write`` encodes it and writes
it atomically; ``read`` checks the file (regular, bounded, UTF-8), its kind and version,
upgrades an older version through the class's own ``upgrade`` and decodes it into the
type, so every consumer gets checked, typed data or one line naming the file.

Versioning, as pyperf does it: ``schema_version`` is an integer; adding an optional field
keeps it, renaming, removing or changing the meaning of a field bumps it, and each class
keeps the code that reads its older versions (``upgrade``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import msgspec

from harness.result.files import ReportError, read_bytes, write_atomic

D = TypeVar("D", bound="Document")


class _Header(msgspec.Struct):
    schema_version: Any = None
    kind: Any = None


def _problem(exc: Exception) -> str:
    text = str(exc)
    return text[:1].lower() + text[1:] if text else type(exc).__name__


def decode_header(path: str | os.PathLike, data: bytes) -> _Header:
    try:
        header = msgspec.json.decode(data, type=_Header)
    except UnicodeDecodeError:
        raise ReportError(f"{path}: not UTF-8 text; not a report") from None
    except msgspec.ValidationError:
        raise ReportError(f"{path}: not a report (the top level is not an object)") from None
    except msgspec.DecodeError as exc:
        raise ReportError(f"{path}: not valid JSON (corrupt or truncated: {_problem(exc)})") from None
    except RecursionError:
        raise ReportError(f"{path}: nested too deeply to be a report") from None
    return header


class Document(msgspec.Struct, kw_only=True):
    """Base of every JSON document the harness writes and reads."""

    SCHEMA_VERSION: ClassVar[int] = 3
    KIND: ClassVar[str] = ""
    # Older versions this class can still read, through upgrade().
    READS: ClassVar[frozenset[int]] = frozenset({3})
    # Files from before this class had a version (no kind, no schema_version) are version 1.
    UNVERSIONED_IS_V1: ClassVar[bool] = False

    def to_json(self) -> bytes:
        return msgspec.json.format(msgspec.json.encode(self), indent=2) + b"\n"

    def write(self, path: str | os.PathLike) -> Path:
        """Write atomically (never half a file, never over a device)."""
        return write_atomic(path, self.to_json())

    @classmethod
    def upgrade(cls, data: dict, version: int) -> dict:
        """An older version's builtins, as this version's; override where READS has more."""
        return data

    @classmethod
    def read(cls: type[D], path: str | os.PathLike) -> D:
        data = read_bytes(path)
        header = decode_header(path, data)
        return cls.decode(path, data, header)

    @classmethod
    def decode(cls: type[D], path: str | os.PathLike, data: bytes, header: _Header | None = None) -> D:
        header = header or decode_header(path, data)
        if cls.UNVERSIONED_IS_V1 and header.kind is None and header.schema_version is None:
            header = _Header(schema_version=1, kind=cls.KIND)
        if header.kind != cls.KIND:
            raise ReportError(
                f"{path}: kind {header.kind!r}, not {cls.KIND!r}; not a harness {cls.KIND} file"
            )
        version = header.schema_version
        if isinstance(version, bool) or version not in cls.READS:
            raise ReportError(
                f"{path}: schema_version {version!r} is not supported by this harness "
                f"(reads {sorted(cls.READS)})"
            )
        try:
            if version == cls.SCHEMA_VERSION:
                return msgspec.json.decode(data, type=cls)
            builtins = msgspec.json.decode(data)
            if not isinstance(builtins, dict):
                raise ReportError(f"{path}: not a report (the top level is not an object)")
            return msgspec.convert(cls.upgrade(builtins, version), type=cls)
        except msgspec.ValidationError as exc:
            raise ReportError(f"{path}: invalid {cls.KIND} report: {_problem(exc)}") from None
        except msgspec.DecodeError as exc:
            raise ReportError(f"{path}: not valid JSON (corrupt or truncated: {_problem(exc)})") from None
        except RecursionError:
            raise ReportError(f"{path}: nested too deeply to be a report") from None

    def checked(self: D, what: str) -> D:
        """This document, round-tripped through its type: a value a writer got wrong (NaN,
        a negative time) fails here, in the writer, instead of in a later reader."""
        try:
            return msgspec.json.decode(msgspec.json.encode(self), type=type(self))
        except msgspec.ValidationError as exc:
            raise ReportError(f"{what}: invalid {self.KIND} report: {_problem(exc)}") from None
