"""The ``medfuse`` command line.

Subcommands are declared in :func:`build_parser`, each by a small ``_add_<name>`` function that
sets ``func`` to the code that runs it. Heavy imports happen inside those functions so that
``medfuse --help`` is instant. User mistakes (any :class:`~medfuse.errors.MedfuseError`, a missing
file) end with a one-line message and exit code 2, not a traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from medfuse.choices import OUT_FORMATS, REGISTRATION_TYPES

__all__ = ["main", "build_parser"]

log = logging.getLogger("medfuse")


def _version() -> str:
    from medfuse import __version__

    return __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="medfuse",
        description="Fuse an anatomical scan (MRI/CT) with CT, PET, SPECT or another MRI, keeping the reference geometry.",
    )
    parser.add_argument("--version", action="version", version=f"medfuse {_version()}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    # one line per subcommand; each _add_* function lives below (or imports its module's adder)
    _add_fuse(sub)
    _add_register(sub)
    _add_fuse_dir(sub)
    _add_batch(sub)
    _add_demo(sub)
    _add_info(sub)
    _add_evaluate(sub)
    _add_train(sub)
    return parser


def _add_common_fusion(p: argparse.ArgumentParser) -> None:
    p.add_argument("--method", default=None,
                   help="fusion method: mean, max, laplacian, wavelet, guided, or a network (fmmf, mdgan, msra, "
                        "light); default: the method chosen for the modality pair by the quality benchmark "
                        "(medfuse/weights/defaults.json)")
    p.add_argument("--weights", default=None, help="network checkpoint (default: the shipped weights)")
    p.add_argument("--device", default="cpu", help="torch device for networks (cpu, cuda)")
    p.add_argument("--force", action="store_true", help="overwrite existing outputs")


def _add_input_options(p: argparse.ArgumentParser) -> None:
    """Per-input reading options (what ``load_volume`` accepts), for commands that read two scans."""
    for role in ("reference", "moving"):
        p.add_argument(f"--{role}-modality", default=None, metavar="MR|CT|PT|NM",
                       help=f"modality of the {role} scan (also MRI, PET, SPECT); default: from DICOM, the file name, "
                            "or Hounsfield units for CT, else an error asks for it")
    for name, metavar, what in (
        ("series", "ID", "DICOM series id, for a folder holding several (see `medfuse info FOLDER`)"),
        ("frame", "N", "time frame of a 4D file"),
        ("xform", "sform|qform", "which NIfTI transform to trust when the two disagree"),
        ("assume-orientation", "CODES", "axis codes (e.g. RAS, LPS) for a NIfTI file without orientation"),
    ):
        kind = int if name == "frame" else str
        choices = ["sform", "qform"] if name == "xform" else None
        p.add_argument(f"--{name}", default=None, type=kind, metavar=metavar, choices=choices,
                       help=f"{what}; applies to both inputs (or give --reference-{name} / --moving-{name})")
        for role in ("reference", "moving"):
            p.add_argument(f"--{role}-{name}", default=None, type=kind, metavar=metavar, choices=choices,
                           help=f"{what}, for the {role} input")
    p.add_argument("--accept-registration", action="store_true",
                   help="keep a registration whose self-checks failed (a warning, recorded in the sidecar) instead "
                        "of stopping: for pre-aligned or unusual data you have checked yourself")
    p.add_argument("--accept-mismatch", action="store_true",
                   help="go on (a warning, recorded in the sidecar) when the pair check fails: a DICOM Modality that "
                        "contradicts the role or the declared modality, a PET/SPECT reference with an MRI/CT moving "
                        "scan (fuse), or DICOM PatientIDs that differ (compared only as salted hashes)")


def _input_options(args, role: str):
    """How one input is read, from the parsed flags (the per-input flag wins over the shared one)."""
    from medfuse.pipeline import InputOptions

    options = {"modality": getattr(args, f"{role}_modality")}
    for name in ("series", "frame", "xform", "assume_orientation"):
        value = getattr(args, f"{role}_{name}")
        options[name] = value if value is not None else getattr(args, name)
    return InputOptions(**options)


#: the flag of each API option whose name is not the flag's (``errors.OPTION`` in messages, rendered by the CLI)
_FLAGS = {"registration_type": "--registration", "transform_out": "--transform", "out_format": "--format",
          "out": "--out", "label_map": "--label-map"}
#: options given per input (``--moving-series``), or for both inputs at once (``--series``)
_PER_INPUT = ("modality", "series", "frame", "xform", "assume_orientation")


def option_flag(option: str, role: str | None = None) -> str:
    """The command-line flag of an API option, per input where it is one (``series`` of the moving scan:
    ``--moving-series``)."""
    if option in _PER_INPUT:
        return f"--{role}-{option.replace('_', '-')}" if role else f"--{option.replace('_', '-')}"
    return _FLAGS.get(option, "--" + option.replace("_", "-"))


def error_line(err: BaseException) -> str:
    """An error as the command line says it: a medfuse error names its option by the flag."""
    from medfuse.errors import MedfuseError

    return err.render(option_flag) if isinstance(err, MedfuseError) else str(err)


def _add_fuse(sub) -> None:
    p = sub.add_parser("fuse", help="fuse two scans (or two 2D slices) into the reference geometry",
                       description="Register MOVING onto REFERENCE, normalize both, fuse, and write the result on "
                                   "the reference grid plus a QC picture (<out>_qc.png).")
    p.add_argument("--reference", required=True, help="anatomical scan (MRI): NIfTI, NRRD, DICOM folder or PNG")
    p.add_argument("--moving", required=True, help="the other scan: CT, PET, SPECT or MRI")
    p.add_argument("--out", required=True, help="fused output; the extension picks the format (.nii.gz, .nrrd, .png); "
                                                "with --format dicom, a folder")
    p.add_argument("--format", default=None, choices=OUT_FORMATS, dest="out_format",
                   help="output format: nifti or nrrd (--out must have that extension) or dicom: --out is a folder "
                        "that receives the fused volume as a derived DICOM series (RGB for PET/SPECT colour fusion), "
                        "and <out>_moving/ the moving scan in its units as a second series (default: from --out)")
    _add_common_fusion(p)
    group = p.add_mutually_exclusive_group()
    group.add_argument("--no-register", action="store_true",
                       help="inputs are already aligned: only resample through scanner coordinates")
    group.add_argument("--register", action="store_true",
                       help="register even when the inputs share one grid or DICOM frame of reference (by default "
                            "such inputs are taken as aligned)")
    p.add_argument("--registration", default="rigid", choices=REGISTRATION_TYPES,
                   help="registration model for 3D inputs (default rigid)")
    p.add_argument("--transform", default=None, help="also write the registration transform here (.tfm)")
    p.add_argument("--window", default=None, help="CT window preset (brain, subdural, bone, soft_tissue) or LEVEL,WIDTH")
    _add_input_options(p)
    _add_colormap(p)
    p.add_argument("--no-keep-hot", action="store_true",
                   help="PET/SPECT: leave the functional scan's hottest regions as the method composed them (by "
                        "default they stay at least as bright as in the scan alone)")
    p.add_argument("--no-quantitative", action="store_true",
                   help="do not write the moving scan on the reference grid in its own units (SUV, Bq/mL, HU...; "
                        "<out>_moving.nii.gz by default, units in the sidecar)")
    p.add_argument("--no-qc", action="store_true", help="do not write the QC picture")
    p.add_argument("--compress-level", default=None, type=int, choices=range(10), metavar="0-9",
                   help="gzip level of .nii.gz outputs: 0 stores, 1 (default) is the fastest, 9 the smallest; "
                        "an --out ending in .nii is not compressed at all")
    p.add_argument("--progress", action="store_true",
                   help="print one 'PROGRESS <0-100> <step>' line per step on stdout (for front ends such as 3D Slicer)")
    p.set_defaults(func=_run_fuse)


def _add_colormap(p: argparse.ArgumentParser) -> None:
    p.add_argument("--colormap", default=None, metavar="NAME",
                   help="colour map of PET/SPECT volumes, whose fused result is an RGB volume: aanlib_pet (PET "
                        "and SPECT default), aanlib_spect, hot_iron, hot_yellow, rainbow, viridis, or gray "
                        "for a grey result; CT and MR are always grey")


def _parse_window(text: str | None):
    if text is None or "," not in text:
        return text
    try:
        level, width = (float(v) for v in text.split(","))
    except ValueError:
        from medfuse.errors import OptionError

        raise OptionError(f"--window {text!r}: expected a preset name or LEVEL,WIDTH in HU (e.g. 40,80)") from None
    return (level, width)


def _progress_printer(args):
    if not getattr(args, "progress", False):
        return None
    return _print_progress


def _print_progress(percent: int, step: str) -> None:
    """The ``--progress`` protocol: one ``PROGRESS <0-100> <step>`` line on stdout per pipeline step (read by the
    3D Slicer module and other front ends)."""
    print(f"PROGRESS {int(percent)} {step}", flush=True)


def _run_fuse(args) -> int:
    from medfuse.pipeline import FusionOptions, fuse_files

    options = FusionOptions(
        method=args.method, weights=args.weights, device=args.device,
        register=False if args.no_register else (True if args.register else None),
        registration_type=args.registration, transform_out=args.transform, window=_parse_window(args.window),
        reference=_input_options(args, "reference"), moving=_input_options(args, "moving"),
        accept_registration=args.accept_registration, accept_mismatch=args.accept_mismatch, colormap=args.colormap,
        keep_hot=not args.no_keep_hot, qc=not args.no_qc, quantitative=not args.no_quantitative, out_format=args.out_format,
        compress_level=args.compress_level, force=args.force,
    )
    written = fuse_files(args.reference, args.moving, args.out, options, progress=_progress_printer(args))
    _print_written(written)
    return 0


def _print_written(written: dict) -> None:
    """One ``kind: path`` line per output written (what front ends such as 3D Slicer read)."""
    for kind, path in written.items():
        print(f"{kind}: {path}")


def _add_register(sub) -> None:
    p = sub.add_parser("register", help="register a scan onto a reference and write it on the reference grid",
                       description="Register MOVING (CT, PET, SPECT or MRI) onto REFERENCE (usually the MRI) with "
                                   "mutual information, write MOVING resampled onto the reference grid, and optionally "
                                   "the transform as an ITK transform file (reference LPS points -> moving LPS points, "
                                   "as SimpleITK, ANTs and 3D Slicer read it). Fails with a one-line message when a "
                                   "self-check finds the result implausible.")
    p.add_argument("--reference", required=True, help="fixed 3D scan (MRI): NIfTI, NRRD, MHA or DICOM folder")
    p.add_argument("--moving", required=True, help="3D scan to align: CT, PET, SPECT or MRI")
    p.add_argument("--out", required=True, help="resampled moving scan (.nii.gz, .nii, .nrrd, .mha)")
    p.add_argument("--transform", default=None, help="also write the transform here (.tfm, .txt or .h5)")
    p.add_argument("--registration", "--type", dest="registration", default="rigid",
                   choices=REGISTRATION_TYPES,
                   help="transform model (default rigid: scans of one head differ by a rigid motion)")
    p.add_argument("--label-map", action="store_true", help="MOVING is a label map: nearest-neighbour resampling")
    _add_input_options(p)
    p.add_argument("--force", action="store_true", help="overwrite existing outputs")
    p.set_defaults(func=_run_register)


def _run_register(args) -> int:
    from medfuse.pipeline import RegistrationOptions, register_files

    options = RegistrationOptions(
        transform_out=args.transform, registration_type=args.registration, label_map=args.label_map, force=args.force,
        reference=_input_options(args, "reference"), moving=_input_options(args, "moving"),
        accept_registration=args.accept_registration, accept_mismatch=args.accept_mismatch,
    )
    written, result = register_files(args.reference, args.moving, args.out, options)
    _print_written(written)
    print(result.messages[-1])
    return 0


def _add_fuse_dir(sub) -> None:
    p = sub.add_parser("fuse-dir", help="fuse every pair of a Harvard AANLIB-layout folder",
                       description="Fuse DATA/{ct_mri,pet_mri,spect_mri}/<pair>/{mri.png, ct|pet|spect.png} into "
                                   "OUT/<task>/<pair>/fused.png (colour kept). Resumable: pairs whose outputs match their "
                                   "inputs and settings are skipped (another --method or --weights redoes them) "
                                   "unless --force; each pair's outcome goes to OUT/fuse-dir-log.csv and "
                                   "OUT/manifest.csv.")
    p.add_argument("data", help="folder in the Harvard layout")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--tasks", default=None, help="comma-separated subset of ct_mri,pet_mri,spect_mri")
    _add_common_fusion(p)
    p.set_defaults(func=_run_fuse_dir)


def _run_fuse_dir(args) -> int:
    from medfuse.batch import fuse_directory
    from medfuse.batch_cli import option_words

    tasks = args.tasks.split(",") if args.tasks else None
    counts = fuse_directory(args.data, args.out, args.method, force=args.force, weights=args.weights,
                            tasks=tasks, device=args.device, name_option=option_words)
    print(f"fused {counts['ok']}, skipped {counts['skipped']} (already done), failed {counts['failed']}; "
          f"outputs in {args.out}")
    return 1 if counts["failed"] else 0


def _add_batch(sub) -> None:
    from medfuse.batch_cli import add_batch_parser

    add_batch_parser(sub)


def _add_demo(sub) -> None:
    p = sub.add_parser("demo", help="run the whole pipeline on a built-in phantom case",
                       description="Make a digital brain phantom (MRI + a misaligned PET, SPECT, CT or T2 on its own "
                                   "grid), register, fuse and write the result with a QC picture into "
                                   "OUT/<modality>/. Needs no data. A rerun makes the same case again and replaces "
                                   "the files the demo wrote there (recorded with their SHA-256 in demo.json); a file "
                                   "in the way that the demo did not write, or that was changed since, stops it "
                                   "(--force replaces it). An interrupted demo leaves no partial file.")
    p.add_argument("--out", default="medfuse-demo",
                   help="the demos' folder; each modality's demo writes into OUT/<modality> (default ./medfuse-demo)")
    p.add_argument("--modality", default="pet", choices=["ct", "pet", "spect", "t2"], help="second scan (default pet)")
    p.add_argument("--method", default=None, help="fusion method (default: the method chosen for the pair, medfuse/weights/defaults.json)")
    p.add_argument("--seed", type=int, default=0, help="phantom seed")
    _add_colormap(p)
    p.add_argument("--force", action="store_true",
                   help="also replace files in the way that the demo did not write (its own are replaced anyway)")
    p.set_defaults(func=_run_demo)


def _run_demo(args) -> int:
    from medfuse.demo import run_demo

    written = run_demo(args.out, modality=args.modality, method=args.method, seed=args.seed, force=args.force,
                       colormap=args.colormap)
    _print_written(written)
    return 0


def _add_info(sub) -> None:
    p = sub.add_parser("info", help="describe a scan's geometry and intensities (no patient identifiers)",
                       description="Print what medfuse reads from one scan: modality, format, colour, shape, voxel "
                                   "spacing, orientation, the voxel-to-world affine (RAS mm) and the intensity range. "
                                   "Never prints patient data, DICOM text or the path. For a folder holding several "
                                   "DICOM series, the error lists their ids: pick one with --series.")
    p.add_argument("path", metavar="PATH", help="NIfTI, NRRD, DICOM folder or image file")
    p.add_argument("--series", default=None, metavar="ID", help="DICOM series id when the folder holds several")
    p.set_defaults(func=_run_info)


#: how ``medfuse info`` names its input in messages (the path itself may hold identifiers)
INFO_INPUT_LABEL = "the input (the PATH argument of medfuse info)"


def _run_info(args) -> int:
    import nibabel.orientations as nio
    import numpy as np

    from medfuse.errors import MedfuseError
    from medfuse.io import load_volume
    from medfuse.io.naming import input_label, redact

    label = INFO_INPUT_LABEL  # the path may hold identifiers: never echoed (medfuse.io.naming)
    with input_label(args.path, label):
        try:
            v = load_volume(args.path, series=args.series, check=False)
        except (MedfuseError, FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError) as err:
            text = redact(error_line(err))
            if isinstance(err, FileNotFoundError) and label in text:
                text += "; check the PATH you typed (medfuse does not repeat it: paths may hold identifiers)"
            if text == str(err):
                raise
            raise type(err)(text) from None  # worded for the command line already
    a = v.array
    print(f"modality: {v.modality or 'unknown'}  format: {v.meta.get('format')}  colour: {v.is_color}")
    print(f"shape: {a.shape}  spacing (mm): {tuple(round(float(s), 4) for s in v.spacing)}")
    if v.ndim == 3:
        print(f"orientation: {''.join(nio.aff2axcodes(v.affine))}")
    print("affine (RAS):")
    print(np.array2string(v.affine, precision=4, suppress_small=True))
    print(f"intensity: min {float(a.min()):g}  max {float(a.max()):g}  mean {float(a.mean()):g}")
    return 0


def _add_evaluate(sub) -> None:
    p = sub.add_parser("evaluate", help="fusion quality metrics of one fused image or volume",
                       description="Score a fused image against its two sources (MI, NMI, FMI, QNCIE, Qabf, SSIM, "
                                   "MS_SSIM, MSE, RMSE, PSNR, VIF, SCD, CE, EN, SD, SF, AG, EI). 2D slices are scored "
                                   "on 0..255 (colour on the Y of YCbCr); 3D volumes per slice inside the head mask "
                                   "after mapping each to 0..255 by its 0.5-99.5th percentiles.")
    p.add_argument("--sources", nargs=2, required=True, metavar=("A", "B"),
                   help="the two source images on the fused grid, anatomical (MRI) first")
    p.add_argument("--fused", required=True, help="the fused image or volume")
    p.add_argument("--metrics", default=None, type=_metric_names, help="comma-separated metric names (default: all)")
    p.add_argument("--format", default="json", choices=["json", "csv", "md"], help="output format (default json)")
    p.add_argument("--mask", default=None, help="optional mask file on the same grid (default: 2D whole image, "
                                                "3D head mask of the sources)")
    p.set_defaults(func=_run_evaluate)

    p = sub.add_parser("evaluate-dir", help="score fuse-dir outputs (one folder per method) against their sources",
                       description="Score FUSED_DIR/<task>/<pair>/fused.png against DATA/<task>/<pair>/{mri.png, "
                                   "ct|pet|spect.png}; print one table per task (mean ± std) and write a CSV of "
                                   "per-pair scores plus <csv>_summary.csv. Several folders: one method each (named "
                                   "by the folder), compared on their common pairs, with a comparison figure.")
    p.add_argument("fused_dirs", nargs="+", metavar="FUSED_DIR", help="fuse-dir output folder(s)")
    p.add_argument("--data", required=True, help="the Harvard-layout source folder")
    p.add_argument("--out", default=None, help="per-pair CSV (default FUSED_DIR/metrics.csv; with several folders "
                                               "./metrics_comparison.csv)")
    p.add_argument("--figure", default=None, help="comparison figure PNG (default: the CSV name with .png, "
                                                  "with several folders)")
    p.add_argument("--metrics", default=None, type=_metric_names, help="comma-separated metric names (default: all)")
    p.add_argument("--tasks", default=None, help="comma-separated subset of ct_mri,pet_mri,spect_mri")
    p.add_argument("--jobs", type=int, default=1, help="worker processes (default 1)")
    p.add_argument("--force", action="store_true", help="overwrite existing CSV/figure outputs")
    p.set_defaults(func=_run_evaluate_dir)


def _metric_names(text: str) -> list[str]:
    from medfuse.metrics.registry import resolve_metric_names

    try:
        return resolve_metric_names(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from err


def _run_evaluate(args) -> int:
    from medfuse.metrics.report import evaluate_files, format_scores

    scores = evaluate_files(args.sources, args.fused, args.metrics, args.mask, progress=True)
    print(format_scores(scores, args.format), end="" if args.format != "json" else "\n")
    return 0


def _run_evaluate_dir(args) -> int:
    from medfuse.io.atomic import atomic_output, check_output
    from medfuse.metrics.registry import resolve_metric_names
    from medfuse.metrics.report import (comparison_figure, evaluate_directory, format_summary, summarize,
                                        write_rows_csv, write_summary_csv)

    names = resolve_metric_names(args.metrics)
    dirs = [Path(d) for d in args.fused_dirs]
    several = len(dirs) > 1
    out = Path(args.out) if args.out else (Path("metrics_comparison.csv") if several else dirs[0] / "metrics.csv")
    summary_path = out.with_name(out.stem + "_summary.csv")
    figure = Path(args.figure) if args.figure else (out.with_suffix(".png") if several else None)
    for p in (out, summary_path, figure):  # refuse before spending minutes on the metrics
        if p is not None:
            check_output(p, args.force)
    tasks = args.tasks.split(",") if args.tasks else None
    methods, results = evaluate_directory(dirs, args.data, names, tasks=tasks, jobs=args.jobs, progress=True)
    summary = summarize(results)
    print(format_summary(summary, methods), end="")
    write_rows_csv(results, names, out, force=args.force)
    write_summary_csv(summary, summary_path, force=args.force)
    print(f"per-pair scores: {out}\nsummary: {summary_path}")
    if figure is not None and summary:
        with atomic_output(figure, args.force) as tmp:
            comparison_figure(summary, methods).save(tmp, format="PNG")
        print(f"figure: {figure}")
    failed = sum(1 for r in results if r.error)
    if failed:
        print(f"{failed} pair(s) could not be scored (see the error column of {out})")
    return 1 if failed else 0


def _add_train(sub) -> None:
    p = sub.add_parser("train", help="train (or fine-tune) a fusion network for one modality pair",
                       description="Unsupervised training on random patches of 2D slice pairs: the slices of a "
                                   "Harvard AANLIB-layout folder (--data), or the axial slices inside the head of your "
                                   "own registered 3D volume pairs (--volumes), normalized as inference normalizes a "
                                   "3D input. Split by whole case/subject into training and validation (stored in the "
                                   "checkpoint). --init-from fine-tunes the shipped network or a checkpoint. Seeded "
                                   "and resumable; the checkpoint is written atomically every checkpoint_every "
                                   "iterations and loads with torch.load(weights_only=True). See docs/training.md.")
    p.add_argument("--pair", required=True, choices=["ct_mri", "pet_mri", "spect_mri"], help="modality pair")
    p.add_argument("--method", required=True, help="network: fmmf, mdgan, msra, light")
    p.add_argument("--config", default=None, help="JSON file overriding the method's config "
                                                  "(medfuse/training/configs/<method>.json)")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--data", default=None, help="Harvard-layout folder (default $MEDFUSE_HARVARD)")
    source.add_argument("--volumes", default=None, metavar="DIR_OR_LIST",
                        help="your registered 3D volume pairs: a folder with one sub-folder per subject holding "
                             "mri.nii.gz and ct|pet|spect.nii.gz on the same grid, or a .csv/.json list with "
                             "columns subject,reference,moving (see docs/training.md)")
    p.add_argument("--val-fraction", type=float, default=None, metavar="F",
                   help="fraction of the cases/subjects kept for validation, in [0, 1); 0: train on all "
                        "(default: the config's val_fraction, 0.2)")
    p.add_argument("--init-from", default=None, metavar="shipped|CKPT",
                   help="fine-tune: start from the weights shipped for --pair/--method ('shipped') or from a "
                        "checkpoint, keeping its architecture; the learning rate defaults to the config's "
                        "fine_tune_lr (1e-4)")
    p.add_argument("--lr", type=float, default=None, help="learning rate (default: the config's lr, or fine_tune_lr "
                                                          "with --init-from)")
    p.add_argument("--iterations", type=int, default=None, help="total iterations (default: the config's)")
    p.add_argument("--device", default="cpu", help="torch device: cpu, cuda, cuda:N (default cpu)")
    p.add_argument("--seed", type=int, default=None, help="random seed (default: the config's)")
    p.add_argument("--resume", action="store_true", help="continue training the checkpoint --out if it exists")
    p.add_argument("--force", action="store_true", help="overwrite an existing --out and start again")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--out", required=True, help="checkpoint to write (.pt)")
    p.set_defaults(func=_run_train)


def _run_train(args) -> int:
    from medfuse.training import train

    summary = train(args.pair, args.method, args.out, config=args.config, data_dir=args.data,
                    iterations=args.iterations, device=args.device, seed=args.seed, resume=args.resume,
                    force=args.force, progress=not args.no_progress, volumes=args.volumes,
                    val_fraction=args.val_fraction, init_from=args.init_from, lr=args.lr)
    final = ", ".join(f"{k} {v:.4f}" for k, v in summary["final"].items())
    val = ", ".join(f"{k} {v:.4f}" for k, v in summary["validation"].items() if k != "iteration")
    split = summary["split"]
    print(f"{summary['out']}: iteration {summary['iteration']}, {summary['seconds_per_iteration']:.3f} s/iteration")
    print(f"split: {len(split['train_cases'])} training case(s) ({len(split['train_pairs'])} slices), "
          f"{len(split['val_cases'])} validation case(s) ({len(split['val_pairs'])} slices)")
    if final:
        print(f"last training losses: {final}")
    if val:
        print(f"validation losses: {val}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``medfuse`` console script; returns the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)  # --help and usage errors print too
    except BrokenPipeError:
        return _stdout_closed()
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    from medfuse.errors import MedfuseError

    try:
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, inside the handler, not at interpreter exit
        return code
    except BrokenPipeError:
        return _stdout_closed()
    except ModuleNotFoundError as err:
        if (err.name or "").split(".")[0] not in _NETWORK_MODULES:
            raise
        print(f"medfuse {args.command}: error: this needs PyTorch and MONAI, not installed here (the classical "
              f"methods run without them): pip install -e \".[networks]\" in the medfuse source tree; on Linux "
              "without a GPU install torch first from https://download.pytorch.org/whl/cpu (README: PyTorch)",
              file=sys.stderr)
        return 2
    except (MedfuseError, FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError) as err:
        print(f"medfuse {args.command}: error: {error_line(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("medfuse: interrupted", file=sys.stderr)
        return 130


#: what the networks extra installs (``pip install -e ".[networks]"``): the classical methods need neither
_NETWORK_MODULES = ("torch", "monai")

#: exit code when the reader of stdout went away (``medfuse info X | head -3``): 128 + SIGPIPE, as the shell
#: reports a command that a closed pipe ended
EXIT_PIPE_CLOSED = 141


def _stdout_closed() -> int:
    """The reader of stdout closed the pipe: stop quietly (no traceback, no second error at exit), as Unix tools do.

    Python's recipe (``signal`` module docs, "Note on SIGPIPE"): point stdout at devnull so that the final flush
    at interpreter exit does not raise again.
    """
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # stdout replaced by an object without a file descriptor
        pass
    return EXIT_PIPE_CLOSED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
