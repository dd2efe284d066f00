"""The stages of :func:`~medfuse.registration.register` before its self-checks: the inputs, the start, the fit.

- :func:`check_inputs`: both scans 3D, not blank, finite (raises; no override);
- :func:`initialize`: the rigid start, the best of three by the metric on the coarse copies (or one given);
- :func:`optimize`: rigid, then affine, then B-spline, as the transform type asks.

The self-checks are in :mod:`medfuse.registration.checks`; :mod:`medfuse.registration.core` composes them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from medfuse.errors import EmptyImageError, NonFiniteError, RegistrationError, UnsupportedInputError
from medfuse.registration.checks import head_centroid
from medfuse.registration.problem import Problem, rigid, rigid_from_ras, to_lps
from medfuse.volume import Volume

__all__ = ["check_inputs", "log_name", "Start", "initialize", "Fit", "optimize"]


def log_name(volume: Volume) -> str:
    """How log lines (and the messages kept with the result) name a volume: never its path (medfuse.io.naming)."""
    from medfuse.io.naming import source_name

    return source_name(volume.source) if volume.source else (volume.modality or "image")


def _check_input(volume: Volume, role: str) -> None:
    from medfuse.io import check_volume

    # name the role once: a volume read through a door is already named by its role
    who = volume.name if f"{role} scan" in volume.name else f"{volume.name}: the {role} scan"
    if volume.ndim != 3:
        raise UnsupportedInputError(
            f"{who} is {volume.ndim}D (shape {volume.shape}); registration needs 3D volumes. 2D slice pairs (e.g. "
            "Harvard AANLIB) are pre-aligned: put the moving slice on the reference grid with resample_to_reference() "
            "instead of registering it",
            role=role,
        )
    try:
        check_volume(volume)
    except EmptyImageError as err:
        raise RegistrationError(
            f"{who} is blank (every voxel is {float(volume.array.min()):g}); there is "
            "nothing to register. Check that the right file or series was exported",
            role=role,
        ) from err
    except NonFiniteError as err:
        detail = str(err).split(": ", 1)[-1] if str(err).startswith(volume.name) else str(err)
        raise RegistrationError(f"{who} has NaN/Inf voxels; {detail}", role=role) from err


def check_inputs(reference: Volume, moving: Volume) -> None:
    """Both scans must be 3D, not blank and finite.

    Raises:
        UnsupportedInputError: a 2D input (pre-aligned slices: use ``resample_to_reference``); ``role`` says which.
        RegistrationError: a blank (constant) scan, or one with NaN/Inf voxels; ``role`` says which.
    """
    _check_input(reference, "reference")
    _check_input(moving, "moving")


@dataclass
class Start:
    """Where the optimization starts.

    Attributes:
        transform: the rigid start (SimpleITK ``VersorRigid3DTransform``, reference LPS -> moving LPS).
        center: the reference head centroid, LPS mm (the centre of every rigid transform).
        c_ref_ras, c_mov_ras: the head centroids of the two scans, RAS mm.
        metric_before: the metric at the header alignment (working copies).
        score: the coarse metric of the best of the three initializations.
        messages: what was chosen, in words (the first begins ``initialization:``).
    """

    transform: Any
    center: tuple[float, ...]
    c_ref_ras: np.ndarray
    c_mov_ras: np.ndarray
    metric_before: float
    score: float
    messages: list[str] = field(default_factory=list)


def initialize(p: Problem, start_ras: np.ndarray | None = None) -> Start:
    """The rigid start: of the headers as they are, the geometric centres aligned (SimpleITK's
    ``CenteredTransformInitializer``, GEOMETRY) and the head-mask centroids aligned, the one with the best metric
    on the coarse copies; or ``start_ras`` (a (4, 4) reference->moving RAS matrix, converted to LPS) when given.

    Returns:
        A :class:`Start` (the three scores are in its message either way).
    """
    import SimpleITK as sitk

    c_ref_ras = head_centroid(p.ref, p.ref_mask)
    c_mov_ras = head_centroid(p.mov, p.mov_mask)
    center = to_lps(c_ref_ras)
    metric_before = p.metric(rigid(center))
    candidates = {"header": rigid(center)}
    geo = sitk.CenteredTransformInitializer(p.fixed, p.moving, sitk.VersorRigid3DTransform(),
                                            sitk.CenteredTransformInitializerFilter.GEOMETRY)
    candidates["geometry"] = rigid(center, translation=np.asarray(geo.TransformPoint(center)) - center)
    candidates["moments"] = rigid(center, translation=np.subtract(to_lps(c_mov_ras), center))
    scores = {name: p.metric(tx, coarse=True) for name, tx in candidates.items()}
    best = min(scores, key=scores.get)
    messages = [f"initialization: {best} (coarse MI " + ", ".join(f"{k} {v:.4f}" for k, v in scores.items()) + ")"]
    transform = candidates[best]
    if start_ras is not None:
        transform = rigid_from_ras(start_ras, center)
        messages.append("initialization: the given start (start_ras) instead")
    return Start(transform, center, c_ref_ras, c_mov_ras, metric_before, scores[best], messages)


@dataclass
class Fit:
    """What the optimization found.

    Attributes:
        final: the result (SimpleITK transform, reference LPS -> moving LPS; a composite for B-spline).
        linear: its rigid or affine part (the B-spline stage's initial transform).
        messages: each stage's stop condition, in words.
        bspline_displacement_mm: the largest B-spline displacement inside the head (0 without that stage).
    """

    final: Any
    linear: Any
    messages: list[str]
    bspline_displacement_mm: float = 0.0


def _bspline_stage(p: Problem, linear, messages: list[str]):
    """A bounded B-spline deformation after ``linear``; returns (the composite, its largest displacement in mm
    inside the head, on a subsample of the mask)."""
    import SimpleITK as sitk

    s = p.s
    extent = np.asarray(p.fixed.GetSize()) * np.asarray(p.fixed.GetSpacing())
    mesh = [max(1, int(round(e / s.bspline_grid_mm))) for e in extent]
    bspline = sitk.BSplineTransformInitializer(p.fixed, mesh, order=3)
    stop = p.optimize(bspline, (1,), (0.0,), s.bspline_iterations, (s.bspline_sampling_percentage,),
                      moving_initial=linear, optimizer="lbfgsb", bound=s.bspline_bound_mm)
    messages.append(f"bspline ({'x'.join(map(str, mesh))} mesh): {stop}")
    composite = sitk.CompositeTransform([linear, bspline])
    pts = p.head_points_lps(step=97)
    disp = max((np.linalg.norm(np.subtract(bspline.TransformPoint(tuple(q)), q)) for q in pts), default=0.0)
    messages.append(f"bspline: largest displacement in the head {disp:.1f} mm")
    return composite, float(disp)


def optimize(p: Problem, start, kind: str, names: str, on_stage: Callable[[str], None] | None = None) -> Fit:
    """Optimize from ``start`` (modified in place): rigid; for ``kind`` ``"affine"`` or ``"bspline"`` then an
    affine stage from the rigid result; for ``"bspline"`` then a bounded B-spline deformation.

    Args:
        p: the problem (its settings give each stage's pyramid, iterations and steps).
        start: the rigid start (:attr:`Start.transform`).
        kind: ``"rigid"``, ``"affine"`` or ``"bspline"``.
        names: how the error names the pair (``"<moving> -> <reference>"``).
        on_stage: called with ``"rigid"``, ``"affine"``, ``"bspline"`` as each stage starts (progress).

    Raises:
        RegistrationError: SimpleITK failed (usually too little overlap after the start).
    """
    import SimpleITK as sitk

    s = p.s
    messages: list[str] = []
    disp = 0.0
    on_stage = on_stage or (lambda name: None)
    try:
        on_stage("rigid")
        stop = p.optimize(start, s.rigid_shrink, s.rigid_smoothing_mm, s.rigid_iterations, s.sampling_percentage)
        messages.append(f"rigid: {stop}")
        final = start
        if kind in ("affine", "bspline"):
            on_stage("affine")
            affine = sitk.AffineTransform(3)
            affine.SetCenter(start.GetCenter())
            affine.SetMatrix(start.GetMatrix())
            affine.SetTranslation(start.GetTranslation())
            stop = p.optimize(affine, s.affine_shrink, s.affine_smoothing_mm, s.affine_iterations,
                              s.sampling_percentage, learning_rate=s.affine_learning_rate_mm)
            messages.append(f"affine: {stop}")
            final = affine
        linear = final
        if kind == "bspline":
            on_stage("bspline")
            final, disp = _bspline_stage(p, linear, messages)
    except RuntimeError as err:
        raise RegistrationError(
            f"{names}: SimpleITK registration failed ({str(err).strip().splitlines()[-1][:200]}); the scans probably "
            "overlap too little after the initial alignment. Check the headers or pre-align the scans"
        ) from err
    return Fit(final, linear, messages, disp)
