"""First on PYTHONPATH in every unit-tier test (tests/conftest.py): a child process that
imports the model stack fails at once, saying why. The unit tier loads no model; a test
that does belongs in tests/e2e."""

import sys

MODEL_STACK = ("sentence_transformers", "transformers")


class _NoModelStack:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in MODEL_STACK:
            raise ImportError(f"import {name}: the unit tier loads no model; this test belongs in tests/e2e")
        return None


sys.meta_path.insert(0, _NoModelStack())
