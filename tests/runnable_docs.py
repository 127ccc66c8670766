"""The runnable commands of the docs (README.md and docs/*.md): the parser of their marked
blocks and the runner that checks a page's commands against the real tool. Read by
tests/unit/test_docs.py (the pages that measure nothing, and the docs' other checks) and
tests/e2e/test_docs_measured.py (the pages whose commands profile the real model).
docs/development.md, "The documentation", says how a command is marked.
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

from conftest import REPO, WARM_8RUNS

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


# A page measures when a runnable command of it runs `harness profile` (other than its
# --help): the real model loads, so that page is checked in the e2e tier.
MEASURES = re.compile(r"\bharness profile\b(?!.*--help)")


def measures(page: Path) -> bool:
    return any(MEASURES.search(c.text) for s in steps_of(page) for c in s.commands)


MEASURING_PAGES = [p for p in RUNNABLE_PAGES if measures(p)]
STILL_PAGES = [p for p in RUNNABLE_PAGES if not measures(p)]


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
    shutil.copy(WARM_8RUNS, work / "tests" / "data")
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


def check_page(page: Path, tmp_path: Path) -> None:
    """Run a page's commands in order in a scratch folder; each must exit as the page says
    and print the lines the page shows."""
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
