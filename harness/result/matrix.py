"""A matrix report: a whole run merged into one file, ``reports/matrix-<run id>.json``.

It holds every cell report whole (so nothing a cell measured is lost), the environments
the run built, and the planned cells that never wrote a report.

Version history: 1 (harness 0.1), cells and environments as version 1 wrote them; 2, the
cells are version 2 cell reports and environments are :class:`EnvRecord`.
"""

from __future__ import annotations

from typing import Any, ClassVar

from harness.result.cell import CellInfo, CellReport, HarnessInfo
from harness.result.document import Document
from harness.result.run import EnvRecord


class MatrixReport(Document, kw_only=True, tag_field="kind", tag="matrix"):
    KIND: ClassVar[str] = "matrix"
    READS: ClassVar[frozenset[int]] = frozenset({1, 2, 3})

    schema_version: int = Document.SCHEMA_VERSION
    run_id: str
    created: str
    harness: HarnessInfo
    matrix: dict[str, Any] | None = None
    environments: dict[str, EnvRecord] = {}
    cells: dict[str, CellReport] = {}
    missing: list[CellInfo] = []
    run_dir: str | None = None

    @classmethod
    def upgrade(cls, data: dict, version: int) -> dict:
        if version in (1, 2):
            # Each cell by its own version (a version-1 matrix's cells may have none).
            data = {**data, "schema_version": cls.SCHEMA_VERSION}
            data["cells"] = {
                cid: CellReport.upgrade(cell, cell.get("schema_version", version))
                if isinstance(cell, dict)
                else cell
                for cid, cell in (data.get("cells") or {}).items()
            }
            data["environments"] = {
                name: EnvRecord.upgrade(env, version) if isinstance(env, dict) else env
                for name, env in (data.get("environments") or {}).items()
            }
        if version == 1:
            data["environments"] = {
                name: EnvRecord.upgrade({"torch": name, **env}, 1)
                for name, env in (data.get("environments") or {}).items()
            }
            data["missing"] = [
                {k: v for k, v in m.items() if k in CellInfo.__struct_fields__}
                for m in data.get("missing") or []
                if isinstance(m, dict)
            ]
        return data
