"""Run one cell: spawn the probe once per sample, in a fresh process each time, and build
its report.

The runner is the measurement core; it prints nothing (the console and the other
exporters read what it returns, or the file it writes). The report is written after
every sample, atomically, so an interrupted or crashed run leaves a readable partial
report that holds every sample that finished.

Import discipline: this module must not import torch, numpy or scipy before the samples
are done. A shared library mapped by the runner stays in the page cache, so a cold sample
would find it warm (statistics are computed after the last sample, in ``finish``).
"""

from __future__ import annotations

from harness.errors import UserError

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from harness.measure import coldcache
from harness.measure import importtime
from harness.analysis import judge
from harness.measure import metadata
from harness.measure.models import ResolvedModel
from harness.result import (
    COLD_RESIDENCY_THRESHOLD,
    cell_id,
    DEFAULT_TARGETS,
    SCHEMA_VERSION,
    write_json_atomic,
)

DEFAULT_SENTENCE = "The quick brown fox jumps over the lazy dog."
STDERR_TAIL_CHARS = 2000


class CellError(UserError):
    """The cell cannot start (no CUDA, unwritable output); the message is one line."""


@dataclass
class CellConfig:
    model: ResolvedModel
    name: str
    mode: str = "warm"          # "warm" | "cold"
    device: str = "cpu"
    runs: int = 5
    warmups: int = 1
    timeout_s: float = 300.0
    encode_repeats: int = 10
    sentence: str = DEFAULT_SENTENCE
    targets: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_TARGETS))
    torch_label: str | None = None   # the matrix's torch version; default: what is installed
    cell_id: str | None = None
    import_attribution: bool = True
    python: str = sys.executable


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _child_env(config: CellConfig) -> dict[str, str]:
    env = dict(os.environ)
    if config.model.offline_ok:
        # The files are on disk: never let a hub round-trip into a load-time figure.
        env["HF_HUB_OFFLINE"] = "1"
    return env


def check_cuda(config: CellConfig) -> None:
    """Fail before the first sample when CUDA is asked for and absent. Run in a child so
    that this process never maps torch (see the module docstring)."""
    if not config.device.startswith("cuda"):
        return
    proc = subprocess.run(
        [config.python, "-c", "import torch; print(torch.cuda.is_available(), torch.__version__)"],
        capture_output=True, text=True, timeout=config.timeout_s, env=_child_env(config), check=False,
    )
    words = proc.stdout.split()
    if proc.returncode != 0 or not words:
        raise CellError(f"device {config.device!r}: torch does not import in {config.python}")
    if words[0] != "True":
        raise CellError(f"device {config.device!r}: no CUDA device is visible to torch {words[1]}; use --device cpu")


class CellRun:
    """One cell's samples and report, written to ``output`` as they come."""

    def __init__(self, config: CellConfig, output: Path | None = None):
        self.config = config
        # The public version ("2.13.0", not "2.13.0+cpu"), as matrix.yaml names it.
        installed = (metadata.package_versions(["torch"])["torch"] or "none").split("+")[0]
        torch_label = config.torch_label or installed
        self.report: dict = {
            "schema_version": SCHEMA_VERSION,
            "kind": "cell",
            "status": "partial",
            "failure": None,
            "harness": metadata.harness_info(),
            "started": now_iso(),
            "finished": None,
            "cell": {
                "id": config.cell_id or cell_id(config.name, torch_label, config.mode, config.device),
                "model": config.name,
                "source": config.model.spec,
                "mode": config.mode,
                "device": config.device,
                "torch": torch_label,
            },
            "settings": {
                "runs": config.runs,
                "warmups": config.warmups,
                "timeout_s": config.timeout_s,
                "encode_repeats": config.encode_repeats,
                "sentence": config.sentence,
            },
            "environment": metadata.environment(),
            "machine": metadata.machine(),
            "model_info": {
                "kind": config.model.kind,
                "load_id": config.model.load_id,
                "path": str(config.model.local_dir) if config.model.local_dir else None,
                "weights_bytes": config.model.weights_bytes,
            },
            "cold_cache": None,
            "samples": [],
            "targets": dict(config.targets),
        }
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        self.output = Path(output) if output else Path("reports") / f"profile-{self.report['cell']['id']}-{stamp}.json"
        self._prepared = False
        self._evict_list: list[str] = []
        self._check_files: list[Path] = []
        if config.mode == "cold":
            self._prepare_cold()

    # -- cold cache ---------------------------------------------------------------------
    def _prepare_cold(self) -> None:
        block = {"method": coldcache.METHOD, "threshold": COLD_RESIDENCY_THRESHOLD,
                 "verified": False, "note": None, "evicted_files": 0, "checked_files": []}
        if not coldcache.CAN_EVICT:
            block["note"] = (f"this platform ({sys.platform}) cannot drop files from the page cache "
                             f"without root, so these 'cold' samples may have run warm")
        else:
            self._evict_list = coldcache.files_to_evict(self.config.model.files())
            self._check_files = coldcache.check_files(self.config.model.weights_file)
            block["evicted_files"] = len(self._evict_list)
            block["checked_files"] = [str(p) for p in self._check_files]
            if not self._check_files:
                block["note"] = "found neither the model's weights nor torch's libraries to check residency on"
        self.report["cold_cache"] = block

    def _make_cold(self) -> dict:
        coldcache.evict(self._evict_list)
        files = coldcache.measure_residency(self._check_files)
        known = [v for v in files.values() if v is not None]
        residency = max(known) if known else None
        return {
            "cache_residency": residency,
            "residency_files": files,
            "cache_flagged": residency is None or residency > COLD_RESIDENCY_THRESHOLD,
        }

    # -- samples ------------------------------------------------------------------------
    def run_sample(self, index: int, warmup: bool) -> dict:
        config = self.config
        sample: dict = {"index": index, "warmup": warmup, "ok": False, "exit_code": None,
                        "error": None, "stderr_tail": None, "metrics": {}}
        if config.mode == "cold" and self._evict_list:
            sample.update(self._make_cold())
        spec = {"load_id": config.model.load_id, "device": config.device,
                "sentence": config.sentence, "encode_repeats": config.encode_repeats}
        with tempfile.TemporaryDirectory(prefix="harness-sample-") as tmp:
            result_file = Path(tmp) / "result.json"
            # -P: do not put the working directory on sys.path, where a stray torch/ folder
            # would shadow the real one.
            flags = ["-P"] if sys.version_info >= (3, 11) else []
            cmd = [config.python, *flags, "-m", "harness.measure.probe", str(result_file), json.dumps(spec)]
            spawn_wall_ns = time.time_ns()
            t0 = time.perf_counter_ns()
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE, env=_child_env(config),
                                    cwd=tmp, start_new_session=True)
            try:
                _, stderr = proc.communicate(timeout=config.timeout_s)
                wall_s = (time.perf_counter_ns() - t0) / 1e9
            except subprocess.TimeoutExpired:
                _kill_group(proc)
                _, stderr = proc.communicate()
                sample["error"] = f"timed out after {config.timeout_s:g} s (--timeout)"
                sample["stderr_tail"] = _tail(stderr)
                return sample
            except BaseException:  # Ctrl-C: take the child down with us
                _kill_group(proc)
                proc.wait()
                raise
            sample["exit_code"] = proc.returncode
            sample["metrics"]["process_wall_s"] = wall_s
            if proc.returncode != 0 or not result_file.is_file():
                sample["stderr_tail"] = _tail(stderr)
                sample["error"] = _describe_exit(proc.returncode, stderr)
                return sample
            result = json.loads(result_file.read_text())
        sample["ok"] = True
        sample["metrics"].update(result["metrics"])
        sample["metrics"]["startup_s"] = max(0.0, (result["start_wall_ns"] - spawn_wall_ns) / 1e9)
        return sample

    def prepare(self) -> None:
        """Everything that can fail on bad input, before the first sample: a missing CUDA
        device, an unwritable report. Idempotent; run() calls it."""
        if not self._prepared:
            check_cuda(self.config)
            self.write()
            self._prepared = True

    def run(self, on_sample: Callable[[dict, int, int], None] | None = None) -> dict:
        """All samples, then the statistics. Writes the report after each sample."""
        self.prepare()
        plan = [(i, True) for i in range(self.config.warmups)] + \
               [(self.config.warmups + i, False) for i in range(self.config.runs)]
        try:
            for position, (index, warmup) in enumerate(plan, start=1):
                sample = self.run_sample(index, warmup)
                self.report["samples"].append(sample)
                self.write()
                if on_sample:
                    on_sample(sample, position, len(plan))
        except KeyboardInterrupt:
            self.report["failure"] = {"reason": "interrupted",
                                      "detail": f"stopped after {len(self.report['samples'])} of {len(plan)} samples"}
            self.write()
            raise
        return self.finish()

    def finish(self) -> dict:
        from harness.analysis.stats import report_stats  # numpy/scipy only now: see module docstring

        report = self.report
        counted = [s for s in report["samples"] if not s["warmup"]]
        if self.config.import_attribution and any(s["ok"] for s in counted):
            try:
                report["import_attribution"] = importtime.attribute(
                    self.config.python, env=_child_env(self.config), timeout=self.config.timeout_s)
            except subprocess.TimeoutExpired:
                report["import_attribution"] = None
        report["stats"] = report_stats(report)
        report["target_results"] = judge.target_results(report["stats"], report["targets"])
        if report["cold_cache"] is not None and self._evict_list:
            flagged = [s for s in counted if s.get("cache_flagged")]
            report["cold_cache"]["verified"] = bool(counted) and not flagged
            if flagged:
                warm_files = sorted({path for s in flagged for path, frac in s.get("residency_files", {}).items()
                                     if frac is None or frac > COLD_RESIDENCY_THRESHOLD})
                holders = {Path(p).name: coldcache.mapped_by(p) for p in warm_files}
                why = "; ".join(f"{name} is mapped by {', '.join(h[:3])}" for name, h in holders.items() if h)
                report["cold_cache"]["note"] = (
                    f"{len(flagged)} of {len(counted)} samples started with more than "
                    f"{COLD_RESIDENCY_THRESHOLD:.0%} of {', '.join(Path(p).name for p in warm_files)} in the page cache"
                    + (f" ({why}: pages another process maps cannot be evicted)" if why else ""))
        report["recommendations"] = judge.recommendations(report)
        ok = [s for s in counted if s["ok"]]
        if not ok:
            report["status"] = "failed"
            first_error = next((s["error"] for s in counted if s["error"]), "no sample ran")
            report["failure"] = {"reason": "every sample failed", "detail": first_error}
        else:
            report["status"] = "complete"
        report["finished"] = now_iso()
        self.write()
        return report

    def write(self) -> None:
        try:
            write_json_atomic(self.output, self.report)
        except OSError as exc:
            raise CellError(f"{self.output}: cannot write the report ({exc.strerror or exc})") from None

    @property
    def failed_samples(self) -> int:
        return sum(1 for s in self.report["samples"] if not s["ok"])


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _tail(stderr: bytes | None) -> str | None:
    if not stderr:
        return None
    return stderr.decode("utf-8", "replace")[-STDERR_TAIL_CHARS:]


def _describe_exit(code: int | None, stderr: bytes | None) -> str:
    if code is not None and code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"killed by {name}"
    lines = [ln for ln in (stderr or b"").decode("utf-8", "replace").splitlines() if ln.strip()]
    last = lines[-1].strip() if lines else "no error output"
    return f"exit status {code}: {last[:300]}"
