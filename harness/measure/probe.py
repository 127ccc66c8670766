"""The measured child process: one sample of one model's load, stage by stage.

Run as ``python -P -m harness.measure.probe RESULT_FILE SPEC_JSON [MODULE:FUNCTION]`` by the
runner, once per sample,
in a fresh interpreter. It imports nothing heavy before its clock starts and nothing from
the rest of the harness at all, so what it reports is the model stack's cost, not ours.
The figures go to RESULT_FILE (stdout and stderr belong to the libraries, whose progress
bars and warnings the runner keeps for diagnosis).

Stages, each timed with perf_counter_ns (wall) and process_time_ns (CPU):
    import torch -> import sentence_transformers -> [cuda init] -> SentenceTransformer(...)
    -> [model.to(cuda)] -> first encode -> END MARK
What a user's own load does ends at the end mark (``end_mono_ns`` in the result, on the
runner's clock): the runner's ``process_wall_s`` stops there. Everything after it is the
harness's own work and is counted in no figure of a counted sample: memory readings, and
only where the spec asks (``extras``: warm-up samples) the N steady-state encodes (median,
``encode_s``) and the agreement encode; then the bytecode scan, the file list, the JSON.

With MODULE:FUNCTION (an ``entry:`` source), the application's own load path instead:
    import MODULE (import_app_s) -> FUNCTION() (init_s) -> first .encode -> N more
and what the application imports, when it imports it, is part of those stages. An entry
point that cannot be imported, has no FUNCTION, raises, or returns something without
``encode`` ends the probe with EXIT_ENTRY and one line on stderr saying which.
"""

import time

_T0_NS = time.perf_counter_ns()
# CLOCK_MONOTONIC is system-wide on Linux: the runner reads the same clock before it spawns
# this process, so start-up and the end mark are differences of one clock, not of two
# processes' wall clocks.
_START_MONO_NS = time.monotonic_ns()
_T0_CPU_NS = time.process_time_ns()
_START_WALL_NS = time.time_ns()

import os  # noqa: E402  (already loaded by the interpreter: free)
import sys  # noqa: E402

# Nothing but time, os and sys is imported before the clock starts (not even __future__),
# and everything else the probe needs (json, statistics, resource) only after the load is
# measured: before, it would be charged to import_torch_s.

EXIT_NO_CUDA = 3
EXIT_ENTRY = 4  # the application's entry point failed; stderr's last line says how
# Written to stderr after the stack's imports when run under -X importtime, so that the
# attribution (harness.measure.importtime) stops there, as the import figures do.
IMPORTS_DONE = "harness.measure.probe: imports done"
_PROC_STATM = "/proc/self/statm"
_PROC_MAPS = "/proc/self/maps"
_PROC_SMAPS_ROLLUP = "/proc/self/smaps_rollup"
_PROC_TASKS = "/proc/self/task"
# Every path opened during the load (the ``open`` audit event), while the runner asks for
# the file list: files read and closed (dist-info metadata, .pth files, the tokenizer's and
# the config's JSON) are part of what a cold start must read from the disk, but appear
# neither among the modules nor in /proc/self/maps. None: not recording.
_OPENED: "list | None" = None


def _record_open(event: str, args: tuple) -> None:
    if event == "open" and _OPENED is not None and args and isinstance(args[0], (str, bytes)):
        _OPENED.append(args[0])


if len(sys.argv) > 2 and '"list_files": true' in sys.argv[2]:
    # Decided without json (not imported before the load): the runner writes the spec with
    # json.dumps, whose spelling this is. Only the samples that list files pay for the hook.
    _OPENED = []
    sys.addaudithook(_record_open)


def _seconds(start_ns: int, end_ns: int) -> float:
    return (end_ns - start_ns) / 1e9


def _mb(n_bytes: float) -> float:
    return n_bytes / (1024 * 1024)


def _rss_bytes() -> int:
    """Resident set size, without importing anything (see the imports above)."""
    try:
        with open(_PROC_STATM) as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:  # no /proc (macOS): the peak is the best the standard library offers
        return int(_peak_rss_mb() * 1024 * 1024)


def _uss_bytes() -> "int | None":
    """Unique set size: the private pages, what freeing this process would give back."""
    try:
        with open(_PROC_SMAPS_ROLLUP) as fh:
            fields = dict(line.split(":", 1) for line in fh if ":" in line)
        return sum(int(fields[k].split()[0]) * 1024 for k in ("Private_Clean", "Private_Dirty"))
    except (OSError, KeyError, ValueError):
        return None


def _peak_rss_mb() -> float:
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return peak / 1024 if sys.platform != "darwin" else _mb(peak)


def _cpu_seconds(start_ns: int, end_ns: int) -> float:
    return (end_ns - start_ns) / 1e9


def _loaded(metrics: dict, result: dict, t_loaded: int, cpu_loaded: int) -> None:
    """The end mark: the user's part of the process is over (the first embedding is back).
    Stamped first, before anything else the probe does."""
    result["end_mono_ns"] = time.monotonic_ns()
    global _OPENED
    opened, _OPENED = _OPENED, None  # the load is over: what the probe opens now is its own
    if opened is not None:
        result["opened"] = opened
    # The older script's "total load time": everything before the first embedding is back.
    metrics["total_s"] = _seconds(_T0_NS, t_loaded)
    metrics["total_cpu_s"] = _cpu_seconds(_T0_CPU_NS, cpu_loaded)
    wait = _runqueue_wait_s()
    if wait is not None:
        metrics["runqueue_wait_s"] = wait


def _runqueue_wait_s() -> "float | None":
    """How long this process's threads were runnable but not running, from its start to now,
    summed over its threads (``/proc/self/task/*/schedstat``'s second field, ns): the time it
    waited for a CPU. None where the kernel does not say (no /proc, no schedstat)."""
    total = 0
    try:
        for task in os.listdir(_PROC_TASKS):
            with open(f"{_PROC_TASKS}/{task}/schedstat") as fh:
                total += int(fh.read().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return total / 1e9


def _steady_encode(metrics: dict, encode, sync, spec: dict) -> None:
    """The steady-state encode (median of ``encode_repeats``): harness work, done only in
    samples that are not counted (``extras``), after the end mark."""
    import statistics

    steady = []
    for _ in range(int(spec.get("encode_repeats", 10))):
        t = time.perf_counter_ns()
        encode(spec["sentence"])
        sync()
        steady.append(_seconds(t, time.perf_counter_ns()))
    metrics["encode_s"] = statistics.median(steady) if steady else None


def _after_load(metrics: dict, encode, sync, spec: dict, rss_start: int) -> None:
    """What every load path reads after the end mark: memory, then (``extras`` only) the
    steady-state encode."""
    rss_end = _rss_bytes()
    uss = _uss_bytes()
    metrics["rss_start_mb"] = _mb(rss_start)
    metrics["rss_end_mb"] = _mb(rss_end)
    metrics["memory_mb"] = _mb(rss_end - rss_start)
    metrics["peak_rss_mb"] = _peak_rss_mb()
    metrics["uss_mb"] = _mb(uss) if uss is not None else None
    if spec.get("extras"):
        _steady_encode(metrics, encode, sync, spec)


def measure_model(spec_json: str, rss_start: int, t_torch: int, t_st: int, cpu_st: int) -> dict:
    """Everything after the imports; the imports themselves run at the module's top level
    (see the bottom of this file for why)."""
    import json

    import sentence_transformers
    import torch

    spec = json.loads(spec_json)
    metrics: dict[str, float | None] = {}
    # From the probe's first line, so the probe's own few imports are charged here rather
    # than lost; they are milliseconds against seconds.
    metrics["import_torch_s"] = _seconds(_T0_NS, t_torch)
    metrics["import_st_s"] = _seconds(t_torch, t_st)
    metrics["import_s"] = _seconds(_T0_NS, t_st)
    metrics["import_cpu_s"] = _cpu_seconds(_T0_CPU_NS, cpu_st)
    result: dict = {}

    device = spec.get("device", "cpu")
    cuda = device.startswith("cuda")

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize()

    if cuda:
        if not torch.cuda.is_available():
            print(
                f"harness.measure.probe: device {device!r} asked for, "
                f"but torch {torch.__version__} sees no CUDA device",
                file=sys.stderr,
            )
            raise SystemExit(EXIT_NO_CUDA)
        t = time.perf_counter_ns()
        torch.cuda.init()
        torch.empty(1, device=device)  # creates the context, which init() alone defers
        sync()
        metrics["cuda_init_s"] = _seconds(t, time.perf_counter_ns())

    # A backend other than torch loads the exported file the runner names (file_name);
    # a torch dtype other than float32 is torch_dtype. Neither: the call as it always was.
    load = {"backend": spec["backend"]} if spec.get("backend", "torch") != "torch" else {}
    if spec.get("model_kwargs"):
        load["model_kwargs"] = spec["model_kwargs"]
    t, cpu = time.perf_counter_ns(), time.process_time_ns()
    model = sentence_transformers.SentenceTransformer(spec["load_id"], device="cpu", **load)
    metrics["init_s"] = _seconds(t, time.perf_counter_ns())
    metrics["init_cpu_s"] = _cpu_seconds(cpu, time.process_time_ns())

    if cuda:
        t = time.perf_counter_ns()
        model.to(device)
        sync()
        metrics["to_device_s"] = _seconds(t, time.perf_counter_ns())

    sentence = spec["sentence"]
    t, cpu = time.perf_counter_ns(), time.process_time_ns()
    model.encode(sentence)
    sync()
    t_loaded, cpu_loaded = time.perf_counter_ns(), time.process_time_ns()
    metrics["first_encode_s"] = _seconds(t, t_loaded)
    metrics["first_encode_cpu_s"] = _cpu_seconds(cpu, cpu_loaded)
    _loaded(metrics, result, t_loaded, cpu_loaded)

    _after_load(metrics, model.encode, sync, spec, rss_start)
    if cuda:
        metrics["cuda_max_allocated_mb"] = _mb(torch.cuda.max_memory_allocated())
    # Every clock has stopped and memory is read: now (in a sample that is not counted) the
    # agreement sentences, whose embeddings the runner compares with the torch float32 model's.
    embeddings = None
    if spec.get("agreement") and spec.get("extras"):
        embeddings = model.encode(list(spec["agreement"]), convert_to_numpy=True).astype(float).tolist()

    return {
        **result,
        "embeddings": embeddings,
        "metrics": metrics,
        "start_wall_ns": _START_WALL_NS,
        "start_mono_ns": _START_MONO_NS,
        "versions": {
            "torch": torch.__version__,
            "sentence-transformers": sentence_transformers.__version__,
        },
        "embedding_dim": int(model.get_sentence_embedding_dimension() or 0),
    }


# What an application's code may raise that ends its entry point: any error, and SystemExit
# too (``sys.exit(0)`` in FUNCTION or its encode would otherwise end the probe with status 0
# and no result: a "crash" retried every sample, where the docs promise a load failure).
# KeyboardInterrupt is the user's, and goes through.
_ENTRY_ERRORS = (Exception, SystemExit)


def _entry_failed(entry: str, why: str) -> SystemExit:
    """What stops the probe (``raise _entry_failed(...)``, so that a type checker sees the
    stop without typing.NoReturn, which the probe does not import): the entry point is
    broken, and every later sample would be too."""
    print(f"harness.measure.probe: entry point {entry}: {why}", file=sys.stderr)
    return SystemExit(EXIT_ENTRY)


def _exception(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:300]}" if text else type(exc).__name__


def measure_entry(spec_json: str, rss_start: int, entry: str, t_app0: int, t_app: int, cpu_app: int) -> dict:
    """The application's load path, after its module was imported at the top level: call
    FUNCTION, encode with what it returns."""
    module_name, _, function_name = entry.partition(":")
    function = getattr(sys.modules[module_name], function_name, None)
    if function is None:
        raise _entry_failed(entry, f"module {module_name} has no {function_name}")
    if not callable(function):
        raise _entry_failed(
            entry, f"{module_name}.{function_name} is a {type(function).__name__}, not a function"
        )
    import json

    spec = json.loads(spec_json)
    metrics: dict[str, float | None] = {}
    metrics["import_app_s"] = _seconds(t_app0, t_app)
    metrics["import_s"] = _seconds(_T0_NS, t_app)
    metrics["import_cpu_s"] = _cpu_seconds(_T0_CPU_NS, cpu_app)
    result: dict = {}
    cuda = spec.get("device", "cpu").startswith("cuda")

    def sync() -> None:
        # The application chose its device; wait for the GPU only if it uses torch's.
        torch = sys.modules.get("torch")
        if cuda and torch is not None and torch.cuda.is_initialized():
            torch.cuda.synchronize()

    t, cpu = time.perf_counter_ns(), time.process_time_ns()
    try:
        model = function()
    except _ENTRY_ERRORS as exc:
        raise _entry_failed(entry, f"{function_name}() raised {_exception(exc)}") from None
    sync()
    metrics["init_s"] = _seconds(t, time.perf_counter_ns())
    metrics["init_cpu_s"] = _cpu_seconds(cpu, time.process_time_ns())
    encode = getattr(model, "encode", None)
    if not callable(encode):
        raise _entry_failed(
            entry,
            f"{function_name}() returned an object of type {type(model).__name__}, which has no encode()",
        )

    sentence = spec["sentence"]
    t, cpu = time.perf_counter_ns(), time.process_time_ns()
    try:
        encode(sentence)
    except _ENTRY_ERRORS as exc:
        raise _entry_failed(entry, f"encode() raised {_exception(exc)}") from None
    sync()
    t_loaded, cpu_loaded = time.perf_counter_ns(), time.process_time_ns()
    metrics["first_encode_s"] = _seconds(t, t_loaded)
    metrics["first_encode_cpu_s"] = _cpu_seconds(cpu, cpu_loaded)
    _loaded(metrics, result, t_loaded, cpu_loaded)
    try:
        _after_load(metrics, encode, sync, spec, rss_start)
    except _ENTRY_ERRORS as exc:  # a later encode (the steady-state ones, in extras)
        raise _entry_failed(entry, f"encode() raised {_exception(exc)}") from None
    # What the application loaded, as far as it loaded it.
    versions = {
        name: getattr(sys.modules[module], "__version__", None)
        for name, module in (("torch", "torch"), ("sentence-transformers", "sentence_transformers"))
        if module in sys.modules
    }
    return {
        **result,
        "metrics": metrics,
        "start_wall_ns": _START_WALL_NS,
        "start_mono_ns": _START_MONO_NS,
        "versions": versions,
    }


def _parse_args(argv: list) -> tuple:
    """RESULT_FILE, SPEC_JSON (still text: json is imported after the clock) and the entry
    point MODULE:FUNCTION, or None."""
    if len(argv) not in (2, 3):
        print(
            "usage: python -m harness.measure.probe RESULT_FILE SPEC_JSON [MODULE:FUNCTION]", file=sys.stderr
        )
        raise SystemExit(2)
    return argv[0], argv[1], argv[2] if len(argv) == 3 else None


def _module_dicts() -> list:
    """The namespace of every imported module but the probe itself (``__main__``). Read as
    dicts, not with getattr: a lazy module's __getattr__ (transformers') imports more."""
    found = [getattr(module, "__dict__", None) for module in list(sys.modules.values())]
    return [names for names in found if isinstance(names, dict) and names.get("__name__") != "__main__"]


def _bytecode_present(spawned_ns: int) -> "float | None":
    """The fraction of the imported source modules whose bytecode existed before the runner
    spawned this process: a .pyc this process wrote (or rewrote) is newer than that."""
    present = total = 0
    for names in _module_dicts():
        source, cached = names.get("__file__"), names.get("__cached__")
        if not (isinstance(source, str) and source.endswith(".py") and isinstance(cached, str)):
            continue
        total += 1
        try:
            present += os.stat(cached).st_mtime_ns < spawned_ns
        except OSError:
            continue
    return present / total if total else None


def _files_read(opened: list) -> list:
    """Every file the load used: each imported module's source and bytecode, every file
    mapped (the interpreter, the shared libraries, mapped weights) and every file opened
    during the load (``opened``, from the audit hook). Real paths, once each."""
    paths = [sys.executable] + [os.fsdecode(p) for p in opened]
    for names in _module_dicts():
        paths += [names.get("__file__"), names.get("__cached__")]
    try:
        with open(_PROC_MAPS) as fh:
            paths += [fields[5].strip() for line in fh if len(fields := line.split(maxsplit=5)) == 6]
    except OSError:  # no /proc (macOS): the modules alone
        pass
    found = {os.path.realpath(p) for p in paths if isinstance(p, str) and p}
    return sorted(
        path for path in found if os.path.isfile(path) and not path.startswith(("/proc/", "/sys/", "/dev/"))
    )


def _write(result_file: str, spec_json: str, result: dict) -> None:
    """The result, with what the runner asked to know about the load, found only now that
    every clock has stopped: the bytecode it found, and (``list_files``) the files it read."""
    import json

    spec = json.loads(spec_json)
    result["bytecode_present"] = _bytecode_present(int(spec.get("spawned_ns", _START_WALL_NS)))
    opened = result.pop("opened", None) or []
    if spec.get("list_files"):
        result["files"] = _files_read(opened)
    with open(result_file, "w") as fh:
        json.dump(result, fh)


if __name__ == "__main__":
    # The stack is imported here, at the module's top level, exactly as a script would,
    # not inside a function: during `import sentence_transformers`, torch's op
    # registration (torch/_library/utils.py get_source) runs inspect.getframeinfo on a
    # caller's frame, and each extra frame on the stack made that import 150-200 ms slower
    # than in a plain script (found with bench/harness_overhead.py).
    # An application's module is imported here too, for the same reason.
    _result_file, _spec, _entry = _parse_args(sys.argv[1:])
    _rss_start = _rss_bytes()
    if _entry:
        _module = _entry.partition(":")[0]
        _t_app0 = time.perf_counter_ns()
        try:
            __import__(_module)
        except _ENTRY_ERRORS as _exc:
            raise _entry_failed(_entry, f"import {_module} failed: {_exception(_exc)}") from None
        _t_app, _cpu_app = time.perf_counter_ns(), time.process_time_ns()
        _write(_result_file, _spec, measure_entry(_spec, _rss_start, _entry, _t_app0, _t_app, _cpu_app))
    else:
        import torch  # noqa: F401

        _t_torch = time.perf_counter_ns()
        import sentence_transformers  # noqa: F401

        _t_st, _cpu_st = time.perf_counter_ns(), time.process_time_ns()
        if "importtime" in sys._xoptions:
            os.write(2, (IMPORTS_DONE + "\n").encode())
        _write(_result_file, _spec, measure_model(_spec, _rss_start, _t_torch, _t_st, _cpu_st))
