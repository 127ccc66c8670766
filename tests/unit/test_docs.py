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
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"
README = REPO / "README.md"
README_MAX_LINES = 150


def pages() -> list[Path]:
    return [README, *sorted(DOCS.glob("*.md"))]


def page_id(path: Path) -> str:
    return str(path.relative_to(REPO))


# -- parsing the marked blocks ----------------------------------------------------------------

FENCE = re.compile(
    r"^(?P<marker><!--\s*(?P<what>runnable|file:\s*(?P<name>[\w.-]+))\s*-->\n)?"
    r"```(?P<lang>[\w-]*)\n(?P<body>.*?)^```$",
    re.M | re.S,
)
EXIT = re.compile(r"\s+#\s*exit status (\d+)\s*$")


@dataclass
class Command:
    line: int  # line of the page, for the failure message
    text: str
    status: int
    expected: list[str] = field(default_factory=list)


@dataclass
class Step:
    """A file to write, or a runnable block's commands, in page order."""

    file: tuple[str, str] | None = None
    commands: list[Command] = field(default_factory=list)


OUTER_FENCE = re.compile(r"^(````+).*?^\1$", re.M | re.S)


def code_blocks(text: str):
    """(marker, name, lang, body, first line of body) of every fenced block. A block shown
    inside a four-backtick fence is an example of the markup, not a block: it is left out."""
    text = OUTER_FENCE.sub(lambda m: "\n" * m[0].count("\n"), text)
    for m in FENCE.finditer(text):
        yield m["what"], m["name"], m["lang"], m["body"], text.count("\n", 0, m.start("body")) + 1


def steps_of(path: Path) -> list[Step]:
    steps = []
    for what, name, lang, body, first in code_blocks(path.read_text()):
        if what and what.startswith("file:"):
            steps.append(Step(file=(name, body)))
        elif lang == "console" or what == "runnable":
            # A `$ ` prompt promises output the reader will see: console blocks are always run.
            assert what == "runnable", f"{page_id(path)}:{first}: a console block must be marked runnable"
            assert lang == "console", f"{page_id(path)}:{first}: a runnable block must be ```console"
            commands: list[Command] = []
            for offset, line in enumerate(body.splitlines()):
                if line.startswith("$ "):
                    exit_match = EXIT.search(line)
                    status = int(exit_match[1]) if exit_match else 0
                    commands.append(Command(first + offset, line[2:], status))
                elif line.strip() and line.strip() != "…":
                    assert commands, f"{page_id(path)}:{first + offset}: output before the first `$ ` command"
                    commands[-1].expected.append(line)
            steps.append(Step(commands=commands))
    return steps


RUNNABLE_PAGES = [p for p in pages() if any(s.commands for s in steps_of(p))]


def test_runnable_blocks_exist():
    """The quick start and the troubleshooting guide are covered, whatever else is."""
    assert README in RUNNABLE_PAGES
    assert DOCS / "troubleshooting.md" in RUNNABLE_PAGES


# -- running them -------------------------------------------------------------------------------


def _squash(text: str) -> str:
    return " ".join(text.split())


def _find_in_order(output: str, expected: list[str]) -> str | None:
    """None when every expected line occurs in the output, in order ('…' stands for any text;
    whitespace, line wrapping included, is not compared); else the first line missing."""
    haystack, pos = _squash(output), 0
    for line in expected:
        for piece in filter(None, (_squash(p) for p in line.split("…"))):
            found = haystack.find(piece, pos)
            if found < 0:
                return line
            pos = found + len(piece)
    return None


def _scratch(tmp_path: Path) -> Path:
    """A folder laid out as a user's checkout, for the commands: the project's virtual
    environment, matrix.yaml, the noxfile and the example report under tests/data, and
    nothing the commands could write into."""
    work = tmp_path / "work"
    work.mkdir()
    (work / ".venv").symlink_to(Path(sys.prefix))
    shutil.copy(REPO / "matrix.yaml", work / "matrix.yaml")
    (work / "tests" / "data").mkdir(parents=True)
    shutil.copy(REPO / "tests" / "data" / "warm-8runs.json", work / "tests" / "data")
    (work / "noxfile.py").symlink_to(REPO / "noxfile.py")
    return work


def _env(tmp_path: Path) -> dict[str, str]:
    # Nothing of the caller's that would change what the commands do or where they write.
    dropped = {
        "GITHUB_STEP_SUMMARY",
        "HARNESS_RUN_ID",
        "HARNESS_REPORTS_DIR",
        "MATRIX",
        "HF_HUB_OFFLINE",
        "HF_HUB_CACHE",
        "HUGGINGFACE_HUB_CACHE",
        "TRANSFORMERS_CACHE",
        "SENTENCE_TRANSFORMERS_HOME",
    }
    env = {k: v for k, v in os.environ.items() if k not in dropped}
    env.update(
        PATH=f"{Path(sys.prefix) / 'bin'}{os.pathsep}{env.get('PATH', '')}",
        HF_HOME=str(tmp_path / "hf-home"),  # an empty Hugging Face cache: a hub id is never found
        COLUMNS="300",  # rich wraps at the terminal width; the comparison ignores wrapping anyway
        NO_MKDOCS_2_WARNING="1",
    )
    return env


@pytest.mark.parametrize("page", RUNNABLE_PAGES, ids=page_id)
def test_runnable_commands(page: Path, tmp_path):
    work, env = _scratch(tmp_path), _env(tmp_path)
    commands = [c for s in steps_of(page) for c in s.commands]
    script = ["exec 2>&1"]
    for step in steps_of(page):
        if step.file:
            name, body = step.file
            script.append(f"cat > {shlex.quote(name)} <<'DOCS_FILE_EOF'\n{body}DOCS_FILE_EOF")
        for c in step.commands:
            i = commands.index(c)
            script.append(f"echo '@@docs-start-{i}@@'\n{c.text}\necho \"@@docs-status-{i}=$?@@\"")
    proc = subprocess.run(
        ["bash", "-c", "\n".join(script)], cwd=work, env=env, capture_output=True, text=True, timeout=600
    )
    out = proc.stdout
    for i, c in enumerate(commands):
        where = f"{page_id(page)}:{c.line}: `{c.text}`"
        m = re.search(rf"@@docs-start-{i}@@\n(.*?)@@docs-status-{i}=(\d+)@@", out, re.S)
        assert m, f"{where} did not run to its end; the script printed:\n{out[-3000:]}"
        output, status = m[1], int(m[2])
        assert status == c.status, f"{where} exited {status}, the page says {c.status}:\n{output[-3000:]}"
        missing = _find_in_order(output, c.expected)
        assert missing is None, f"{where}: the page shows {missing!r}, the command printed:\n{output[-3000:]}"


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
