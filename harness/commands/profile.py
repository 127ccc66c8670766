"""``python -m harness profile``: one cell in the current environment."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.commands.argtypes import non_negative_int, positive_float, positive_int
from harness.errors import UserError
from harness.result import DEFAULT_TARGETS

TARGET_FLAGS = {  # flag -> (metric, unit shown in help)
    "--target-total": ("total_s", "s"),
    "--target-import": ("import_s", "s"),
    "--target-init": ("init_s", "s"),
    "--target-first-encode": ("first_encode_s", "s"),
    "--target-memory": ("memory_mb", "MB"),
}


def configure(parser: argparse.ArgumentParser) -> None:
    from harness.measure.models import DEFAULT_MODEL

    parser.add_argument("--model", default=DEFAULT_MODEL,
                        help="package:MODULE, path:DIR (or a directory), or a hub id (default: %(default)s)")
    parser.add_argument("--name", help="display name of the model (default: from --model)")
    parser.add_argument("--mode", choices=["warm", "cold"], default="warm",
                        help="warm: OS caches warm; cold: page cache emptied and checked before each sample")
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:N] (default: %(default)s)")
    parser.add_argument("--runs", type=positive_int, default=5, help="counted samples (default: %(default)s)")
    parser.add_argument("--warmups", type=non_negative_int, default=1,
                        help="uncounted samples first (default: %(default)s)")
    parser.add_argument("--timeout", type=positive_float, default=300.0,
                        help="seconds before a sample is killed (default: %(default)s)")
    parser.add_argument("--encode-repeats", type=non_negative_int, default=10,
                        help="encodes after the first, for the steady-state median (default: %(default)s)")
    parser.add_argument("--output", "-o", type=Path,
                        help="report file (default: reports/profile-<cell id>-<time>.json)")
    parser.add_argument("--baseline", type=Path, help="an earlier report to compare medians with")
    for flag, (metric, unit) in TARGET_FLAGS.items():
        parser.add_argument(flag, type=positive_float, dest=f"target_{metric}", metavar=unit.upper(),
                            help=f"target for {metric} in {unit} (default: {DEFAULT_TARGETS[metric]:g})")
    parser.add_argument("--no-import-attribution", action="store_true",
                        help="skip the extra -X importtime run")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bar or summary")
    # Set by the matrix driver so that cells carry the matrix's names.
    parser.add_argument("--cell-id", help=argparse.SUPPRESS)
    parser.add_argument("--torch-label", help=argparse.SUPPRESS)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from harness.report import console as out
    from harness.analysis.compare import percent_changes
    from harness.measure.models import default_name, resolve
    from harness.result import read_report
    from harness.measure.runner import CellConfig, CellRun

    if args.device != "cpu" and not args.device.startswith("cuda"):
        raise UserError(f"--device {args.device!r}: use cpu or cuda[:N]")
    baseline = read_report(args.baseline) if args.baseline else None
    targets = dict(DEFAULT_TARGETS)
    for _, (metric, _) in TARGET_FLAGS.items():
        value = getattr(args, f"target_{metric}")
        if value is not None:
            targets[metric] = value

    model = resolve(args.model)
    name = args.name or default_name(args.model)
    config = CellConfig(model=model, name=name, mode=args.mode, device=args.device, runs=args.runs,
                        warmups=args.warmups, timeout_s=args.timeout, encode_repeats=args.encode_repeats,
                        targets=targets, torch_label=args.torch_label, cell_id=args.cell_id,
                        import_attribution=not args.no_import_attribution)
    cell = CellRun(config, args.output)
    cell.prepare()
    output = cell.output

    stderr = Console(stderr=True)
    total = args.warmups + args.runs
    if args.quiet:
        report = cell.run()
    else:
        with out.sample_progress(total, f"{name} {args.mode}", stderr) as on_sample:
            report = cell.run(on_sample)
        # Piped into a log (make, CI), rich would wrap at 80 columns and cut the tables.
        console = Console() if sys.stdout.isatty() else Console(width=120)
        out.print_report(report, console)
        if baseline is not None:
            out.print_baseline_changes(percent_changes(report, baseline), str(args.baseline), console)
        console.print(f"\n📄 Report: {output}")
    if report["status"] == "failed":
        return 1
    return 1 if cell.failed_samples else 0
