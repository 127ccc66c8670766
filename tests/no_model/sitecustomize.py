"""First on PYTHONPATH in every unit-tier test (tests/conftest.py): a child process that
imports the model stack fails at once, saying why. The unit tier loads no model; a test
that does belongs in tests/e2e. Finding the stack is allowed (a report records where it is
and whether it has bytecode); executing it is not."""

import sys
from importlib.abc import Loader

MODEL_STACK = ("sentence_transformers", "transformers")


class _Refused(Loader):
    def __init__(self, name):
        self.name = name

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        raise ImportError(f"import {self.name}: the unit tier loads no model; this test belongs in tests/e2e")


class _NoModelStack:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] not in MODEL_STACK:
            return None
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None) if finder is not self else None
            spec = find(name, path, target) if find else None
            if spec is not None:
                spec.loader = _Refused(name)
                return spec
        return None


sys.meta_path.insert(0, _NoModelStack())
