"""What a sample's process cost in CPU, and whether it had to wait for one.

Wall time on a shared machine mixes the load's own work with waiting for a CPU. This
module turns what the kernel says about a sample into figures and one flag:

- the whole process's resource usage, from ``os.wait4`` (user and system CPU time,
  voluntary and involuntary context switches, major page faults);
- the machine's 1-minute load average and the CPU steal (``/proc/stat``) at the start and
  end of the sample;
- the contention rule (:func:`contended`), documented in docs/measuring.md.

The probe itself reads its run-queue wait (``/proc/self/task/*/schedstat``, the time its
threads were runnable but not running) at the end mark; that is what the rule reads first.

Standard library only: the runner imports this (see harness/measure/runner.py).
"""

from __future__ import annotations

import os

_PROC_STAT = "/proc/stat"
# A sample is contended when its threads waited on a run queue for more than this share of
# its wall time (spawn to end mark), summed over threads: alone on an idle machine a load
# waits a few per cent at most (kernel threads, a page-cache flush); beside as many busy
# processes as cores it waits about as long as it runs.
CONTENDED_WAIT_SHARE = 0.25
# ... or when the hypervisor stole more than this share of the machine's CPU time during
# the sample (a virtual machine whose host is busy).
CONTENDED_STEAL_SHARE = 0.10


def steal_seconds() -> float | None:
    """The machine's CPU steal so far, summed over CPUs (``/proc/stat``'s 8th field of the
    ``cpu`` line, in clock ticks); None where there is no /proc/stat."""
    try:
        with open(_PROC_STAT) as fh:
            fields = fh.readline().split()
        return int(fields[8]) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def load_average() -> float | None:
    """The 1-minute load average, or None where the platform has none."""
    try:
        return os.getloadavg()[0]
    except OSError:
        return None


def rusage_metrics(usage: object) -> dict[str, float]:
    """The whole process's figures from ``os.wait4``'s rusage (every thread, exit included)."""
    user, system = float(usage.ru_utime), float(usage.ru_stime)  # type: ignore[attr-defined]
    return {
        "process_user_s": user,
        "process_system_s": system,
        "process_cpu_s": user + system,
        "voluntary_switches": float(usage.ru_nvcsw),  # type: ignore[attr-defined]
        "involuntary_switches": float(usage.ru_nivcsw),  # type: ignore[attr-defined]
        "major_faults": float(usage.ru_majflt),  # type: ignore[attr-defined]
    }


def contended(
    metrics: dict[str, float], steal_s: float | None, cores: int | None = None
) -> tuple[bool | None, str | None]:
    """(whether the sample was taken under contention, why), by the rule above; (None, None)
    when neither the run-queue wait nor the steal could be read."""
    wall = metrics.get("process_wall_s")
    if not wall:
        return None, None
    wait = metrics.get("runqueue_wait_s")
    if wait is not None and wait > CONTENDED_WAIT_SHARE * wall:
        return True, f"waited {wait:.2f} s for a CPU in {wall:.2f} s"
    cpus = cores or os.cpu_count() or 1
    if steal_s is not None and steal_s > CONTENDED_STEAL_SHARE * wall * cpus:
        return True, f"{steal_s:.2f} CPU-s stolen by the hypervisor in {wall:.2f} s"
    if wait is None and steal_s is None:
        return None, None
    return False, None
