"""``python -m harness profile``: one cell in the current environment."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.commands.argtypes import non_negative_int, positive_float, positive_int, timeout_seconds
from harness.errors import UserError
from harness.result import (
    BACKEND_DTYPES,
    BACKENDS,
    DEFAULT_BACKEND,
    DEFAULT_DTYPE,
    DEFAULT_MODEL,
    DEFAULT_TARGETS,
    DTYPES,
    METRICS,
    TARGET_FLAGS,
    backend_problem,
    real_path,
)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        default=DEFAULT_MODEL,
        help="package:MODULE, path:DIR (or a directory), a hub id, or entry:MODULE:FUNCTION "
        "(your application's load path) (default: %(default)s)",
    )
    parser.add_argument(
        "--app-path",
        action="append",
        type=Path,
        default=[],
        metavar="DIR",
        help="a folder an entry: module is imported from, put on the probe's sys.path (repeatable)",
    )
    parser.add_argument("--name", help="display name of the model (default: from --model)")
    parser.add_argument(
        "--mode",
        choices=["warm", "cold"],
        default="warm",
        help="warm: OS caches warm; cold: page cache emptied and checked before each sample",
    )
    parser.add_argument(
        "--cold-start",
        action="store_const",
        dest="mode",
        const="cold",
        help="the older script's flag: the same as --mode cold",
    )
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:N] (default: %(default)s)")
    parser.add_argument(
        "--backend",
        default=DEFAULT_BACKEND,
        help=f"what SentenceTransformer loads with: {', '.join(BACKENDS)}; onnx and openvino load an "
        "export, made once before the samples (default: %(default)s)",
    )
    parser.add_argument(
        "--dtype",
        default=DEFAULT_DTYPE,
        help=f"{', '.join(DTYPES)}; "
        + "; ".join(f"{backend}: {', '.join(dtypes)}" for backend, dtypes in BACKEND_DTYPES.items())
        + " (default: %(default)s)",
    )
    parser.add_argument(
        "--cosine-threshold",
        type=positive_float,
        metavar="COSINE",
        help="the lowest embedding cosine against torch float32 that still agrees "
        "(default: 0.99, 0.95 for qint8)",
    )
    parser.add_argument("--runs", type=positive_int, default=5, help="counted samples (default: %(default)s)")
    parser.add_argument(
        "--warmups", type=non_negative_int, default=1, help="uncounted samples first (default: %(default)s)"
    )
    parser.add_argument(
        "--timeout",
        type=timeout_seconds,
        default=300.0,
        help="seconds before a sample is killed (default: %(default)s)",
    )
    parser.add_argument(
        "--encode-repeats",
        type=non_negative_int,
        default=10,
        help="encodes after the first, for the steady-state median (default: %(default)s)",
    )
    parser.add_argument(
        "--output", "-o", type=Path, help="report file (default: reports/profile-<cell id>-<time>.json)"
    )
    parser.add_argument("--baseline", type=Path, help="an earlier report to compare medians with")
    for flag, metric in TARGET_FLAGS.items():
        unit = METRICS[metric].unit
        parser.add_argument(
            flag,
            type=positive_float,
            dest=f"target_{metric}",
            metavar=unit.upper(),
            help=f"target for {metric} in {unit} (default: {DEFAULT_TARGETS[metric]:g})",
        )
    parser.add_argument(
        "--no-import-attribution",
        action="store_true",
        help="no -X importtime attribution (it rides on the warm-up, or a run of its own)",
    )
    parser.add_argument(
        "--inherit-env",
        action="store_true",
        help="pass the caller's whole environment to the probe (default: minus a deny-list)",
    )
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bar or summary")
    # Set by the matrix driver so that cells carry the matrix's names.
    parser.add_argument("--cell-id", help=argparse.SUPPRESS)
    parser.add_argument("--torch-label", help=argparse.SUPPRESS)


def run(args: argparse.Namespace) -> int:
    from harness.measure import metadata
    from harness.measure.models import resolve
    from harness.measure.runner import CellConfig, CellRun, standalone_cell
    from harness.result import Settings, check_target, read_report, safe_name

    if args.device != "cpu" and not args.device.startswith("cuda"):
        raise UserError(f"--device {args.device!r}: use cpu or cuda[:N]")
    problem = backend_problem(args.backend, args.dtype)
    if problem:
        flag = "--backend" if args.backend not in BACKENDS else "--dtype"
        raise UserError(f"{flag}: {problem}")
    if args.cosine_threshold is not None and args.cosine_threshold > 1:
        raise UserError(f"--cosine-threshold {args.cosine_threshold:g}: a cosine is at most 1")
    baseline = read_report(args.baseline) if args.baseline else None
    targets = dict(DEFAULT_TARGETS)
    for metric in TARGET_FLAGS.values():
        value = getattr(args, f"target_{metric}")
        if value is not None:
            targets[metric] = value

    app_paths = tuple(str(real_path(folder, "--app-path")) for folder in args.app_path)
    for folder, found in zip(args.app_path, app_paths):
        if not Path(found).is_dir():
            raise UserError(f"--app-path {folder}: not a folder")
    model = resolve(args.model, app_paths)
    # Names become file names (the report's, a matrix cell's): check them as such.
    name = safe_name(args.name or model.source.default_name, "--name")
    for flag, value in (
        ("--cell-id", args.cell_id),
        ("--torch-label", args.torch_label),
        ("--device", args.device),
    ):
        if value is not None:
            safe_name(value, flag)
    if args.output is not None:
        check_target(args.output)
    settings = Settings(
        runs=args.runs, warmups=args.warmups, timeout_s=args.timeout, encode_repeats=args.encode_repeats
    )
    environment = metadata.environment()
    config = CellConfig(
        info=standalone_cell(
            model,
            name,
            mode=args.mode,
            device=args.device,
            backend=args.backend,
            dtype=args.dtype,
            torch=args.torch_label,
            id=args.cell_id,
            environment=environment,
        ),
        model=model,
        settings=settings,
        targets=targets,
        import_attribution=not args.no_import_attribution,
        app_paths=app_paths,
        cosine_threshold=args.cosine_threshold,
        inherit_env=args.inherit_env,
    )
    cell = CellRun(config, args.output, environment=environment)
    cell.prepare()

    if args.quiet:
        cell.run()
    else:
        from rich.console import Console

        from harness.report import console as out

        stderr = Console(stderr=True)
        with out.sample_progress(settings.samples, f"{name} {args.mode}", stderr) as on_sample:
            cell.run(on_sample)
    # Statistics only now: numpy and scipy must not be mapped while cold samples run.
    from harness.analysis import judge

    report = judge.conclude(cell.report)
    cell.write()
    if not args.quiet:
        from rich.console import Console

        from harness.analysis.compare import percent_changes
        from harness.report import console as out

        # Piped into a log (make, CI), rich would wrap at 80 columns and cut the tables.
        console = Console() if sys.stdout.isatty() else Console(width=120)
        out.print_report(report, console)
        if baseline is not None:
            out.print_baseline_changes(percent_changes(report, baseline), str(args.baseline), console)
        console.print(f"\n📄 Report: {cell.output}", markup=False)
    if report.status == "failed":
        return 1
    return 1 if report.failed_samples else 0
