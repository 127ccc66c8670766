"""Before a cell's samples, in its environment: export the model for its backend and dtype,
and encode the agreement sentences with the torch float32 model.

    python -P -m harness.measure.export SPEC_JSON RESULT_FILE

The runner (harness.measure.runner.CellRun.prepare) runs this once per cell, before the
first sample, with the environment's Python; its time is no sample's. Each result is kept
in the cell's export folder (under the run, never in the model's own folder) and reused by
every later cell of the same model and environment, so a model is exported once per
environment:

- ``reference.json``: the torch float32 model's embeddings of the agreement sentences, what
  every sample's embeddings are compared with (``embedding_cosine_min``);
- ``<backend>/``: the model saved by sentence-transformers with the exported file in it
  (``onnx/model.onnx``, ``onnx/model_qint8_<config>.onnx``, ``openvino/openvino_model.xml``),
  and ``<backend>/export.json``, the seconds each file took to make (``export_s``).

The export is sentence-transformers' own: ``SentenceTransformer(..., backend=...)`` exports
a model that has no file for its backend, ``save_pretrained`` keeps it, and
``export_dynamic_quantized_onnx_model`` quantizes to int8 with no calibration data, with the
quantization config that suits this CPU (avx512_vnni, avx512, avx2 or arm64).

The runner's side (:func:`run`) builds the command, runs it and reads the result: this
module imports the standard library at the top, and the model stack only when run.
"""

import json
import os
import platform
import sys
import time
from typing import Any, Literal

# The file each (backend, dtype) loads, relative to the model folder; qint8's name holds
# the quantization config, chosen for the CPU (quantization_config()).
FLOAT_FILES = {"onnx": "onnx/model.onnx", "openvino": "openvino/openvino_model.xml"}
REFERENCE = "reference.json"
TIMES = "export.json"
EXIT_EXPORT = 5  # the export failed; stderr's last line says how


def quantization_config(cpuinfo: str = "/proc/cpuinfo") -> str:
    """The dynamic int8 quantization config optimum offers for this CPU."""
    if platform.machine().lower() in ("aarch64", "arm64"):
        return "arm64"
    try:
        with open(cpuinfo) as fh:
            flags = set()
            for line in fh:
                if line.startswith("flags"):
                    flags.update(line.split(":", 1)[1].split())
                    break
    except OSError:
        flags = set()
    if "avx512_vnni" in flags:
        return "avx512_vnni"
    if "avx512f" in flags:
        return "avx512"
    return "avx2"


def file_for(backend: str, dtype: str) -> str | None:
    """The file a backend and dtype load (``model_kwargs={"file_name": ...}``); None for torch."""
    if backend == "torch":
        return None
    if dtype == "qint8":
        return f"onnx/model_qint8_{quantization_config()}.onnx"
    return FLOAT_FILES[backend]


def _times(folder: str) -> dict:
    try:
        with open(os.path.join(folder, TIMES)) as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return {}


def _write_json(path: str, data) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as fh:
        json.dump(data, fh)
    os.replace(tmp, path)


def reference(model_dir: str, folder: str, sentences: list) -> str:
    """The torch float32 embeddings of ``sentences``, encoded once per folder."""
    path = os.path.join(folder, REFERENCE)
    if not os.path.isfile(path):
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(model_dir, device="cpu")
        embeddings = model.encode(sentences, convert_to_numpy=True)
        _write_json(path, {"sentences": sentences, "embeddings": embeddings.astype(float).tolist()})
    return path


def export(model_dir: str, folder: str, backend: Literal["onnx", "openvino"], dtype: str) -> tuple:
    """(folder to load from, file name, export seconds or None) for a backend and dtype.

    The model's own file when it has one; else the one made earlier in ``folder``; else
    made now, and timed: from the model as given to the file the cell loads."""
    name = file_for(backend, dtype)
    if name is None:  # not reached: file_for names a file for every backend but torch
        raise ValueError(f"backend {backend} needs no export")
    if os.path.isfile(os.path.join(model_dir, name)):
        return model_dir, name, None
    target = os.path.join(folder, backend)
    times = _times(target)
    if os.path.isfile(os.path.join(target, name)) and name in times:
        return target, name, times[name]
    from sentence_transformers import SentenceTransformer

    float_name = FLOAT_FILES[backend]
    started = time.perf_counter()
    if float_name in times and os.path.isfile(os.path.join(target, float_name)):
        base_s = times[float_name]
        kwargs: dict[str, Any] = {"model_kwargs": {"file_name": float_name}}
        model = SentenceTransformer(target, device="cpu", backend=backend, **kwargs)
    else:
        source = model_dir
        kwargs = {}
        if os.path.isfile(os.path.join(model_dir, float_name)):  # quantize the model's own export
            kwargs = {"model_kwargs": {"file_name": float_name}}
        model = SentenceTransformer(source, device="cpu", backend=backend, **kwargs)
        model.save_pretrained(target)
        base_s = time.perf_counter() - started
        times[float_name] = base_s
        _write_json(os.path.join(target, TIMES), times)
        started = time.perf_counter()
    if name != float_name:
        from sentence_transformers import export_dynamic_quantized_onnx_model

        config = quantization_config()
        export_dynamic_quantized_onnx_model(model, config, target, file_suffix=f"qint8_{config}")
        times[name] = base_s + time.perf_counter() - started
        _write_json(os.path.join(target, TIMES), times)
    if not os.path.isfile(os.path.join(target, name)):
        raise RuntimeError(f"the export wrote no {name} in {target}")
    return target, name, times[name]


# --------------------------------------------------------------------------- the runner's side


class ExportFailed(Exception):
    """The export (or its reference encode) failed or timed out; the message is one line."""


def run(command: list, spec: dict, env: dict, timeout_s: float) -> dict:
    """Run this module in the cell's environment and return its result: ``command`` is that
    environment's ``python -P -m harness.measure.export`` (the runner builds it), ``spec``
    what to export. The runner's side of the step (harness.measure.runner.CellRun.prepare);
    ExportFailed, one line, when it fails or passes ``timeout_s``."""
    import subprocess
    import tempfile

    what = f"the {spec['backend']} {spec['dtype']} export"
    with tempfile.TemporaryDirectory(prefix="harness-export-") as tmp:
        result_file = os.path.join(tmp, "export.json")
        try:
            proc = subprocess.run(
                [*command, json.dumps(spec), result_file],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                env=env,
                cwd=tmp,
                timeout=timeout_s,
            )
        except subprocess.TimeoutExpired:
            raise ExportFailed(f"{what} timed out after {timeout_s:g} s") from None
        if proc.returncode != 0 or not os.path.isfile(result_file):
            text = (proc.stderr or b"").decode("utf-8", "replace")
            lines = [ln for ln in text.splitlines() if ln.strip()]
            last = lines[-1].removeprefix("harness.measure.export: ") if lines else None
            raise ExportFailed(f"{what} failed: {last or f'exit {proc.returncode}'}")
        with open(result_file) as fh:
            return json.load(fh)


def main(argv: list) -> int:
    if len(argv) != 2:
        print("usage: python -m harness.measure.export SPEC_JSON RESULT_FILE", file=sys.stderr)
        return 2
    spec = json.loads(argv[0])
    folder = spec["folder"]
    os.makedirs(folder, exist_ok=True)
    result: dict = {"load_dir": spec["model_dir"], "file_name": None, "export_s": None}
    try:
        if spec.get("sentences"):
            result["reference"] = reference(spec["model_dir"], folder, spec["sentences"])
        if spec["backend"] != "torch":
            load_dir, name, seconds = export(spec["model_dir"], folder, spec["backend"], spec["dtype"])
            result.update(load_dir=load_dir, file_name=name, export_s=seconds)
    except Exception as exc:  # one line for the cell's failure; the traceback above it
        import traceback

        traceback.print_exc()
        text = " ".join(str(exc).split())[:400]
        print(f"harness.measure.export: {type(exc).__name__}: {text}", file=sys.stderr)
        return EXIT_EXPORT
    _write_json(argv[1], result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
