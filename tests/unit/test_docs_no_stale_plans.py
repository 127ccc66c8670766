"""No page says that a feature the tool accepts is "planned", "not built" or "not yet" there.

The features are taken from the tool itself, not from a list kept here: every verb and
option of ``python -m harness`` (its argparse parsers), every key matrix.yaml accepts (the
matrix loader's key lists) and every backend, dtype and mode it takes (the catalogue). A
claim is flagged when its paragraph names one of them.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from harness.cli import build_parser
from harness.matrix import expand, sections
from harness.result import BACKENDS, DTYPES, MODES

REPO = Path(__file__).resolve().parents[2]
CLAIM = re.compile(
    r"\b(?:(?:is|are|was|were|still|as) planned|planned\)|not built|not (?:yet )?implemented|not yet)\b",
    re.I,
)


def cli_features() -> set[str]:
    """'harness VERB', '`VERB`' and every --option of every verb (sub-verbs included)."""
    names: set[str] = set()

    def walk(parser: argparse.ArgumentParser, prefix: str) -> None:
        for action in parser._actions:
            names.update(o for o in action.option_strings if o.startswith("--") and o != "--help")
            if isinstance(action, argparse._SubParsersAction):
                for verb, sub in action.choices.items():
                    names.update({f"{prefix} {verb}", f"`{verb}`"})
                    walk(sub, f"{prefix} {verb}")

    walk(build_parser(), "harness")
    return names


def matrix_features() -> set[str]:
    """matrix.yaml's keys (as `key` or key:), and the backends, dtypes and modes it takes."""
    keys = {*expand.TOP_KEYS, *sections.MODEL_KEYS, *sections.TORCH_KEYS}
    words = {*BACKENDS, *DTYPES, *MODES}
    # A quantized dtype is also written without its q (qint8: "int8").
    words |= {d[1:] for d in DTYPES if d.startswith("q")}
    return {f"`{k}`" for k in keys} | {f"{k}:" for k in keys} | words


FEATURES = cli_features() | matrix_features()


def named(paragraph: str) -> list[str]:
    found = []
    for name in FEATURES:
        if name[0].isalnum():
            if re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", paragraph, re.I):
                found.append(name)
        elif name in paragraph:
            found.append(name)
    return sorted(found)


def stale_claims(text: str) -> list[tuple[str, list[str]]]:
    """(the claim, the features its paragraph names) for every flagged paragraph."""
    out = []
    for paragraph in re.split(r"\n\s*\n", text):
        claim = CLAIM.search(paragraph)
        if claim and (names := named(paragraph)):
            out.append((" ".join(paragraph.split())[:200], names))
    return out


def test_features_are_derived_from_the_tool():
    assert {"harness compare", "--within", "--wide", "`backends`", "onnx", "openvino", "float16"} <= FEATURES


def test_a_stale_claim_is_caught():
    text = "## ONNX\n\nNot built yet: the onnx backend is planned.\n\nThe run stopped (planned, but not run)."
    assert [names for _claim, names in stale_claims(text)] == [["onnx"]]


def test_no_page_calls_an_accepted_feature_planned_or_not_built():
    pages = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    stale = {str(p.relative_to(REPO)): stale_claims(p.read_text()) for p in pages}
    assert not {page: claims for page, claims in stale.items() if claims}
