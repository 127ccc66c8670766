"""How environments are built so that a matrix costs little more than its samples (issue 11),
checked without building one: the resolved-set key that lets nox reuse an environment, and
where bytecode is compiled up front. tests/e2e/test_cheaper.py builds and measures."""

from __future__ import annotations

from conftest import SMALL

from harness.envs.build import build_settings, cold_uv_cache
from harness.envs.record import HARNESS_DIST, resolved_sha256
from harness.matrix import load_matrix


def test_the_resolved_set_key_ignores_the_harness_checkout_and_not_the_python():
    stack = {"torch": "2.13.0", "sentence-transformers": "5.7.0"}
    key = resolved_sha256({**stack, HARNESS_DIST: "0.1 (editable /a)"}, "3.11.2")
    assert key == resolved_sha256({**stack, HARNESS_DIST: "0.1 (editable /b)"}, "3.11.2")
    assert key != resolved_sha256(stack, "3.12.0")
    assert key != resolved_sha256({**stack, "torch": "2.14.1"}, "3.11.2")


def test_bytecode_is_compiled_up_front_where_no_process_may_write_it(monkeypatch):
    matrix = load_matrix(SMALL).with_overrides(runs=None, warmups=1)
    cells = matrix.cells_for("torch-2.13.0", ["cold"])
    assert cells
    monkeypatch.delenv("PYTHONDONTWRITEBYTECODE", raising=False)
    assert build_settings(cells) == {"UV_COMPILE_BYTECODE": "0", "UV_CACHE_DIR": str(cold_uv_cache())}
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    assert build_settings(cells)["UV_COMPILE_BYTECODE"] == "1"
