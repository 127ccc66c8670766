"""The layering rules of the package docstrings, enforced: import-linter's contracts in
pyproject.toml (``[tool.importlinter]``), run as ``lint-imports`` over harness/.

The second test proves each contract can fail: in a scratch copy of the tree it adds one
backwards import and checks that ``lint-imports`` names exactly that import.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # the test extra installs tomli there
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
CONTRACTS = {
    c["id"]: c
    for c in tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
}


def lint_imports(cwd: Path, *contracts: str) -> subprocess.CompletedProcess:
    # --no-cache: no cache folder written into the checkout.
    args = [str(LINT_IMPORTS), "--no-cache", "--no-logo", *(f"--contract={c}" for c in contracts)]
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=300)


def test_the_layering_contracts_hold():
    assert set(CONTRACTS) >= {"result-is-a-leaf", "measure-below-analysis", "commands-only-from-cli"}
    proc = lint_imports(REPO)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count(" KEPT") == len(CONTRACTS), proc.stdout


# (contract, module to add the import to, the backwards import, how lint-imports names it)
BACKWARDS = [
    (
        "result-is-a-leaf",
        "harness/result/names.py",
        "import harness.matrix.model",
        "harness.result.names -> harness.matrix.model",
    ),
    (
        "measure-below-analysis",
        "harness/measure/runner.py",
        "import harness.analysis.stats",
        "harness.measure.runner -> harness.analysis.stats",
    ),
    (
        "measure-below-analysis",
        "harness/measure/manager.py",
        "import harness.report.format",
        "harness.measure.manager -> harness.report.format",
    ),
    (
        "matrix-reads-the-file-only",
        "harness/matrix/model.py",
        "import harness.measure.manager",
        "harness.matrix.model -> harness.measure.manager",
    ),
    (
        "analysis-below-report",
        "harness/analysis/stats.py",
        "import harness.report.format",
        "harness.analysis.stats -> harness.report.format",
    ),
    (
        "commands-only-from-cli",
        "harness/report/console.py",
        "import harness.commands.summary",
        "harness.report.console -> harness.commands.summary",
    ),
]


@pytest.mark.parametrize(
    ("contract", "module", "line", "named"), BACKWARDS, ids=[b[0] + ":" + b[1] for b in BACKWARDS]
)
def test_a_backwards_import_breaks_its_contract(tmp_path, contract, module, line, named):
    assert contract in CONTRACTS
    shutil.copytree(REPO / "harness", tmp_path / "harness", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    # Unchanged, the copy does not have the import: what is named below is the added line's.
    assert named not in lint_imports(tmp_path, contract).stdout
    target = tmp_path / module
    target.write_text(target.read_text() + f"\n{line}  # a deliberate backwards import\n")
    proc = lint_imports(tmp_path, contract)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert f"{CONTRACTS[contract]['name']} BROKEN" in " ".join(proc.stdout.split()), proc.stdout
    assert named in proc.stdout, proc.stdout
