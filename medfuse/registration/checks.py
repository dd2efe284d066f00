"""Self-checks that turn silent registration failure into :class:`~medfuse.errors.RegistrationError`.

- :func:`fov_coverage`: the fraction of the reference head inside the moving field of view
  (checked before starting: at least half must be covered);
- :func:`decompose_linear`: rotation angle, scales and the displacement of the head centre of a
  4x4 reference->moving matrix (implausible beyond 30 degrees, 100 mm, scales outside 0.9-1.1);
- :func:`dice`: overlap of the reference head mask and the registered moving head mask (reported
  only: masks of different modalities do not outline the same thing, so it is no refusal
  criterion; the metric checks in :mod:`medfuse.registration.core` are);
- :func:`same_frame_of_reference`: hybrid PET/CT or PET/MR series share a DICOM frame of reference,
  so registering them is unnecessary.

The self-checks of :func:`~medfuse.registration.register` (see :mod:`medfuse.registration.core` for what
each one catches and how it was calibrated) return the failures they found as message bodies (what was
wrong and what to do, naming the override as :data:`~medfuse.errors.OPTION`); ``register`` prefixes the
pair's names and raises the first, or records them all when the checks are overridden:

- :func:`overlap_failures`: too little of the reference head inside the moving field of view (before starting);
- :func:`check_orientation`: an axis-aligned 90/180 degree rotation fits clearly better than the headers;
- :func:`bspline_failures`: an implausibly large B-spline displacement inside the head;
- :func:`plausibility_failures`: the metric got worse, or an implausible rotation, shift or scale;
- :func:`check_optimum`: the result is no clear optimum (basin), or a far start reaches a better one (rivals).
"""

from __future__ import annotations

import logging

import numpy as np

from medfuse.errors import OPTION
from medfuse.registration.problem import Problem, axis_rotation, axis_rotations, compose, rigid, to_lps
from medfuse.volume import Volume

__all__ = [
    "same_frame_of_reference",
    "fov_coverage",
    "decompose_linear",
    "dice",
    "head_centroid",
    "head_dice",
    "overlap_failures",
    "check_orientation",
    "bspline_failures",
    "plausibility_failures",
    "check_optimum",
]

log = logging.getLogger(__name__)


def same_frame_of_reference(reference: Volume, moving: Volume) -> bool:
    """True when both scans carry the same DICOM frame of reference (an opaque hash in
    ``meta["frame_of_reference"]``, set by the DICOM reader): a hybrid PET/CT or PET/MR pair whose
    world coordinates already agree, so registration is skipped (logged at INFO by the caller).

    False when either scan lacks the key (NIfTI, NRRD, PNG inputs).
    """
    a = reference.meta.get("frame_of_reference")
    b = moving.meta.get("frame_of_reference")
    return bool(a) and bool(b) and str(a) == str(b)


def fov_coverage(reference: Volume, mask: np.ndarray, moving: Volume, matrix_ras: np.ndarray | None = None) -> float:
    """Fraction of the ``mask`` voxels of ``reference`` whose centres fall inside ``moving``'s field of view.

    Args:
        reference: the grid ``mask`` lives on (RAS affine).
        mask: boolean array of ``reference.shape`` (the reference head).
        moving: the scan whose field of view (voxel centres +- half a voxel) is tested.
        matrix_ras: optional 4x4 reference->moving RAS matrix applied to the points first
            (identity: the headers' world coordinates as they are).

    Returns:
        A fraction in [0, 1] (0 when the mask is empty).
    """
    idx = np.argwhere(mask)
    if idx.size == 0:
        return 0.0
    if len(idx) > 200_000:
        idx = idx[:: len(idx) // 200_000 + 1]
    pts = np.c_[idx, np.zeros((len(idx), 3 - idx.shape[1])), np.ones(len(idx))] @ reference.affine.T
    if matrix_ras is not None:
        pts = pts @ np.asarray(matrix_ras, dtype=np.float64).T
    vox = pts @ np.linalg.inv(moving.affine).T
    shape = np.array(list(moving.shape) + [1] * (3 - moving.ndim), dtype=np.float64)
    inside = np.all((vox[:, :3] >= -0.5) & (vox[:, :3] <= shape - 0.5), axis=1)
    return float(inside.mean())


def head_centroid(volume: Volume, mask: np.ndarray) -> np.ndarray:
    """RAS millimetres of the centroid of ``mask`` on ``volume``'s grid (the grid's centre when it is empty).

    The mean voxel index from :func:`medfuse.intensity.mask.mean_index` (``np.argwhere(mask).mean(axis=0)`` to the
    last bit, without listing every voxel).
    """
    from medfuse.intensity.mask import mean_index

    if not np.any(mask):
        return volume.world_coordinates(np.array([[(n - 1) / 2.0 for n in volume.shape]]))[0]
    return volume.world_coordinates(mean_index(mask)[None])[0]


def decompose_linear(matrix: np.ndarray, center: np.ndarray) -> dict[str, float]:
    """Rotation angle, scales and centre displacement of a 4x4 homogeneous matrix.

    Args:
        matrix: (4, 4) reference->moving matrix (RAS or LPS: the numbers are the same).
        center: the point (same world) whose displacement is reported, e.g. the head centroid.

    Returns:
        ``{"rotation_deg", "scale_min", "scale_max", "translation_mm"}``: the angle of the rotation
        in the polar decomposition ``A = R S``, the extreme singular values of ``A`` and the
        distance the centre moves.
    """
    m = np.asarray(matrix, dtype=np.float64)
    a = m[:3, :3]
    u, s, vt = np.linalg.svd(a)
    r = u @ vt
    if np.linalg.det(r) < 0:  # a reflection: report it as 180 degrees, always implausible
        angle = 180.0
    else:
        angle = float(np.degrees(np.arccos(np.clip((np.trace(r) - 1.0) / 2.0, -1.0, 1.0))))
    c = np.asarray(center, dtype=np.float64)
    moved = a @ c + m[:3, 3]
    return {
        "rotation_deg": angle,
        "scale_min": float(s.min()),
        "scale_max": float(s.max()),
        "translation_mm": float(np.linalg.norm(moved - c)),
    }


def dice(a: np.ndarray, b: np.ndarray, region: np.ndarray | None = None) -> float:
    """Dice overlap ``2|A n B| / (|A| + |B|)`` of two boolean masks, optionally inside ``region``.

    Returns 0.0 when both are empty.
    """
    a = np.asarray(a, dtype=bool)
    b = np.asarray(b, dtype=bool)
    if region is not None:
        a = a & region
        b = b & region
    total = int(a.sum()) + int(b.sum())
    if total == 0:
        return 0.0
    return 2.0 * int(np.count_nonzero(a & b)) / total


# ----------------------------------------------------------------------------------------------
# self-checks of register(): each returns the failures it found as message bodies (see the module docstring)


def overlap_failures(coverage: float, settings) -> list[str]:
    """Before starting: the headers must place at least ``settings.min_overlap`` of the reference head inside the
    moving field of view (``coverage``, from :func:`fov_coverage`)."""
    if coverage >= settings.min_overlap:
        return []
    return [f"only {100 * coverage:.0f}% of the reference head lies inside the moving scan's field of view in world "
            f"coordinates (at least {100 * settings.min_overlap:.0f}% is needed to start). The headers do not place the "
            "scans over each other: check that both are the same subject and that their origin/orientation is right, "
            f"or pre-align them (or override the check with {OPTION})"]


def check_orientation(p: Problem, center, c_mov_ras, best_score: float, start_tx) -> tuple[list[str], str | None]:
    """Whether an axis-aligned 90/180 degree rotation fits clearly better than the headers' orientation.

    The 23 other axis-aligned rotations of the moving scan (about the reference head centre ``center``, LPS mm,
    with the head centroids ``c_mov_ras`` aligned) are scored on the coarse copies against ``best_score``, the
    coarse metric of the best initialization. When one is better by 5%, the header start (``start_tx``'s
    translation) and that rotation are both refined briefly, and the rotation wins when its metric is then 2%
    better.

    Returns:
        ``(failures, message)``: at most one failure (the rotation and both metrics, what to do), and the
        comparison in words when the refinement ran (else None).
    """
    import SimpleITK as sitk

    translation = np.subtract(to_lps(c_mov_ras), center)
    rotations = axis_rotations()[1:]
    scores = [p.metric(rigid(center, r, translation), coarse=True) for r in rotations]
    k = int(np.argmin(scores))
    margin = 0.05 * abs(best_score)
    if not scores[k] < best_score - margin:
        return [], None
    # a rotated start scores better: refine both briefly before concluding. The rotated start is a
    # fixed moving-initial transform with a rigid refinement near identity after it (a versor
    # cannot be optimized starting at 180 degrees)
    s = p.s
    shrink, smooth = s.rigid_shrink[:-1] or s.rigid_shrink, s.rigid_smoothing_mm[:-1] or s.rigid_smoothing_mm
    header = rigid(center, None, start_tx.GetTranslation())
    turn = rigid(center, rotations[k], translation)
    refine = rigid(center)
    for tx, initial in ((header, None), (refine, turn)):
        try:
            p.optimize(tx, shrink, smooth, 60, s.sampling_percentage, moving_initial=initial)
        except RuntimeError:
            pass
    rotated = sitk.CompositeTransform([turn, refine])
    m_header, m_rotated = p.metric(header), p.metric(rotated)
    message = f"orientation check: header orientation MI {m_header:.4f}, best axis rotation MI {m_rotated:.4f}"
    if not m_rotated < m_header - 0.02 * abs(m_header):
        return [], message
    angle = float(np.degrees(np.arccos(np.clip((np.trace(rotations[k]) - 1) / 2, -1, 1))))
    return [f"the moving scan matches the reference far better after a {angle:.0f} degree rotation about a coordinate "
            f"axis (MI {m_rotated:.4f} vs {m_header:.4f} as the headers place it): the orientation in one header is "
            "probably wrong (axes swapped or flipped), or the moving scan does not show a head. Fix the header, or "
            f"reorient the scan, then register (or override the check with {OPTION})"], message


def bspline_failures(displacement_mm: float, settings) -> list[str]:
    """The B-spline deformation may move no point of the head by more than
    ``settings.max_bspline_displacement_mm``."""
    if not displacement_mm > settings.max_bspline_displacement_mm:
        return []
    return [f"implausible B-spline deformation ({displacement_mm:.1f} mm inside the head, limit "
            f"{settings.max_bspline_displacement_mm:g} mm); use an affine transform or override the check ({OPTION})"]


def plausibility_failures(metric_before: float, metric_after: float, figures: dict[str, float], settings) -> list[str]:
    """After the optimization: the metric must not be worse than at the header alignment, and the linear part
    (``figures`` from :func:`decompose_linear`) must stay within ``settings``' rotation, head-centre displacement
    and scale limits. Returns every failure, in that order."""
    s = settings
    failures = []
    if not np.isfinite(metric_after) or metric_after > metric_before + 1e-3 * abs(metric_before):
        failures.append(f"registration made the mutual information worse ({metric_before:.4f} at the header "
                        f"alignment, {metric_after:.4f} after); the optimizer diverged. Check the inputs, use a rigid "
                        f"transform (the default), or override the check ({OPTION})")
    if figures["rotation_deg"] > s.max_rotation_deg:
        failures.append(f"implausible result: rotation of {figures['rotation_deg']:.1f} degrees (limit "
                        f"{s.max_rotation_deg:g}). Scans of one head rarely differ this much: check the orientation in "
                        f"the headers, or override the check ({OPTION})")
    if figures["translation_mm"] > s.max_translation_mm:
        failures.append(f"implausible result: the head centre moves by {figures['translation_mm']:.1f} mm (limit "
                        f"{s.max_translation_mm:g} mm). Check the origins in the headers, or pre-align the scans, or "
                        f"override the check ({OPTION})")
    lo, hi = s.scale_range
    if figures["scale_min"] < lo or figures["scale_max"] > hi:
        failures.append(f"implausible result: affine scales {figures['scale_min']:.3f}-{figures['scale_max']:.3f} "
                        f"(allowed {lo:g}-{hi:g}). Check the voxel sizes in the headers, use a rigid transform (the "
                        f"default), or override the check ({OPTION})")
    return failures


def check_optimum(p: Problem, final, center, metric: float | None = None) -> tuple[list[str], str, dict[str, float]]:
    """The result must be a clear optimum of the metric, and no far start may reach a clearly better one.

    1. Basin: the metric (copies shrunk by 2, every masked voxel) at 12 small perturbations of the
       result (shifts of ``basin_shift_mm`` along, rotations of ``basin_rotation_deg`` about each
       axis through the head centre) must be worse on average by ``min_basin_rise`` (relative).
       Scans that do not show the same anatomy give a flat landscape.
    2. Rivals: far starts around the result (shifts, rotations, the 23 axis-aligned rotations)
       are scored on the coarse copies; the ``rival_refine`` best are refined briefly. If one ends more
       than ``rival_distance_mm`` from the result with a metric better by ``rival_margin``, the
       optimizer stopped in a local optimum.

    Args:
        p: the problem; its settings hold the thresholds.
        final: the linear result (a SimpleITK transform, reference LPS -> moving LPS).
        center: the reference head centre (LPS mm).
        metric: ``p.metric(final)`` when the caller has it already (:func:`~medfuse.registration.register`'s
            ``metric_after`` of a linear result: the same evaluation, about 0.4 s on a 2 mm head, not repeated).

    Returns:
        ``(failures, message, quality)``: the failures (basin first), the figures in words, and the figures
        (``basin_rise``, ``basin_min_rise``, ``rival_coarse_gain``, ``rival_gain``, ``rival_distance_mm``).
    """
    s = p.s
    quality: dict[str, float] = {}
    m_final = p.metric(final) if metric is None else float(metric)
    scale = max(abs(m_final), 1e-6)
    # -- 1. basin
    perturbations = []
    for axis in range(3):
        for sign in (1.0, -1.0):
            shift = np.zeros(3)
            shift[axis] = sign * s.basin_shift_mm
            perturbations.append(rigid(center, None, shift))
            perturbations.append(rigid(center, axis_rotation(axis, sign * s.basin_rotation_deg)))
    m_half = p.metric(final, level=2)
    half_scale = max(abs(m_half), 1e-6)
    rises = np.array([(p.metric(compose(final, q), level=2) - m_half) / half_scale for q in perturbations])
    rises = np.where(np.isfinite(rises), rises, 1.0)
    quality["basin_rise"] = float(rises.mean())
    quality["basin_min_rise"] = float(rises.min())
    # -- 2. rivals
    starts = []
    for axis in range(3):
        for sign in (1.0, -1.0):
            for d in s.rival_shifts_mm:
                shift = np.zeros(3)
                shift[axis] = sign * d
                starts.append(rigid(center, None, shift))
            for a in s.rival_rotations_deg:
                starts.append(rigid(center, axis_rotation(axis, sign * a)))
    starts += [rigid(center, r) for r in axis_rotations()[1:]]
    coarse_final = p.metric(final, coarse=True)
    coarse = np.array([p.metric(compose(final, q), coarse=True) for q in starts])
    coarse_gain = (coarse_final - coarse) / max(abs(coarse_final), 1e-6)
    quality["rival_coarse_gain"] = float(coarse_gain.max())
    # only far starts that score nearly as well as the result on the coarse copies are worth refining
    order = [k for k in np.argsort(coarse)[: max(0, int(s.rival_refine))] if coarse_gain[k] > s.rival_coarse_gain]
    pts = [tuple(q) for q in p.head_points_lps(count=2000)] if order else []  # only refined starts need them
    at_final = np.array([final.TransformPoint(q) for q in pts])
    shrink, smooth = s.rigid_shrink[:-1] or s.rigid_shrink, s.rigid_smoothing_mm[:-1] or s.rigid_smoothing_mm
    best_gain, best_dist = -np.inf, 0.0
    for k in order:
        initial = compose(final, starts[k])
        refine = rigid(center)
        try:
            p.optimize(refine, shrink, smooth, 60, s.sampling_percentage, moving_initial=initial)
        except RuntimeError:
            continue
        alt = compose(final, starts[k], refine)
        gain = (m_final - p.metric(alt)) / scale
        dist = float(np.linalg.norm(np.array([alt.TransformPoint(q) for q in pts]) - at_final, axis=1).mean())
        if dist > s.rival_distance_mm and gain > best_gain:
            best_gain, best_dist = float(gain), dist
    quality["rival_gain"] = float(best_gain) if np.isfinite(best_gain) else float("nan")
    quality["rival_distance_mm"] = best_dist
    message = ("optimum check: metric {:.4f}; small perturbations worsen it by {:.1%} on average (least {:.1%}); best "
               "far start {}".format(m_final, quality["basin_rise"], quality["basin_min_rise"],
                                     "none" if not np.isfinite(best_gain) else f"{best_gain:+.1%} at {best_dist:.1f} mm"))
    failures = []
    if quality["basin_rise"] < s.min_basin_rise:
        failures.append(
            f"the result is not a clear optimum of the mutual information (moving it by {s.basin_shift_mm:g} mm or "
            f"{s.basin_rotation_deg:g} degrees changes the metric by only {100 * quality['basin_rise']:.2f}% on average, "
            f"at least {100 * s.min_basin_rise:.1f}% expected): the scans share too little structure to be aligned, e.g. "
            "the moving scan does not show the same anatomy. Check that both scans show the same head, or override the "
            f"check ({OPTION})")
    if np.isfinite(best_gain) and best_gain > s.rival_margin:
        failures.append(
            f"a different alignment, {best_dist:.0f} mm away on average over the head, fits clearly better (mutual "
            f"information {100 * best_gain:.1f}% better than the result): the optimizer stopped in a local optimum and "
            "the result is wrong. Check the headers' origin and orientation or pre-align the scans, or override the "
            f"check ({OPTION})")
    return failures, message, quality


def head_dice(p: Problem, tx) -> float:
    """Dice of the reference head mask and the moving head mask brought onto the reference working grid by ``tx``,
    inside the moving field of view: reported with the result, not a check (masks of different modalities do not
    outline the same thing)."""
    from medfuse.registration.resample import resample_to_reference

    # one resampling gives both: the interpolated mask (0..1) inside the moving field of view, -1 outside it
    # (ITK's linear and nearest-neighbour interpolators share the inside test, so this is the former
    # nearest-neighbour resampling of a volume of ones)
    moved = resample_to_reference(p.mov.with_array(p.mov_mask.astype(np.float32)), p.ref, tx, "linear",
                                  default_value=-1.0).array
    return dice(p.ref_mask, moved > 0.5, region=moved > -0.5)
