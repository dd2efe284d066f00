"""Step 2: put the moving scan on the reference grid (register, reorder or resample) and normalize both."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from medfuse.errors import SpaceMismatchError
from medfuse.pipeline.options import FusionOptions, Progress, RegistrationOptions, report_progress
from medfuse.volume import Volume

__all__ = ["PreparedPair", "align_pair", "prepare_pair"]

log = logging.getLogger("medfuse.pipeline")


@dataclass
class PreparedPair:
    """The pair ready to fuse.

    Attributes:
        reference: the normalized reference ([0, 1]).
        moving: the normalized moving scan on the reference grid ([0, 1]); ``meta["alignment"]`` says how it got
            there.
        registration: the :class:`~medfuse.registration.RegistrationResult`, or None when not registered.
        aligned: the moving scan on the reference grid in its own units (before normalization).
        alignment: how the moving scan was put on the reference grid, in words and figures (the sidecar's
            ``registration``): ``{"registered": bool, "reason": ...}`` plus the registration's summary.
        timings: seconds per step (``register``, ``normalize``).
        reference_mask: 3D: the reference's head mask (:func:`~medfuse.intensity.mask.head_mask` of the reference
            as read), computed once and shared by its normalization, the field-of-view step and the QC picture;
            None for 2D slices.
    """

    reference: Volume
    moving: Volume
    registration: object | None
    aligned: Volume
    alignment: dict[str, Any]
    timings: dict[str, float] = field(default_factory=dict)
    reference_mask: np.ndarray | None = field(default=None, repr=False)


def align_pair(reference: Volume, moving: Volume, options: RegistrationOptions | None = None, *,
               progress: Progress | None = None) -> tuple[Volume, object | None, dict[str, Any]]:
    """The moving scan on the reference grid, in its own units.

    Inputs that share one grid (the same voxel centres in world space, in any storage order:
    :mod:`medfuse.registration.grid`) are reordered exactly, not registered, unless ``options.register`` is True;
    ``register=False`` only resamples through the scanner coordinates; otherwise 3D pairs are registered
    (:func:`medfuse.registration.register`, which itself skips scans of one DICOM frame of reference). 2D slices are
    taken as pre-aligned.

    ``progress(percent, step)`` is called with 20 before registering and, while registering, with each of its
    stages (:func:`medfuse.registration.register`'s ``progress``) mapped onto 20-60.

    Returns:
        ``(aligned, registration_or_None, alignment)``: see :class:`PreparedPair`.

    Raises:
        SpaceMismatchError: 2D slices of different shapes.
        RegistrationError: a registration failed its self-checks and ``options.accept_registration`` is false.
    """
    options = options or FusionOptions()
    register = getattr(options, "register", None)
    if reference.ndim == 2 or moving.ndim == 2:
        if reference.shape != moving.shape:
            raise SpaceMismatchError(
                f"{moving.name}: a slice of shape {moving.shape} does not match the shape {reference.shape} of "
                f"{reference.name}; 2D pairs must be pre-aligned slices of one size", role="moving",
            )
        return moving, None, {"registered": False, "reason": "2D slices are taken as pre-aligned"}
    from medfuse import registration as reg

    if register is None and reg.same_voxel_centres(reference, moving):  # in any storage order
        aligned = reg.resample_to_reference(moving, reference)  # exact: axes permuted/flipped, not interpolated
        order = "" if reference.same_grid(moving) else ", stored in another axis order: reordered exactly"
        log.info("%s and %s share one grid: not registered (the register option registers them anyway)",
                 moving.name, reference.name)
        return aligned, None, {"registered": False, "reason": f"the inputs share one grid (the same voxel centres "
                                                              f"in world space{order}): taken as aligned"}
    if register is False:
        return reg.resample_to_reference(moving, reference), None, {
            "registered": False, "reason": "registration turned off: resampled through the scanner coordinates"}
    report_progress(progress, 20, "registering")

    def stage(percent: int, name: str) -> None:  # the registration's own stages, on 20-60 of the whole
        report_progress(progress, 20 + (40 * percent) // 100, f"registering: {name}")

    result = reg.register(reference, moving, transform=options.registration_type,
                          checks=not options.accept_registration,
                          skip_same_frame=register is None,  # register=True means register
                          progress=None if progress is None else stage)
    alignment = {"registered": not result.skipped, **result.summary()}
    if result.skipped:
        alignment["reason"] = "the inputs share one DICOM frame of reference: resampled in world coordinates"
    if result.check_failures:
        alignment["overridden_check_failures"] = list(result.check_failures)
    return result.resampled, result, alignment


def prepare_pair(reference: Volume, moving: Volume, options: RegistrationOptions | None = None, *,
                 progress: Progress | None = None, consume_reference: bool = False) -> PreparedPair:
    """Align ``moving`` onto ``reference`` (:func:`align_pair`) and normalize both to [0, 1].

    Args:
        reference, moving: the pair; their modalities must be known (:mod:`medfuse.modality`).
        options: ``register``, ``registration_type``, ``accept_registration`` and ``window`` are used.
        progress: called as ``progress(percent, step)``.
        consume_reference: the caller gives the reference's voxels up (it read them for this call): they are
            normalized in place, after registration and the head mask have used them (no second head volume).

    Returns:
        A :class:`PreparedPair`.
    """
    from medfuse.intensity import normalize
    from medfuse.intensity.mask import head_mask
    from medfuse.modality import require_modality

    options = options or FusionOptions()
    require_modality(reference, "reference")
    require_modality(moving, "moving")
    t0 = time.perf_counter()
    aligned, registration, alignment = align_pair(reference, moving, options, progress=progress)
    timings = {"register": time.perf_counter() - t0}
    t0 = time.perf_counter()
    report_progress(progress, 60, "normalizing")
    # one head mask of the reference per run: its normalization statistics, the field-of-view step and the QC picture
    ref_mask = head_mask(reference) if reference.ndim == 3 else None
    ref_n = normalize(reference, mask=ref_mask if ref_mask is not None and ref_mask.any() else None,
                      in_place=consume_reference)
    mov_n = normalize(aligned, window=getattr(options, "window", None))
    mov_n.meta["alignment"] = alignment
    timings["normalize"] = time.perf_counter() - t0
    return PreparedPair(ref_n, mov_n, registration, aligned, alignment, timings, ref_mask)
