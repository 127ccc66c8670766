"""The noxfile's PEP 723 block (what nox's script mode installs before loading it) asks for
nothing pyproject.toml does not: every package it names is one of the project's
dependencies or its ``matrix`` extra, and admits no version pyproject's specifier refuses.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

if sys.version_info >= (3, 11):
    import tomllib
else:  # the test extra installs tomli there
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[2]
# PEP 723's reference expression for a metadata block.
BLOCK = re.compile(r"(?m)^# /// (?P<type>[a-zA-Z0-9-]+)$\s(?P<content>(^#(| .*)$\s)+)^# ///$")


def script_metadata(source: str) -> dict:
    blocks = [m for m in BLOCK.finditer(source) if m.group("type") == "script"]
    assert len(blocks) == 1, "expected exactly one '# /// script' block"
    content = "".join(
        line[2:] if line.startswith("# ") else line[1:] for line in blocks[0]["content"].splitlines(True)
    )
    return tomllib.loads(content)


def _probe_versions(*requirements: Requirement) -> set[Version]:
    """The final releases where two specifiers can disagree: each bound they name, its post
    release, the releases just below and above it, and the extremes."""
    found = {Version("0"), Version("999999")}
    for requirement in requirements:
        for spec in requirement.specifier:
            v = Version(spec.version.rstrip(".*"))
            release = list(v.release)
            found |= {v, Version(f"{v}.post1")}
            found.add(Version(".".join(map(str, release[:-1] + [release[-1] + 1]))))
            if release[-1] > 0:
                found.add(Version(".".join(map(str, release[:-1] + [release[-1] - 1]))))
    return found


def mismatches(script: dict, project: dict) -> list[str]:
    """What the script block asks for that pyproject does not allow, one line each."""
    declared = [*project["dependencies"], *project["optional-dependencies"]["matrix"]]
    allowed = {canonicalize_name(r.name): r for r in map(Requirement, declared)}
    problems = []
    if script.get("requires-python") != project["requires-python"]:
        problems.append(
            f"requires-python {script.get('requires-python')!r} is not {project['requires-python']!r}"
        )
    for text in script.get("dependencies", []):
        wanted = Requirement(text)
        known = allowed.get(canonicalize_name(wanted.name))
        if known is None:
            problems.append(f"{text}: not in pyproject's dependencies or its matrix extra")
            continue
        looser = sorted(
            v
            for v in _probe_versions(wanted, known)
            if wanted.specifier.contains(v, prereleases=True)
            and not known.specifier.contains(v, prereleases=True)
        )
        if looser:
            problems.append(f"{text}: admits {looser[0]}, which pyproject's {known} refuses")
    return problems


def test_the_noxfile_asks_for_what_pyproject_declares():
    script = script_metadata((REPO / "noxfile.py").read_text())
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert script["dependencies"], "the noxfile's block names no dependency"
    assert mismatches(script, project) == []


def test_a_block_that_asks_for_more_is_named():
    """The check above can fail: a package pyproject lacks, a looser bound, a missing one."""
    project = {
        "requires-python": ">=3.10",
        "dependencies": ["pyyaml>=6", "msgspec>=0.18,<1"],
        "optional-dependencies": {"matrix": ["nox>=2024.10"]},
    }
    source = (
        "# /// script\n"
        '# requires-python = ">=3.9"\n'
        '# dependencies = ["pyyaml>=5", "msgspec>=0.18", "nox", "requests", "PyYAML>=6.0"]\n'
        "# ///\n"
    )
    assert mismatches(script_metadata(source), project) == [
        "requires-python '>=3.9' is not '>=3.10'",
        "pyyaml>=5: admits 5, which pyproject's pyyaml>=6 refuses",
        "msgspec>=0.18: admits 1, which pyproject's msgspec<1,>=0.18 refuses",
        "nox: admits 0, which pyproject's nox>=2024.10 refuses",
        "requests: not in pyproject's dependencies or its matrix extra",
    ]
