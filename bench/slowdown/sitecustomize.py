"""A known slowdown, injected into a real environment without touching it.

Put this folder on PYTHONPATH and set HARNESS_INJECT_DELAY_S: every Python process started
with that environment (the harness passes its environment to each probe child) then
sleeps that many seconds the first time it imports ``sentence_transformers``, inside the
probe's timed import, so ``import_st_s``, ``total_s`` and ``process_wall_s`` grow by a known
amount and nothing else changes. Without the variable (or with 0) it does nothing.

HARNESS_INJECT_DELAY_PREFIX, when set, limits the delay to a Python whose ``sys.prefix``
starts with it: one environment of an interleaved run, whose measuring process passes the
same variables to every environment's probes, is slowed and the others are not.
HARNESS_INJECT_DELAY_MODEL, when set, limits it to a process whose command line contains
it: a probe names its model's load id (a ``path:`` model's folder) there, so one model of
a run's environment is slowed and the others are not.

    PYTHONPATH=bench/slowdown HARNESS_INJECT_DELAY_S=0.4 .venv/bin/python -m harness profile

Python imports ``sitecustomize`` from sys.path at start-up (the ``site`` module), after
PYTHONPATH is on sys.path and before ``-m`` runs; ``-P`` does not change that.
"""

import os
import sys
import time

_TARGET = "sentence_transformers"


class _SlowImport:
    """A meta-path finder that finds nothing: it only waits, once, then steps aside."""

    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s

    def find_spec(self, name, path=None, target=None):
        if name == _TARGET:
            sys.meta_path.remove(self)
            time.sleep(self.delay_s)
        return None


def _install() -> None:
    try:
        delay = float(os.environ.get("HARNESS_INJECT_DELAY_S", "0") or 0)
    except ValueError:
        return
    prefix = os.environ.get("HARNESS_INJECT_DELAY_PREFIX")
    model = os.environ.get("HARNESS_INJECT_DELAY_MODEL")
    if delay <= 0 or (prefix and not sys.prefix.startswith(prefix)):
        return
    if model and not any(model in arg for arg in sys.argv):  # set before site imports us
        return
    sys.meta_path.insert(0, _SlowImport(delay))


_install()
