"""``python -m harness ci``: the steps of a CI matrix that no other verb covers.

    ci gather FOLDER... --into RUN_DIR   put the runners' folders together into one run folder
    ci compare REPORT                    compare each machine's cells with that machine's baseline
    ci baseline REPORT                   store each machine's cells as that machine's baseline

``ci compare --reference baseline`` (the default) judges a machine whose cells came with
reference cells (``<cell id>@baseline``, a reference run) by their paired verdicts
(harness.analysis.reference); ``--reference numbers`` compares with stored numbers only.
A stored baseline never keeps reference cells or reference environments.

``make ci-merge`` and ``make ci-baseline`` run these between ``merge``, ``report`` and
``summary``; .github/workflows/profile-matrix.yml runs the make targets. Exit status of
``ci compare``: 1 when some machine's cells are slower on a gated metric, else 0 (a machine
without a baseline yet is reported, not failed); 2 for unusable input, and when a machine's
stored baseline shares no cell with the run (the tables are printed first: nothing was compared).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from harness.commands.argtypes import DEFAULT_BASELINES, add_verdict_options, positive_int


def configure(parser: argparse.ArgumentParser) -> None:

    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True

    gather = actions.add_parser(
        "gather",
        help="copy the cell reports of runner folders into one run folder",
        description="Copy the cell reports of runner folders into one run folder; a "
        "planned cell with no report gets a failed record.",
    )
    gather.add_argument("folders", nargs="+", metavar="FOLDER", help="runner folders (downloaded artifacts)")
    gather.add_argument(
        "--into",
        required=True,
        type=Path,
        metavar="RUN_DIR",
        help="the run folder to write (reports/runs/<run id>)",
    )
    gather.add_argument(
        "--matrix",
        type=Path,
        help="the matrix the run planned: each of its cells without a report is recorded failed",
    )
    gather.add_argument(
        "--runs", type=positive_int, help="the runs override the cells ran with (for --matrix)"
    )

    comp = actions.add_parser(
        "compare",
        help="compare each machine's cells with that machine's stored baseline",
        description="Split a merged report by machine fingerprint and compare each part "
        "with the baseline stored for that fingerprint.",
    )
    comp.add_argument("report", metavar="REPORT", help="a merged matrix report")
    comp.add_argument(
        "--baselines-dir", default=DEFAULT_BASELINES, help="stored baselines (default: %(default)s)"
    )
    add_verdict_options(comp)
    comp.add_argument(
        "--reference",
        choices=["baseline", "numbers"],
        default="baseline",
        help="baseline: a machine whose run measured reference cells (<cell id>@baseline) is judged "
        "by their paired verdicts, the rest by stored numbers; numbers: stored numbers only "
        "(default: %(default)s)",
    )
    comp.add_argument("--format", choices=["text", "md"], default="text", help="output (default: text)")
    comp.add_argument(
        "--step-summary",
        action="store_true",
        help="also append the markdown to $GITHUB_STEP_SUMMARY when it is set",
    )

    base = actions.add_parser(
        "baseline",
        help="store each machine's cells as that machine's baseline",
        description="Store each machine's part of a merged report as the baseline of that "
        "fingerprint. A cell that did not complete keeps its previous baseline.",
    )
    base.add_argument("report", metavar="REPORT", help="a merged matrix report")
    base.add_argument(
        "--baselines-dir", default=DEFAULT_BASELINES, help="stored baselines (default: %(default)s)"
    )


def run(args: argparse.Namespace) -> int:
    return {"gather": _gather, "compare": _compare, "baseline": _baseline}[args.action](args)


def _gather(args: argparse.Namespace) -> int:
    from harness.analysis import ci

    planned, matrix = ci.planned_cells(args.matrix, runs=args.runs) if args.matrix else (None, None)
    result = ci.gather(args.folders, args.into, planned=planned, matrix=matrix)
    folders = len(args.folders)
    print(f"gathered {len(result.cells)} cell report(s) from {folders} folder(s) into {result.run_dir}")
    for cell_id in result.missing:
        print(f"  {cell_id}: planned, but no report came back; recorded as failed")
    for why in result.skipped:
        print(f"  skipped {why}")
    return 0


def _compare(args: argparse.Namespace) -> int:
    from harness.analysis import baseline, ci, reference
    from harness.analysis.compare import compare_cells
    from harness.errors import UserError
    from harness.report.comparison import render
    from harness.report.format import md_text, one_line
    from harness.report.reference import render as render_reference
    from harness.result import append_bytes, read_cells

    md = args.format == "md"
    text = md_text if md else one_line
    parts = ci.by_machine(args.report)
    out: list[str] = []
    worst = 0
    # Machines whose stored baseline shares no cell with this run: nothing was compared.
    unmatched: list[str] = []
    for fp, part in parts.items():
        cells = part.cells
        heading = (
            f"Cells that never ran: {len(cells)}"
            if fp == ci.NO_MACHINE
            else f"Machine {text(ci.machine_label(part))} ({fp}): {len(cells)} cell(s)"
        )
        out.append(f"### {heading}" if md else heading)
        out.append("")
        if fp == ci.NO_MACHINE:
            out.extend(
                f"- {text(cell_id)}: {text(c.failure.reason if c.failure else c.status, 400)}"
                for cell_id, c in sorted(cells.items())
            )
            out.append("")
            continue
        if args.reference == "baseline" and reference.has_reference(part):
            result = reference.judge_against_stored(
                part, args.baselines_dir, args.threshold, args.alpha, args.fail_on
            )
            body = render_reference(result, args.format)
            out.append(body.replace("## ", "#### ", 1) if md else body)
            worst = max(worst, result.exit_code())
            if result.compared_nothing and result.numbers is not None:
                unmatched.append(f"{fp} ({result.numbers.baseline_label})")
            continue
        stored = baseline.find_for(fp, args.baselines_dir)
        if stored is None:
            out.append(
                f"No baseline yet for this machine (fingerprint {fp}): nothing to compare with. "
                f"This run becomes its baseline once it is stored (`python -m harness ci baseline`; "
                f"the scheduled workflow does it on the default branch)."
            )
            out.append("")
            continue
        comparison = compare_cells(
            read_cells(stored),
            cells,
            threshold=args.threshold,
            alpha=args.alpha,
            fail_on=args.fail_on,
            baseline_label=str(stored),
            current_label=f"this run ({fp})",
        )
        # The comparison's own heading is one level deeper than the machine's.
        out.append(
            render(comparison, args.format).replace("## ", "#### ", 1)
            if md
            else render(comparison, "text", wide=True)
        )
        worst = max(worst, comparison.exit_code())
        if not comparison.common_cells:
            unmatched.append(f"{fp} ({stored})")
    if worst:
        verdict = "REGRESSION: a gated metric is significantly slower on some machine (see above)"
    elif unmatched:
        verdict = "NOTHING COMPARED on some machine: its stored baseline shares no cell with this run"
    else:
        verdict = "No significant regression on any machine with a baseline."
    out.append(f"**{verdict}**" if md else verdict)
    printed = "\n".join(out) + "\n"
    print(printed, end="")
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if args.step_summary and summary:
        try:
            append_bytes(summary, (printed if md else f"```\n{printed}```\n").encode())
        except UserError as exc:  # WriteError (exit 3) or a FIFO/device (TargetError, exit 2)
            raise type(exc)(f"GITHUB_STEP_SUMMARY: {exc}") from None
    if unmatched:
        raise UserError(
            f"the stored baseline of machine {', '.join(unmatched)} shares no cell with {args.report}: "
            "nothing was compared; run the same cells, or store this run as the baseline "
            "(the workflow's `accept` input, make ci-baseline)"
        )
    return worst


def _baseline(args: argparse.Namespace) -> int:
    import msgspec

    from harness.analysis import baseline, ci
    from harness.result import cells_of, read_any

    for fp, part in ci.by_machine(args.report).items():
        if fp == ci.NO_MACHINE:
            continue
        target = baseline.path_for(fp, args.baselines_dir)
        part = baseline.without_reference(part)
        cells = dict(part.cells)
        kept = []
        if target.is_file():
            for cell_id, cell in cells_of(read_any(target)).items():
                if cell_id not in cells or cells[cell_id].status != "complete":
                    cells[cell_id] = cell
                    kept.append(cell_id)
        if not any(c.status == "complete" for c in cells.values()):
            print(f"machine {fp}: no complete cell; its baseline is left as it was")
            continue
        path = msgspec.structs.replace(part, cells=cells).write(target)
        note = (
            f" ({len(kept)} cell(s) kept from the previous baseline: {', '.join(sorted(kept))})"
            if kept
            else ""
        )
        print(f"baseline for machine {fp} ({ci.machine_label(part)}): {path}, {len(cells)} cell(s){note}")
    return 0
