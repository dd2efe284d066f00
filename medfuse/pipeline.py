"""The whole fusion of one case, composed from the steps' own modules.

    load -> register/resample -> normalize -> (colour split) -> fuse -> (colour merge) -> write + QC

:func:`fuse_volumes` works on :class:`~medfuse.volume.Volume` objects (the API, Slicer and the
MONAI transforms call it or its steps); :func:`fuse_files` adds reading, writing and the QC
picture (the CLI calls it). The fused result always has the reference's grid and affine.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from medfuse.errors import SpaceMismatchError
from medfuse.volume import Volume

__all__ = ["FusionResult", "fuse_volumes", "fuse_files", "prepare_pair", "default_method"]

log = logging.getLogger(__name__)


@dataclass
class FusionResult:
    """What :func:`fuse_volumes` returns.

    Attributes:
        fused: on the reference grid with the reference affine. 3D: float32 in [0, 1]. 2D: float32
            on 0..255, with ``rgb`` set when the moving slice was colour.
        reference: the normalized reference ([0, 1]).
        moving: the normalized moving scan on the reference grid ([0, 1]).
        method: the fusion method used.
        registration: the registration result, or None when the inputs were taken as aligned.
        timings: seconds per step.
    """

    fused: Volume
    reference: Volume
    moving: Volume
    method: str
    registration: object | None = None
    timings: dict[str, float] = field(default_factory=dict)


def default_method(moving: Volume) -> str:
    """The method used when none is given: the shipped network of the pair, else ``mean``."""
    from medfuse.fusion import pair_for_modality

    from medfuse.weights import default_network

    return default_network(pair_for_modality(moving.modality)) or "mean"


def prepare_pair(
    reference: Volume,
    moving: Volume,
    *,
    register: bool | None = None,
    registration_type: str = "rigid",
    window=None,
) -> tuple[Volume, Volume, object | None, dict[str, float]]:
    """Register (or resample) ``moving`` onto ``reference`` and normalize both to [0, 1].

    Args:
        register: True: register; False: only resample through the scanner coordinates (inputs
            already aligned); None (default): register 3D pairs unless both come from one DICOM
            frame of reference; never for 2D slices.
        registration_type: ``rigid`` (default: scans of one head differ by a rigid motion), ``affine``
            or ``bspline``.
        window: CT window preset name or ``(level, width)``.

    Returns:
        ``(reference_normalized, moving_normalized_on_reference_grid, registration_or_None, timings)``.
    """
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    result = None
    if reference.ndim == 2 or moving.ndim == 2:
        if reference.shape != moving.shape:
            raise SpaceMismatchError(
                f"{moving.name}: slice of shape {moving.shape} does not match the reference {reference.name} "
                f"{reference.shape}; 2D pairs must be pre-aligned slices of one size"
            )
        aligned = moving
    else:
        from medfuse import registration as reg

        if register is False:
            aligned = reg.resample_to_reference(moving, reference)
        else:  # register() itself skips scans that share one DICOM frame of reference (hybrid PET/CT)
            result = reg.register(reference, moving, transform=registration_type)
            aligned = result.resampled
    timings["register"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    from medfuse.intensity import normalize

    ref_n = normalize(reference)
    mov_n = normalize(aligned, window=window)
    timings["normalize"] = time.perf_counter() - t0
    return ref_n, mov_n, result, timings


def fuse_volumes(
    reference: Volume,
    moving: Volume,
    method: str | None = None,
    *,
    register: bool | None = None,
    registration_type: str = "rigid",
    weights: str | os.PathLike | None = None,
    window=None,
    device: str = "cpu",
) -> FusionResult:
    """Fuse ``moving`` into ``reference``'s geometry.

    Args:
        reference: the anatomical scan (MRI, or CT) whose grid the output keeps.
        moving: CT, PET, SPECT or another MRI (3D), or a pre-aligned 2D slice (gray or colour).
        method: a classical method or a network name; default :func:`default_method`.
        register, registration_type, window: see :func:`prepare_pair`.
        weights: network checkpoint (default: the shipped weights of the pair).
        device: torch device for networks.

    Returns:
        A :class:`FusionResult`; ``result.fused.affine`` equals ``reference.affine``.
    """
    from medfuse.color import merge_luminance, split_luminance
    from medfuse.fusion import fuse_arrays, pair_for_modality

    method = method or default_method(moving)
    ref_n, mov_n, reg_result, timings = prepare_pair(
        reference, moving, register=register, registration_type=registration_type, window=window
    )
    t0 = time.perf_counter()
    fused = fuse_arrays(
        ref_n.array, mov_n.array, method, weights=None if weights is None else str(weights),
        pair=pair_for_modality(moving.modality), device=device,
    )
    timings["fuse"] = time.perf_counter() - t0
    meta = {"fusion_method": method, "format": reference.meta.get("format")}
    if reference.ndim == 2:
        rgb = None
        if moving.rgb is not None:  # fused luminance with the functional image's chroma
            _, cb, cr = split_luminance(moving.rgb)
            rgb = merge_luminance(255.0 * fused, cb, cr).astype(np.float32)
        out = Volume(255.0 * fused, reference.affine, modality=reference.modality, meta=meta, rgb=rgb)
    else:
        out = Volume(fused, reference.affine, modality=reference.modality, meta=meta)
    log.debug("fused with %s in %.2f s (register %.2f s)", method, sum(timings.values()), timings["register"])
    return FusionResult(out, ref_n, mov_n, method, reg_result, timings)


def fuse_files(
    reference: str | os.PathLike,
    moving: str | os.PathLike,
    out: str | os.PathLike,
    method: str | None = None,
    *,
    force: bool = False,
    qc: str | os.PathLike | None | bool = True,
    register: bool | None = None,
    registration_type: str = "rigid",
    transform_out: str | os.PathLike | None = None,
    weights: str | os.PathLike | None = None,
    window=None,
    device: str = "cpu",
    reference_modality: str | None = None,
    moving_modality: str | None = None,
) -> dict[str, Path]:
    """Read two scans, fuse them and write the result (and a QC picture).

    Outputs are checked before any work (no overwrite without ``force``) and written atomically.

    Args:
        reference, moving: input paths (see :func:`medfuse.io.load_volume`).
        out: the fused output; its extension picks the format (``.nii.gz``, ``.nrrd``, ``.png``...).
        qc: True: write ``<out stem>_qc.png`` beside ``out``; a path: write it there; False/None: none.
        transform_out: where to save the registration transform (``.tfm``), if registered.
        The rest as in :func:`fuse_volumes`.

    Returns:
        ``{"fused": path, "qc": path, "transform": path}`` for what was written.
    """
    from medfuse.io import check_output, load_volume, save_volume
    from medfuse.io.atomic import full_suffix

    out = Path(out)
    qc_path = None
    if qc is True:
        qc_path = out.with_name(out.name[: -len(full_suffix(out))] + "_qc.png")
    elif qc:
        qc_path = Path(qc)
    for target in (out, qc_path, transform_out):
        if target is not None:
            check_output(target, force)

    ref = load_volume(reference, modality=reference_modality)
    mov = load_volume(moving, modality=moving_modality)
    if ref.ndim != mov.ndim:
        raise SpaceMismatchError(
            f"{moving}: a {mov.ndim}D image cannot be fused with the {ref.ndim}D reference {reference}; give two "
            "volumes or two slices"
        )
    if ref.ndim == 2 and full_suffix(out) not in (".png", ".tif", ".tiff", ".bmp"):
        log.info("2D slices written to %s as a one-slice volume (values 0..255)", out.name)
    result = fuse_volumes(
        ref, mov, method, register=register, registration_type=registration_type, weights=weights,
        window=window, device=device,
    )
    written = {"fused": save_volume(result.fused, out, force=force)}
    if transform_out is not None and result.registration is not None:
        from medfuse.registration import save_transform

        written["transform"] = save_transform(result.registration.transform, transform_out, force=force)
    if qc_path is not None:
        from medfuse.report.qc import save_qc_figure

        written["qc"] = save_qc_figure(result, qc_path, force=force)
    return written
