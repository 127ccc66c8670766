"""The documentation can neither break nor drift from the tool.

What is covered (docs/development.md, "The documentation", says how to mark a command):

* the site builds with ``mkdocs build --strict`` into a temporary folder: a broken link or
  anchor, or a page missing from the nav, fails;
* every command in a block marked ``<!-- runnable -->`` (README.md and docs/*.md) runs
  against the real tool, page by page in order, in a scratch folder (never the checkout),
  and must exit with the status its ``# exit status N`` comment names (default 0) and
  print the output lines the page shows (every ``console`` block, the ones with a ``$``
  prompt, must be so marked);
* every ``make TARGET`` shown in a code block is a target of the Makefile (``make -n``),
  and every target of the Makefile is named in the docs;
* every verb and option of ``python -m harness`` is named in the docs;
* the README stays short, keeps its contract (make profile-matrix, make test, RUNS, MODEL,
  COLD_START, a screenshot), its ``matrix.yaml`` example is a valid matrix, and its links
  and anchors resolve.

Commands shown in blocks *not* marked runnable are illustrative (``make profile-matrix``,
nox sessions that build environments, benchmarks): only their make targets are checked.

The parser and the runner of the marked blocks are tests/runnable_docs.py. The pages whose
commands profile the real model (README.md, the troubleshooting guide) run in the e2e tier,
tests/e2e/test_docs_measured.py; every other page runs here.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO
from runnable_docs import (
    DOCS,
    MEASURING_PAGES,
    README,
    README_MAX_LINES,
    RUNNABLE_PAGES,
    STILL_PAGES,
    check_page,
    code_blocks,
    page_id,
    pages,
)


def test_runnable_blocks_exist():
    """The quick start and the troubleshooting guide are covered, whatever else is."""
    assert README in RUNNABLE_PAGES
    assert DOCS / "troubleshooting.md" in RUNNABLE_PAGES
    # Each page runs in one tier or the other, and the model loads only in the e2e tier.
    assert sorted(MEASURING_PAGES + STILL_PAGES) == sorted(RUNNABLE_PAGES)
    assert README in MEASURING_PAGES and STILL_PAGES


@pytest.mark.parametrize("page", STILL_PAGES, ids=page_id)
def test_runnable_commands(page: Path, tmp_path):
    """The pages whose commands load no model (tests/e2e/test_docs_measured.py runs the others)."""
    check_page(page, tmp_path)


# -- the site -------------------------------------------------------------------------------------


def test_site_builds_strict(tmp_path):
    site = tmp_path / "site"
    command = [
        sys.executable,
        "-m",
        "mkdocs",
        "build",
        "--strict",
        "-f",
        str(REPO / "mkdocs.yml"),
        "-d",
        str(site),
    ]
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    proc = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert (site / "troubleshooting" / "index.html").is_file()
    assert (site / "report-matrix.png").is_file()


# -- make targets ---------------------------------------------------------------------------------

MAKE_CALL = re.compile(r"(?:^|[\s;&|(])make\s+((?:[A-Z_]+=\S+\s+)*)([a-z][a-z-]*)")


def _makefile_targets() -> set[str]:
    text = (REPO / "Makefile").read_text()
    return {t for t in re.findall(r"^([a-z][a-z-]*):(?!=)", text, re.M)}


def _docs_text() -> str:
    return "\n".join(p.read_text() for p in pages())


def test_make_targets_shown_exist():
    bodies = [body for p in pages() for _, _, _, body, _ in code_blocks(p.read_text())]
    shown = {m[2] for body in bodies for m in MAKE_CALL.finditer(body)}
    assert {"profile-matrix", "test", "profile"} <= shown
    for target in sorted(shown):
        command = ["make", "-n", "-C", str(REPO), target]
        proc = subprocess.run(command, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, f"`make {target}` is shown in the docs but: {proc.stderr.strip()}"


def test_every_make_target_documented():
    text = _docs_text()
    missing = [t for t in sorted(_makefile_targets()) if not re.search(rf"`make {re.escape(t)}\b", text)]
    assert not missing, f"Makefile targets the docs never name (as `make TARGET`): {missing}"


# -- the CLI --------------------------------------------------------------------------------------


def _help(*verbs: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "harness", *verbs, "--help"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def _subcommands(help_text: str) -> list[str]:
    """The verbs argparse lists under the positional COMMAND/ACTION argument."""
    return re.findall(r"^ {4}([a-z][a-z-]*)(?:\s|$)", help_text, re.M)


def _options(help_text: str) -> set[str]:
    return set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", help_text)) - {"--help"}


def test_every_verb_and_option_documented():
    text = _docs_text()
    top = _help()
    verbs = _subcommands(top)
    assert "profile" in verbs and "compare" in verbs, top
    missing = [o for o in sorted(_options(top)) if o not in text]
    for verb in verbs:
        if not re.search(rf"harness {re.escape(verb)}\b", text):
            missing.append(f"harness {verb}")
        help_text = _help(verb)
        actions = _subcommands(help_text)
        for action in actions:
            if not re.search(rf"{re.escape(verb)} {re.escape(action)}\b", text):
                missing.append(f"harness {verb} {action}")
            missing += [
                f"harness {verb} {action} {o}"
                for o in sorted(_options(_help(verb, action)))
                if not re.search(rf"{re.escape(o)}(?![\w-])", text)
            ]
        missing += [
            f"harness {verb} {o}"
            for o in sorted(_options(help_text))
            if not re.search(rf"{re.escape(o)}(?![\w-])", text)
        ]
    assert not missing, f"named by the CLI but nowhere in README.md or docs/: {missing}"


# -- the README -----------------------------------------------------------------------------------


def test_readme_is_short_and_keeps_its_contract():
    text = README.read_text()
    assert len(text.splitlines()) <= README_MAX_LINES
    for needed in (
        "make profile-matrix",
        "make test",
        "RUNS=",
        "MODEL=",
        "COLD_START=true",
        "--cold-start",
        "](docs/report-matrix.png)",
    ):
        assert needed in text, needed


def test_readme_matrix_example_is_a_valid_matrix(tmp_path):
    yaml_blocks = [body for _, _, lang, body, _ in code_blocks(README.read_text()) if lang == "yaml"]
    assert yaml_blocks, "the README shows a matrix.yaml example"
    example = tmp_path / "matrix.yaml"
    example.write_text(yaml_blocks[0])
    assert len(yaml_blocks[0].splitlines()) <= 10
    proc = subprocess.run(
        [sys.executable, "-m", "harness", "matrix", "--matrix", str(example)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr


def _slugs(markdown_text: str) -> set[str]:
    from markdown.extensions.toc import slugify

    return {slugify(h.strip().replace("`", ""), "-") for h in re.findall(r"^#+ (.+)$", markdown_text, re.M)}


def test_readme_links_resolve():
    """mkdocs checks the pages' links; the README is not one of its pages, so it is checked here."""
    for target in re.findall(r"\]\(([^)\s]+)\)", README.read_text()):
        if re.match(r"[a-z]+://", target):
            continue
        path, _, anchor = target.partition("#")
        assert (REPO / path).exists(), f"README links to {target}, which does not exist"
        if anchor:
            assert anchor in _slugs((REPO / path).read_text()), f"README links to {target}: no such heading"
