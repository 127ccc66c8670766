"""The JSON Schemas of the result format, generated from its types (never written by hand).

    python -m harness.result.schema [FOLDER]   # writes <kind>.schema.json (default: docs/schema)

A test checks that the committed schemas are the ones the types generate.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import msgspec

from harness.result.cell import CellReport
from harness.result.document import Document
from harness.result.matrix import MatrixReport
from harness.result.run import EnvRecord, RunPlan

DOCUMENTS = (CellReport, MatrixReport, EnvRecord, RunPlan)
DEFAULT_FOLDER = Path(__file__).resolve().parents[2] / "docs" / "schema"


def schema_of(document: type[Document]) -> dict:
    schema = msgspec.json.schema(document)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": f"embedding-load-harness {document.KIND} file, schema_version {document.SCHEMA_VERSION}",
        **schema,
    }


def rendered() -> dict[str, str]:
    """File name -> text of every schema."""
    return {
        f"{doc.KIND}.schema.json": json.dumps(schema_of(doc), indent=2, sort_keys=True) + "\n"
        for doc in DOCUMENTS
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m harness.result.schema", description=__doc__.splitlines()[0]
    )
    parser.add_argument("folder", nargs="?", type=Path, default=DEFAULT_FOLDER, help="default: docs/schema")
    folder = parser.parse_args(argv).folder
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in rendered().items():
        (folder / name).write_text(text)
        print(folder / name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
