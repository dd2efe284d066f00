"""Files in, files out: the whole fusion or registration of one case (the command line, the demo, batch runs).

Every option and output path is checked before anything is read (the options when they were made, the output
plan here); outputs are written atomically, never over an existing file without ``force``.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np

from medfuse.pipeline.fuse import fuse_volumes
from medfuse.pipeline.load import load_inputs, role_label
from medfuse.pipeline.options import FusionOptions, Progress, RegistrationOptions, report_progress
from medfuse.pipeline.outputs import OutputPlan, input_records
from medfuse.pipeline.provenance import Provenance
from medfuse.report.sidecar import array_sha256

__all__ = ["fuse_files", "register_files"]


def fuse_files(
    reference: str | os.PathLike,
    moving: str | os.PathLike,
    out: str | os.PathLike,
    options: FusionOptions | None = None,
    *,
    progress: Progress | None = None,
) -> dict[str, Path]:
    """Read two scans, fuse them and write the result, its sidecar and a QC picture.

    Args:
        reference, moving: input paths (see :func:`medfuse.io.load_volume`).
        out: the fused output; its extension picks the format (``.nii.gz``, ``.nrrd``, ``.nhdr``, ``.mha``,
            ``.png``...), or a folder for ``options.out_format="dicom"`` (a derived DICOM series, with
            ``<out>_moving/`` the quantitative series, ``<out>_qc.png`` and ``<out>.json``).
        options: every choice (:class:`~medfuse.pipeline.options.FusionOptions`).
        progress: called as ``progress(percent, step)`` at each step (``medfuse fuse --progress``).

    Returns:
        ``{"fused", "quantitative", "transform", "qc", "sidecar"}`` -> paths, for what was written.
    """
    options = options or FusionOptions()
    plan = OutputPlan.for_fusion(out, options)
    report_progress(progress, 5, "loading")
    ref, mov = load_inputs(reference, moving, options)
    plan.check_input(ref)
    report_progress(progress, 15, "loaded")
    consume = ref.ndim == 3  # the reference was read for this call: normalized in place (a head volume less)
    reference_sha256 = array_sha256(ref.array) if consume else None  # the sidecar's hash of the voxels as read
    result = fuse_volumes(ref, mov, options, progress=progress, paths=(reference, moving),
                          rgb_dtype=np.uint8 if ref.ndim == 3 else np.float32,  # 3D colour: uint8 (a quarter)
                          consume_reference=consume)
    report_progress(progress, 90, "writing")
    inputs = input_records(result, ref, mov, reference_sha256=reference_sha256)
    if consume:  # from here on only the reference's grid and metadata are needed: its voxels (a head volume,
        # ~75 MB) are let go before the writers and the QC picture add theirs
        ref = dataclasses.replace(ref, array=_no_voxels(ref.shape))
        if result.fused.rgb is not None and plan.kind == "file":  # written (and pictured) as RGB: the fused
            # luminance (float32, ~75 MB) is no output of this call and is let go too
            result.fused.array = _no_voxels(result.fused.shape)
    written = plan.write(result, ref, mov, inputs=inputs)
    report_progress(progress, 100, "done")
    return written


def _no_voxels(shape: tuple[int, ...]) -> np.ndarray:
    """A read-only float32 array of ``shape`` that holds no memory (one zero, broadcast): where a volume's grid is
    still needed but its voxels are not."""
    return np.broadcast_to(np.float32(0), shape)


def register_files(
    reference: str | os.PathLike,
    moving: str | os.PathLike,
    out: str | os.PathLike,
    options: RegistrationOptions | None = None,
):
    """Register ``moving`` onto ``reference``; write it on the reference grid (in its own units), the transform
    and a sidecar. Options are checked before anything is read; the pair is checked
    (:func:`medfuse.pair_check.check_pair`, ``options.accept_mismatch`` overrides) before registering. A PET
    reference is allowed here (registration onto a PET grid is legitimate).

    Returns:
        ``(written, result)``: ``{"resampled", "transform", "sidecar"}`` -> paths, and the
        :class:`~medfuse.registration.RegistrationResult`.
    """
    from medfuse.errors import UnsupportedInputError
    from medfuse.io import VOLUME_SUFFIXES, check_output, save_volume
    from medfuse.io.atomic import full_suffix
    from medfuse.pair_check import check_pair
    from medfuse.registration import register, save_transform
    from medfuse.report.sidecar import sidecar_path, volume_record, write_sidecar

    options = options or RegistrationOptions()
    out = Path(out)
    if full_suffix(out) not in VOLUME_SUFFIXES:
        raise UnsupportedInputError(f"{out}: a registered volume is written as {', '.join(VOLUME_SUFFIXES)}; "
                                    "give the output such a name")
    for target in (out, options.transform_out, sidecar_path(out) if options.sidecar else None):
        if target is not None:
            check_output(target, options.force)
    ref, mov = load_inputs(reference, moving, options)
    pair_check = check_pair(ref, mov, accept_mismatch=options.accept_mismatch, paths=(reference, moving),
                            names=(role_label("reference"), role_label("moving")), swapped_roles=False)
    result = register(ref, mov, transform=options.registration_type, label_map=options.label_map,
                      checks=not options.accept_registration)
    written = {"resampled": save_volume(result.resampled, out, force=options.force,
                                        compress_level=options.compress_level)}
    if options.transform_out is not None:
        written["transform"] = save_transform(result.transform, options.transform_out, force=options.force)
    if options.sidecar:
        summary = result.summary()
        if result.check_failures:
            summary["overridden_check_failures"] = list(result.check_failures)
        if "transform" in written:
            summary["transform_file"] = written["transform"].name
        provenance = Provenance("register")
        provenance.add("pair_check", **pair_check)
        provenance.add("register", registered=not result.skipped, **summary)
        provenance.add("write", outputs={k: Path(v).name for k, v in written.items()})
        record = provenance.record(
            output=out.name,
            inputs={"reference": volume_record(ref), "moving": volume_record(mov)},
            registration={"registered": not result.skipped, **summary},
            interpolation="nearest" if options.label_map else "linear",
            pair_check=pair_check,
            options=options.record(),
            overrides=options.overrides(summary, pair_check),
            outputs={k: Path(v).name for k, v in written.items()},
        )
        written["sidecar"] = write_sidecar(out, record, force=options.force)
    return written, result
