"""`make docs-figures`: the README's screenshots and the docs' current figures, from one run of
the default matrix on one machine, so that they cannot drift apart.

    python bench/docs_figures.py                       # make profile-matrix (scratch folder), then the rest
    python bench/docs_figures.py --runs 2              # fewer samples per cell (RUNS=2)
    python bench/docs_figures.py --from-report FILE    # a merged report already made (no run)
    python bench/docs_figures.py --from-report FILE --out DIR --no-screenshot   # a smoke test

What it writes (under --out, by default docs/):

* ``report-screenshot.png``: the HTML report's first screen at 1,280 x 900 (the verdicts);
* ``report-matrix.png``: the whole page at 1,280 px wide;
* ``figures.json``: the run's figures (machine, date, command, per cell medians, each
  paired verdict line) and ``figures.md``, the page that shows them (made from the JSON
  only: tests/unit/test_docs_figures.py checks the two agree).

Not a benchmark: it measures nothing itself; `make profile-matrix` does. The run and the
page go to a scratch folder (--scratch, default a temporary one), never to reports/. It
takes as long as the default matrix: minutes (the first time, torch 2.14.1's 5.6 GB CUDA
build is downloaded).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness.report.banner import verdict_lines  # noqa: E402
from harness.report.chromium import OFFLINE_FLAGS  # noqa: E402
from harness.report.facts import headline, load_input, machine_text, ordered_cells, within_run  # noqa: E402
from harness.report.format import quantity, when  # noqa: E402

RUN_ID = "docs-figures"
FIGURE_METRICS = ("total_s", "import_s", "init_s", "process_wall_s", "memory_mb")
WIDTH, FIRST_SCREEN = 1280, 900
CHROMIUM_FLAGS = [
    *OFFLINE_FLAGS,
    "--hide-scrollbars",
]


def run_matrix(scratch: Path, runs: int | None) -> Path:
    """`make profile-matrix` into ``scratch/reports``; the merged report's path. Its exit
    status 1 (a slower verdict) is a result, not a failure."""
    reports = scratch / "reports"
    command = ["make", "profile-matrix", f"REPORTS={reports}", f"RUN_ID={RUN_ID}"]
    if runs is not None:
        command.append(f"RUNS={runs}")
    status = subprocess.run(command, cwd=ROOT).returncode
    merged = reports / f"matrix-{RUN_ID}.json"
    if status not in (0, 1) or not merged.is_file():
        raise SystemExit(f"docs_figures: {' '.join(command)} exited {status}; no merged report to use")
    return merged


def figures_of(report, command: str) -> dict:
    """The figures the docs quote, from one merged report: plain data for figures.json."""
    facts = headline(report)
    within = within_run(report)
    cells = []
    for cell in ordered_cells(report):
        medians = {m: cell.median(m) for m in FIGURE_METRICS if cell.median(m) is not None}
        installed = cell.environment.packages.get("torch") if cell.environment else None
        cells.append(
            {
                "id": cell.id,
                "torch": cell.cell.torch,
                "torch_installed": installed,
                "mode": cell.cell.mode,
                "runs": len(cell.counted),
                "medians": medians,
                "shown": {m: quantity(m, v) for m, v in medians.items()},
            }
        )
    return {
        "run_id": report.run_id,
        "date": facts.started or report.created,
        "machines": [machine_text(m) for m in facts.machines.values()],
        "command": command,
        "cells": cells,
        "verdicts": [
            {"text": line.text, "details": line.details} for line in verdict_lines(report, [within])
        ],
        "environments": {
            torch: {"build_s": env.build_s, "torch_installed": env.packages.get("torch")}
            for torch, env in report.environments.items()
        },
    }


def figures_page(figures: dict) -> str:
    """figures.md, from figures.json alone."""
    lines = [
        "# Current figures",
        "",
        "Written by `make docs-figures` (`bench/docs_figures.py`) from one run of the default",
        "matrix; the README's screenshots come from the same run. Do not edit: run it again.",
        "",
        f"- **Machine:** {'; '.join(figures['machines']) or 'not recorded'}",
        f"- **Date:** {when(figures['date'])}",
        f"- **Run:** `{figures['run_id']}`, measured by `{figures['command']}`",
        "",
        "| cell | torch installed | runs | " + " | ".join(FIGURE_METRICS) + " |",
        "|---|---|---|" + "---|" * len(FIGURE_METRICS),
    ]
    for cell in figures["cells"]:
        shown = [cell["shown"].get(m, "–") for m in FIGURE_METRICS]
        lines.append(
            f"| {cell['torch']} {cell['mode']} | {cell['torch_installed'] or '–'} | {cell['runs']} | "
            + " | ".join(shown)
            + " |"
        )
    lines += ["", "## Verdicts", ""]
    if figures["verdicts"]:
        for verdict in figures["verdicts"]:
            lines.append(f"- {verdict['text']}")
            lines += [f"    - {detail}" for detail in verdict["details"]]
    else:
        lines.append("No two cells of the run differ in one axis alone.")
    return "\n".join(lines) + "\n"


def screenshot(page: Path, png: Path, height: int, profile: Path) -> None:
    """``page`` in headless Chromium at WIDTH x ``height``, as a PNG."""
    chromium = shutil.which("chromium")
    if chromium is None:
        raise SystemExit("docs_figures: chromium is not on PATH (make browser installs it)")
    subprocess.run(
        [
            chromium,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile}",
            f"--window-size={WIDTH},{height}",
            f"--screenshot={png}",
            page.resolve().as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=180,
    )


def page_height(page: Path, profile: Path) -> int:
    """The page's height at WIDTH (Chromium lays it out; the page itself has no script)."""
    chromium = shutil.which("chromium")
    probe = page.with_name("height-probe.html")
    script = (
        "<script>addEventListener('load', () => "
        "{document.title = 'H' + document.documentElement.scrollHeight})</script>"
    )
    text = page.read_text(encoding="utf-8")
    probe.write_text(text.replace("</body>", script + "</body>"), encoding="utf-8")
    out = subprocess.run(
        [
            chromium,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile}",
            f"--window-size={WIDTH},{FIRST_SCREEN}",
            "--dump-dom",
            probe.resolve().as_uri(),
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=180,
    ).stdout
    start = out.find("<title>H")
    return int(out[start + 8 : out.find("<", start + 8)]) if start >= 0 else 6000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from-report", type=Path, help="a merged report already made: no run")
    parser.add_argument("--runs", type=int, help="samples per cell (RUNS=N; default: matrix.yaml's)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs", help="where the files go (default: docs/)")
    parser.add_argument("--scratch", type=Path, help="the run's folder (default: a temporary one)")
    parser.add_argument("--no-screenshot", action="store_true", help="figures only (no Chromium)")
    args = parser.parse_args(argv)

    scratch = args.scratch or Path(tempfile.mkdtemp(prefix="docs-figures-"))
    scratch.mkdir(parents=True, exist_ok=True)
    if args.from_report:
        merged, command = args.from_report, f"(stored report {args.from_report.name})"
    else:
        merged = run_matrix(scratch, args.runs)
        command = "make profile-matrix" + (f" RUNS={args.runs}" if args.runs else "")
    report, _source = load_input(merged)
    page = scratch / "report.html"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "harness",
            "report",
            str(merged),
            "--html",
            str(page),
            "--history",
            str(scratch / "history"),
        ],
        cwd=ROOT,
        check=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    args.out.mkdir(parents=True, exist_ok=True)
    figures = figures_of(report, command)
    figures["generated"] = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    (args.out / "figures.json").write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    (args.out / "figures.md").write_text(figures_page(figures), encoding="utf-8")
    if not args.no_screenshot:
        profile = scratch / "chromium-profile"
        screenshot(page, args.out / "report-screenshot.png", FIRST_SCREEN, profile)
        screenshot(page, args.out / "report-matrix.png", page_height(page, profile), profile)
    pngs = "" if args.no_screenshot else ", report-screenshot.png, report-matrix.png"
    print(f"docs_figures: wrote {args.out}/figures.json, figures.md{pngs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
