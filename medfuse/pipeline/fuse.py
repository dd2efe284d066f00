"""Steps 3 and 4, and their composition: colourize a PET/SPECT volume, fuse, keep the reference's geometry.

:func:`fuse_volumes` composes the steps on :class:`~medfuse.volume.Volume` objects (the API, Slicer, the MONAI
transforms and batch runs call it): the pair check (it always runs; only ``options.accept_mismatch`` overrides
it), alignment and normalization (:mod:`medfuse.pipeline.align`), the colour policy (:mod:`medfuse.color`),
fusion (:func:`medfuse.fusion.fuse_arrays`) and, where the moving scan covers only part of the reference, a
feathered return to the reference alone (:mod:`medfuse.coverage`). Each step appends its entry to the result's
:class:`~medfuse.pipeline.provenance.Provenance`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from medfuse.pipeline.align import prepare_pair
from medfuse.pipeline.options import FusionOptions, Progress, report_progress
from medfuse.pipeline.provenance import Provenance
from medfuse.volume import Volume

__all__ = ["FusionResult", "fuse_volumes", "default_method", "quantitative_volume"]

log = logging.getLogger("medfuse.pipeline")


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
        alignment: how the moving scan was put on the reference grid, in words and figures (for the
            sidecar): ``{"registered": bool, "reason": ...}`` plus the registration summary.
        weights: the network checkpoint used (None for classical methods).
        quantitative: 3D only: the moving scan on the reference grid in its own units (float32,
            reference affine), in SUV when the PET metadata allow it; ``meta["units"]`` names the units.
        colour: for colour fusion, ``{"colormap", "range", "units", "rule"}``; None when the result is grey.
        ignored_options: the options that had no effect on this pair, each with why.
        pair_check: the pair check's record (:func:`medfuse.pair_check.check_pair`).
        options: the options it was made with.
        provenance: the steps as they ran (:class:`~medfuse.pipeline.provenance.Provenance`).
        reference_mask: 3D: the reference's head mask (:attr:`~medfuse.pipeline.align.PreparedPair.reference_mask`)
            for the QC picture; not written anywhere.
    """

    fused: Volume
    reference: Volume
    moving: Volume
    method: str
    registration: object | None = None
    timings: dict[str, float] = field(default_factory=dict)
    alignment: dict[str, Any] = field(default_factory=dict)
    weights: Path | None = None
    quantitative: Volume | None = None
    colour: dict[str, Any] | None = None
    ignored_options: list[str] = field(default_factory=list)
    pair_check: dict[str, Any] | None = None
    options: FusionOptions | None = None
    provenance: Provenance = field(default_factory=lambda: Provenance("fuse"))
    reference_mask: np.ndarray | None = field(default=None, repr=False)


def default_method(moving: Volume) -> str:
    """The method used when none is given: the pair's default in ``medfuse/weights/defaults.json``
    (chosen by ``benchmarks/quality.py`` on cross-validated folds), else ``mean``. A network default without torch
    installed gives the pair's classical method, with a warning naming the install command."""
    from medfuse.classical import CLASSICAL_METHODS
    from medfuse.fusion import pair_for_modality
    from medfuse.weights import default_method_for_pair, torch_available

    pair = pair_for_modality(moving.modality)
    preferred = default_method_for_pair(pair, with_torch=True)
    if preferred is not None and (preferred in CLASSICAL_METHODS or torch_available()):
        return preferred  # what the lookup without torch gives as well: defaults.json read once per fusion
    method = default_method_for_pair(pair) or "mean"
    if preferred and preferred != method:
        log.warning("the default method for %s is the network '%s', which needs PyTorch, not installed here: fusing "
                    "with '%s' (the best classical method) instead; for the network, pip install -e \".[networks]\" in "
                    "the medfuse source tree (README: PyTorch), or choose one with the method option", pair, preferred,
                    method)
    return method


def fuse_volumes(
    reference: Volume,
    moving: Volume,
    options: FusionOptions | None = None,
    *,
    progress: Progress | None = None,
    paths: tuple[Any, Any] | None = None,
    rgb_dtype: type = np.float32,
    consume_reference: bool = False,
) -> FusionResult:
    """Fuse ``moving`` into ``reference``'s geometry.

    Args:
        reference: the anatomical scan (MRI, or CT) whose grid the output keeps; its modality must be
            known (``reference.modality``, see :mod:`medfuse.modality`).
        moving: CT, PET, SPECT or another MRI (3D), or a pre-aligned 2D slice (gray or colour).
        options: every choice (:class:`~medfuse.pipeline.options.FusionOptions`; default: all defaults). PET and
            SPECT volumes go through ``options.colormap`` (default: the modality's AANLIB table, the networks'
            training colours) and their luminance is fused; CT and MR stay grey; 2D colour slices keep theirs.
        progress: called as ``progress(percent, step)`` at each step.
        paths: the paths the inputs were read from, for the pair check's file-name rule (never shown).
        rgb_dtype: ``np.uint8`` keeps a 3D colour result's ``fused.rgb`` as uint8 (a quarter of the memory of
            float32; :func:`~medfuse.pipeline.fuse_files` asks for it); values are the same.
        consume_reference: the caller gives ``reference``'s voxels up (read for this call, as
            :func:`~medfuse.pipeline.fuse_files` does): normalized in place, ``reference.array`` then holds the
            normalized values (a head volume less at the fusion peak).

    Returns:
        A :class:`FusionResult`; ``result.fused.affine`` equals ``reference.affine``. For colour
        fusion ``result.fused.rgb`` holds the RGB volume (0..255) and ``result.fused.array`` its
        luminance in [0, 1]; ``result.quantitative`` is the moving scan on the reference grid in its units.

    Raises:
        UnknownModalityError: an input's modality is unknown.
        PairMismatchError: wrong roles or different patients, and ``options.accept_mismatch`` is false.
        OptionError: weights given with a classical method.
        RegistrationError: see :func:`~medfuse.pipeline.align.align_pair`.
    """
    from medfuse.color import colormap_for, colour_record, fuse_in_colour
    from medfuse.fusion import available_methods, fuse_arrays, pair_for_modality
    from medfuse.hotspots import keep_hot_regions
    from medfuse.modality import require_modality
    from medfuse.pair_check import check_pair
    from medfuse.pipeline.load import role_label

    options = options or FusionOptions()
    require_modality(reference, "reference")
    require_modality(moving, "moving")
    provenance = Provenance("fuse")
    pair_check = check_pair(reference, moving, accept_mismatch=options.accept_mismatch, paths=paths,
                            names=(role_label("reference"), role_label("moving")))
    provenance.add("pair_check", **pair_check)
    method = options.method or default_method(moving)
    options.check_weights_for(method)  # the default method is known only now
    kind = available_methods()[method]
    colour_map = colormap_for(moving.modality, options.colormap) if moving.ndim == 3 and moving.rgb is None else None
    prepared = prepare_pair(reference, moving, options, progress=progress, consume_reference=consume_reference)
    ref_n, mov_n, timings = prepared.reference, prepared.moving, prepared.timings
    provenance.add("align", **prepared.alignment)
    provenance.add("normalize", reference=ref_n.meta.get("normalization"), moving=mov_n.meta.get("normalization"))
    report_progress(progress, 70, f"fusing with {method}")
    pair = pair_for_modality(moving.modality)
    weights_used = None
    if kind == "network":
        from medfuse.inference import shipped_weights_path

        weights_used = options.weights if options.weights is not None else shipped_weights_path(method, pair)
    ignored = _ignored_options(moving, mov_n, options, colour_map)

    t0 = time.perf_counter()
    hot = _hot_regions(mov_n, pair, method, options)
    if hot is not None:
        provenance.add("hot_regions", **hot.record())

    def fuse(moving01: np.ndarray) -> np.ndarray:
        fused01 = fuse_arrays(ref_n.array, moving01, method,
                              weights=None if options.weights is None else str(options.weights),
                              pair=pair, device=options.device, affine=reference.affine)
        if hot is not None:  # the functional scan's hottest regions stay visible (medfuse.hotspots)
            fused01 = keep_hot_regions(np.array(fused01, dtype=np.float32), moving01, hot)
        return fused01

    rgb = colour = None
    if mov_n.rgb is not None:  # a colour input (AANLIB slice): fused luminance with its own chroma
        fused, rgb = fuse_in_colour(mov_n.rgb, fuse)
    elif colour_map is not None:  # PET/SPECT volume: through the colour map, then the same path
        colour = colour_record(mov_n, colour_map)
        provenance.add("colour", **colour)
        # colour lookup, luminance split, fusion (in the same pass when voxelwise) and merge, uint8 RGB out
        fused, rgb = _fuse_colormapped_in_memory_order(ref_n.array, mov_n.array, colour_map, fuse, method,
                                                       voxelwise_allowed=hot is None)
    else:
        fused = fuse(mov_n.array)
    provenance.add("fuse", method=method, kind=kind, weights=None if weights_used is None else weights_used.name)
    if reference.ndim == 3:  # where the moving scan ends, the fused image turns into the reference, without an edge
        from medfuse.coverage import feather_uncovered, field_of_view

        fov = field_of_view(reference, moving,
                            None if prepared.registration is None else prepared.registration.transform,
                            head=prepared.reference_mask)
        inputs = [a for a in (ref_n.array, mov_n.array, mov_n.rgb) if a is not None]
        owned = not any(np.may_share_memory(a, b) for a in (fused, rgb) if a is not None for b in inputs)
        fused, rgb = feather_uncovered(fused, ref_n.array, fov.weight, rgb, in_place=owned)  # owned: made above
        fov.weight = None  # ~75 MB, no longer needed
        mov_n.meta["alignment"]["field_of_view"] = fov.record
        provenance.add("field_of_view", **fov.record)
        if fov.warning(moving.name):
            log.warning("%s", fov.warning(moving.name))
    timings["fuse"] = time.perf_counter() - t0
    out = _fused_volume(reference, fused, rgb, method, colour_map if colour else None, colour, rgb_dtype)
    quantitative = quantitative_volume(prepared.aligned, mov_n, reference) if reference.ndim == 3 else None
    log.debug("fused with %s in %.2f s (register %.2f s)", method, sum(timings.values()), timings["register"])
    return FusionResult(out, ref_n, mov_n, method, prepared.registration, timings,
                        dict(mov_n.meta.get("alignment", {})), weights_used, quantitative, colour, ignored,
                        pair_check, options, provenance, prepared.reference_mask)


def _hot_regions(mov_n, pair: str | None, method: str, options: FusionOptions):
    """The moving scan's hot regions when the floor of :mod:`medfuse.hotspots` applies, else None: a functional
    pair, ``options.keep_hot``, and a method that can dim them (``max`` never does: ``F >= B``). The uptake is the
    normalized scan's values, or, for a colour slice, its colours read back through their colour map."""
    from medfuse.hotspots import floor_applies, hot_regions, uptake_from_colours

    if not options.keep_hot or not floor_applies(pair, method):
        return None
    return uptake_from_colours(mov_n.rgb) if mov_n.rgb is not None else hot_regions(mov_n.array)


def _fuse_colormapped_in_memory_order(a: np.ndarray, b: np.ndarray, colour_map: str, fuse, method: str,
                                      voxelwise_allowed: bool = True):
    """:func:`~medfuse.color.fuse_colormapped` of ``b`` with ``a``, walking the voxels in the order they lie in memory.

    Volumes read from NIfTI and resampled by SimpleITK are Fortran-ordered; flattening them in C order would
    copy both (2 x 75 MB and ~0.8 s on a head grid). Their transposes are C-ordered views: fused there, the
    results are transposed back (the fused luminance Fortran-ordered, the RGB interleaved per voxel in Fortran
    order, as NIfTI stores RGB24). The same numbers either way (voxelwise operations, a network on ``y.T.T``).
    ``voxelwise_allowed=False``: ``fuse`` is called on the whole luminance volume even for a voxelwise method (it
    does more than the method: the hot floor).
    """
    from medfuse.color import fuse_colormapped
    from medfuse.fusion import voxelwise_fusion

    def fortran(x: np.ndarray) -> bool:
        return x.ndim == 3 and x.flags.f_contiguous and not x.flags.c_contiguous

    if not (fortran(a) and fortran(b)):
        return fuse_colormapped(b, colour_map, fuse, voxelwise=voxelwise_fusion(method, a) if voxelwise_allowed else None)
    fused_t, rgb_t = fuse_colormapped(b.T, colour_map, lambda y_t: np.asarray(fuse(y_t.T)).T,
                                      voxelwise=voxelwise_fusion(method, a.T) if voxelwise_allowed else None)
    return fused_t.T, rgb_t.transpose(2, 1, 0, 3)


def _fused_volume(reference: Volume, fused: np.ndarray, rgb, method: str, colour_map: str | None,
                  colour: dict | None, rgb_dtype) -> Volume:
    """The fused image as a Volume with the reference's affine (2D: 0..255; 3D: [0, 1], RGB as asked)."""
    from medfuse import __version__

    meta = {"fusion_method": method, "format": reference.meta.get("format"),
            "medfuse_description": f"medfuse {__version__} fused {method}" + (f" {colour_map}" if colour_map else "")}
    if colour is not None:
        meta["colour"] = colour
    if reference.ndim == 2:
        return Volume(255.0 * fused, reference.affine, modality=reference.modality, meta=meta, rgb=rgb)
    keep_uint8 = rgb is not None and rgb.dtype == np.uint8 and np.dtype(rgb_dtype) == np.uint8
    out = Volume(fused, reference.affine, modality=reference.modality, meta=meta, rgb=None if keep_uint8 else rgb)
    if keep_uint8:
        out.rgb = rgb  # Volume would store float32
    return out


def _ignored_options(moving: Volume, mov_n: Volume, options: FusionOptions, colour_map: str | None) -> list[str]:
    """The options that had no effect on this pair, each with why (logged as warnings; the sidecar lists them)."""
    notes = []
    alignment = mov_n.meta.get("alignment") or {}
    if options.registration_type != "rigid" and not alignment.get("registered"):
        notes.append(f"registration_type {options.registration_type}: not registered "
                     f"({alignment.get('reason', 'aligned')})")
    method = (mov_n.meta.get("normalization") or {}).get("method")
    if options.window is not None and method not in ("ct_window", "suv"):
        notes.append(f"window: the moving scan was normalized by '{method}', not through a window")
    if options.colormap is not None and colour_map is None and options.colormap != "gray":
        notes.append(f"colormap {options.colormap}: only PET/SPECT volumes are fused in colour; this "
                     f"{moving.modality or 'moving'} {'slice keeps its own colours' if moving.ndim == 2 else 'is grey'}")
    for note in notes:
        log.warning("option without effect: %s", note)
    return notes


def quantitative_volume(aligned: Volume, mov_n: Volume, reference: Volume) -> Volume:
    """The moving scan on the reference grid in its own units (SUV when the normalization computed it)."""
    from medfuse import __version__
    from medfuse.intensity.units import quantity_units

    record = mov_n.meta.get("normalization") or {}
    values = np.asarray(aligned.array, dtype=np.float32)
    if record.get("method") == "suv":
        values = (values.astype(np.float64) * float(record["suv_factor"])).astype(np.float32)
    units = quantity_units(aligned, mov_n)
    meta = {"units": units, "medfuse_description": f"medfuse {__version__} {aligned.modality} on reference grid, {units}"}
    return Volume(values, reference.affine, modality=aligned.modality, meta=meta)
