"""Multimodal rigid / affine (/ B-spline) registration of a moving scan onto the reference MRI.

SimpleITK's ``ImageRegistrationMethod`` does the optimization (Mattes mutual information,
multi-resolution with smoothing, regular-step gradient descent with scales from physical shift;
L-BFGS-B for the B-spline stage). medfuse adds what makes it fast and safe:

1. **Working copies.** Both scans are block-averaged to about ``working_spacing_mm`` (2 mm) and
   clipped to their 0.5-99.5th percentiles; the metric samples a random fraction of the voxels
   inside the (dilated) reference head mask. The full-resolution moving scan is resampled once,
   at the end.
2. **Checks before starting** (:class:`~medfuse.errors.RegistrationError`): a blank moving or
   reference scan; less than ``min_overlap`` (half) of the reference head inside the moving field
   of view in header (world) coordinates.
3. **Initialization.** Three rigid starts are compared by the metric on 8 mm copies: the headers
   as they are, the geometric centres aligned (``CenteredTransformInitializer``, GEOMETRY), and
   the centroids (first moments) of the two head masks aligned. Then rigid (``VersorRigid3DTransform``, the default result);
   ``transform="affine"`` adds an affine stage (``AffineTransform``) and ``"bspline"`` a B-spline
   deformation after it.
4. **Orientation check.** The 23 other axis-aligned 90/180 degree rotations are scored too; if one
   fits clearly better than the header orientation (also after a short rigid refinement of both),
   a header orientation error is reported instead of a locally optimal wrong answer (a scan that
   does not show a head, e.g. a CT of a QA phantom, is usually stopped here too).
5. **Checks after** (:class:`~medfuse.errors.RegistrationError`): the metric got worse than at
   the start; rotation > 30 degrees, head-centre displacement > 100 mm, or an affine scale outside
   0.9-1.1; a B-spline displacement over ``max_bspline_displacement_mm`` inside the head; and two
   tests of the result's metric against alternatives (``check_optimum``), which hold across
   modalities and fields of view because they compare the metric with itself:

   - **basin**: the result must be a clear optimum: the metric (on 4 mm copies) at 12 small
     perturbations (6 mm shifts along, 6 degree rotations about each axis) must be worse by at
     least ``min_basin_rise`` (8%) on average. Scans that share no structure (a different
     anatomy, a random blob) give a flat landscape;
   - **rivals**: far starts around the result (15 and 30 mm shifts, 15 and 30 degree rotations,
     the 23 axis rotations) are scored on 8 mm copies; those within 5% of the result's coarse
     metric (at most 3) are refined briefly, and one that ends more than 5 mm away with a metric
     2% better means the optimizer stopped in a local optimum.

   The head-mask Dice is still computed and reported (:attr:`RegistrationResult.dice`), but it is
   no longer a check: head masks of different modalities do not outline the same thing (correct
   CT/PET/SPECT-to-MRI registrations give 0.75-0.85, the aligned PET template 0.81).

Every check can be overridden: with ``checks=False`` (``--accept-registration`` on the command
line) a failed check, before or after the optimization, is logged as a warning, listed in
:attr:`RegistrationResult.check_failures` and recorded as ``"checks": "overridden"`` in the summary.

Volumes must be 3D: 2D slices (AANLIB pairs) are pre-aligned; use
:func:`~medfuse.registration.resample_to_reference` (``medfuse fuse --no-register``) for them.

Not detected: a left-right mirrored header (an improper transform no rotation can undo; heads are
nearly symmetric); errors of a few mm when the metric's own optimum is biased (e.g. the SPM PET
and T1 templates, whose mutual-information optimum lies about 2.4 mm from their construction
alignment).

Calibration (``benchmarks/registration.py``, results in ``benchmarks/results/registration.md``):
thresholds chosen on phantom seeds 0-2 and even template seeds, reported on the rest: see that
file for the per-source table (false alarms, detections, TRE, time).

Measured with ``benchmarks/registration.py`` (2 SimpleITK threads, shared 2-core machine): a
256x256x180 MRI with a 512x512x120 CT in 6.9-13.2 s wall (10.3 s with the new checks), with a
128x128x90 PET in 7.1-8.1 s (7.2 s); the checks add about 1 s to an accepted registration. Phantom
TRE (rigid) mean 0.08 mm CT, 0.23 mm PET, 0.30 mm SPECT; TCGA native T1/T2/FLAIR -> T1c within
0.43-0.76 mm of the reference tool. Self-checks on 44 correct cases (phantom, moved real templates,
a real patient): 0 refused; on 27 wrong ones (rotated, shifted or mirrored headers, a blob, a
cylinder phantom, far optimizer starts): 27 refused.
"""

from __future__ import annotations

import enum
import itertools
import logging
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from medfuse.errors import EmptyImageError, NonFiniteError, RegistrationError, UnsupportedInputError
from medfuse.volume import Volume

__all__ = ["register", "RegistrationResult", "RegistrationSettings", "TransformType"]

log = logging.getLogger(__name__)


class TransformType(str, enum.Enum):
    """What :func:`register` estimates: rigid (6 dof), affine (12 dof, after rigid), or affine then B-spline."""

    RIGID = "rigid"
    AFFINE = "affine"
    BSPLINE = "bspline"


@dataclass(frozen=True)
class RegistrationSettings:
    """Tuning of :func:`register` (JSON-serializable; the defaults meet the benchmark goals).

    Attributes:
        working_spacing_mm: scans are block-averaged to about this voxel size before registering.
        histogram_bins: Mattes mutual information bins.
        sampling_percentage: fraction of the masked reference voxels sampled per iteration, per
            level of the rigid pyramid (the affine stage uses the last ``len(affine_shrink)``).
        seed: random sampling seed (results are reproducible).
        rigid_shrink, rigid_smoothing_mm: pyramid of the rigid stage (shrink factors of the working
            copy, Gaussian sigma in mm per level).
        rigid_iterations, affine_iterations, bspline_iterations: iterations per level.
        affine_shrink, affine_smoothing_mm: pyramid of the affine stage.
        learning_rate_mm: largest optimizer step of the rigid stage (about mm of motion at the
            head surface); ``affine_learning_rate_mm`` that of the affine stage, which starts close.
        bspline_grid_mm: B-spline control point spacing.
        bspline_bound_mm: bound of each B-spline coefficient (L-BFGS-B box constraint): mutual
            information overfits a free deformation (on the rigid phantom a 50 mm grid without
            bounds adds about 3 mm of TRE; 80 mm and 2 mm add about 0.3-1 mm).
        bspline_sampling_percentage: metric sampling of the B-spline stage, which runs at the
            working resolution only (ITK's Mattes derivative costs samples x parameters: at 3%
            the stage takes 10-60 s on 2 threads).
        check_orientation: score the 23 other axis-aligned orientations (see the module docstring).
        min_overlap: least fraction of the reference head inside the moving field of view.
        check_optimum: run the two checks of the result's metric (see the module docstring).
        basin_shift_mm, basin_rotation_deg: the small perturbations of the result (6 shifts, 6
            rotations about the head centre) at which the metric must be worse.
        min_basin_rise: least mean relative worsening of the metric over those perturbations
            (a result on a flat metric landscape is not an alignment).
        rival_shifts_mm, rival_rotations_deg: far starts tried around the result (along and about
            each axis, both signs), with the 23 axis-aligned 90/180 degree rotations.
        rival_refine: how many of the best far starts (by the coarse metric) are refined ...
        rival_coarse_gain: ... if their coarse metric is at most this much (relative) worse than
            the result's (negative: worse); the others are not worth refining.
        rival_margin: a refined far start refuses the result when its metric is better by this
            fraction ...
        rival_distance_mm: ... and it lies this far from the result (mean displacement over the head).
        max_rotation_deg, max_translation_mm, scale_range: plausibility limits of the result.
        max_bspline_displacement_mm: largest plausible B-spline displacement inside the head.
    """

    working_spacing_mm: float = 2.0
    histogram_bins: int = 32
    sampling_percentage: tuple[float, ...] = (0.5, 0.25, 0.1)
    seed: int = 20240601
    rigid_shrink: tuple[int, ...] = (4, 2, 1)
    rigid_smoothing_mm: tuple[float, ...] = (4.0, 2.0, 0.0)
    rigid_iterations: int = 200
    affine_shrink: tuple[int, ...] = (2, 1)
    affine_smoothing_mm: tuple[float, ...] = (2.0, 0.0)
    affine_iterations: int = 100
    learning_rate_mm: float = 2.0
    affine_learning_rate_mm: float = 0.5
    bspline_grid_mm: float = 80.0
    bspline_iterations: int = 20
    bspline_bound_mm: float = 2.0
    bspline_sampling_percentage: float = 0.03
    check_orientation: bool = True
    min_overlap: float = 0.5
    check_optimum: bool = True
    basin_shift_mm: float = 6.0
    basin_rotation_deg: float = 6.0
    min_basin_rise: float = 0.08
    rival_shifts_mm: tuple[float, ...] = (15.0, 30.0)
    rival_rotations_deg: tuple[float, ...] = (15.0, 30.0)
    rival_refine: int = 3
    rival_coarse_gain: float = -0.05
    rival_margin: float = 0.02
    rival_distance_mm: float = 5.0
    max_rotation_deg: float = 30.0
    max_translation_mm: float = 100.0
    scale_range: tuple[float, float] = (0.9, 1.1)
    max_bspline_displacement_mm: float = 20.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class RegistrationResult:
    """What :func:`register` found.

    Attributes:
        transform: SimpleITK transform mapping reference LPS points (mm) to moving LPS points
            (SimpleITK registration / ITK transform file convention; write it with
            :func:`~medfuse.registration.save_transform`).
        resampled: the moving scan on the reference grid (reference shape and affine exactly).
        reference_to_moving_ras: (4, 4) the same mapping in RAS mm (for B-spline: its affine part).
        transform_type: ``"rigid"``, ``"affine"``, ``"bspline"``, or ``"identity"`` when skipped.
        metric_before, metric_after: Mattes mutual information (negative; lower is better) at the
            header alignment and at the result, on the working copies.
        dice: head-mask Dice after registration (inside the moving field of view).
        coverage: fraction of the reference head inside the moving field of view (header alignment).
        rotation_deg, translation_mm, scales: the plausibility figures of the linear part.
        elapsed_s: wall time of :func:`register`.
        skipped: True when both scans share a DICOM frame of reference and registration was skipped.
        messages: what was done, in words (for logs and reports).
        check_failures: the messages of the self-checks that failed (only possible with
            ``checks=False``: with checks on, a failed check raises).
        checks_enforced: False when :func:`register` ran with ``checks=False`` (the user overrode
            the self-checks).
        quality: the figures of the metric checks: ``basin_rise`` (mean relative worsening of the
            metric at small perturbations), ``basin_min_rise`` (the smallest), ``rival_gain``
            (relative improvement of the best refined far start; negative: the result is better)
            and ``rival_distance_mm`` (how far that start ended from the result).
    """

    transform: Any
    resampled: Volume
    reference_to_moving_ras: np.ndarray
    transform_type: str
    metric_before: float = float("nan")
    metric_after: float = float("nan")
    dice: float = float("nan")
    coverage: float = float("nan")
    rotation_deg: float = 0.0
    translation_mm: float = 0.0
    scales: tuple[float, float] = (1.0, 1.0)
    elapsed_s: float = 0.0
    skipped: bool = False
    messages: list[str] = field(default_factory=list)
    check_failures: list[str] = field(default_factory=list)
    checks_enforced: bool = True
    quality: dict[str, float] = field(default_factory=dict)

    def transform_points(self, points_ras: np.ndarray) -> np.ndarray:
        """Map (N, 3) reference RAS points (mm) to moving RAS points through :attr:`transform`
        (exact, B-spline included)."""
        pts = np.atleast_2d(np.asarray(points_ras, dtype=np.float64)) * [-1.0, -1.0, 1.0]
        out = np.array([self.transform.TransformPoint(tuple(p)) for p in pts])
        return out * [-1.0, -1.0, 1.0]

    def summary(self) -> dict[str, Any]:
        """JSON-safe numbers of the result (for ``meta["registration"]`` and reports)."""
        return {
            "transform_type": self.transform_type,
            "reference_to_moving_ras": np.round(self.reference_to_moving_ras, 6).tolist(),
            "metric_before": float(self.metric_before),
            "metric_after": float(self.metric_after),
            "dice": float(self.dice),
            "coverage": float(self.coverage),
            "rotation_deg": float(self.rotation_deg),
            "translation_mm": float(self.translation_mm),
            "scales": [float(v) for v in self.scales],
            "elapsed_s": float(self.elapsed_s),
            "skipped": bool(self.skipped),
            "checks": "enforced" if self.checks_enforced else "overridden",
            "check_failures": list(self.check_failures),
            "quality": {k: float(v) for k, v in self.quality.items()},
        }


# ----------------------------------------------------------------------------------------------
# helpers


def _to_lps(p: np.ndarray) -> tuple[float, ...]:
    return tuple(float(v) for v in np.asarray(p, dtype=np.float64) * [-1.0, -1.0, 1.0])


def _log_name(volume: Volume) -> str:
    """How log lines (and the messages kept with the result) name a volume: never its path (medfuse.io.naming)."""
    from medfuse.io.naming import source_name

    return source_name(volume.source) if volume.source else (volume.modality or "image")


def _check_input(volume: Volume, role: str) -> None:
    from medfuse.io import check_volume

    # name the role once: through the pipeline the name is already "the moving scan (--moving)"
    who = volume.name if f"{role} scan" in volume.name else f"{volume.name}: the {role} scan"
    if volume.ndim != 3:
        raise UnsupportedInputError(
            f"{who} is {volume.ndim}D (shape {volume.shape}); registration needs 3D volumes. "
            "2D slice pairs (e.g. Harvard AANLIB) are pre-aligned: use resample_to_reference() or "
            "`medfuse fuse --no-register`"
        )
    try:
        check_volume(volume)
    except EmptyImageError as err:
        raise RegistrationError(
            f"{who} is blank (every voxel is {float(volume.array.min()):g}); there is "
            "nothing to register. Check that the right file or series was exported"
        ) from err
    except NonFiniteError as err:
        detail = str(err).split(": ", 1)[-1] if str(err).startswith(volume.name) else str(err)
        raise RegistrationError(f"{who} has NaN/Inf voxels; {detail}") from err


def _working(volume: Volume, spacing_mm: float) -> Volume:
    """Block-averaged copy at about ``spacing_mm`` (same world extent, exact affine)."""
    from medfuse.intensity.mask import block_mean

    factors = tuple(max(1, int(round(spacing_mm / s))) for s in volume.spacing)
    arr = block_mean(volume.array, factors)
    scale = np.diag([*map(float, factors), 1.0])
    scale[:3, 3] = (np.asarray(factors, dtype=np.float64) - 1.0) / 2.0
    return Volume(arr, volume.affine @ scale, volume.modality, dict(volume.meta), volume.source)


def _clipped(volume: Volume) -> np.ndarray:
    lo, hi = np.percentile(volume.array, [0.5, 99.5])
    return np.clip(volume.array, lo, hi)


def _rigid(center_lps, rotation=None, translation=(0.0, 0.0, 0.0)):
    import SimpleITK as sitk

    tx = sitk.VersorRigid3DTransform()
    tx.SetCenter(center_lps)
    if rotation is not None:
        tx.SetMatrix(tuple(float(v) for v in np.asarray(rotation).ravel()))
    tx.SetTranslation(tuple(float(v) for v in translation))
    return tx


def _axis_rotations() -> list[np.ndarray]:
    """The 24 proper rotations that map coordinate axes onto coordinate axes (identity first)."""
    out = [np.eye(3)]
    for perm in itertools.permutations(range(3)):
        for signs in itertools.product((1.0, -1.0), repeat=3):
            m = np.zeros((3, 3))
            for row, col in enumerate(perm):
                m[row, col] = signs[row]
            if np.linalg.det(m) > 0 and not np.allclose(m, np.eye(3)):
                out.append(m)
    return out


class _Problem:
    """The working images, masks and metric settings shared by every stage of one registration."""

    def __init__(self, reference: Volume, moving: Volume, settings: RegistrationSettings):
        import SimpleITK as sitk
        from scipy import ndimage

        from medfuse.intensity.mask import head_mask
        from medfuse.io.sitk import to_sitk

        self.s = settings
        self.ref = _working(reference, settings.working_spacing_mm)
        self.mov = _working(moving, settings.working_spacing_mm)
        self.ref_mask = head_mask(self.ref)
        self.mov_mask = head_mask(self.mov)
        self.fixed = to_sitk(self.ref, _clipped(self.ref))
        self.moving = to_sitk(self.mov, _clipped(self.mov))
        iterations = max(1, int(round(6.0 / settings.working_spacing_mm)))  # ~6 mm: sample the head's edge too
        dilated = ndimage.binary_dilation(self.ref_mask, iterations=iterations)
        self.fixed_mask = sitk.Cast(to_sitk(self.ref, dilated.astype(np.float32)), sitk.sitkUInt8)
        self.coarse = None
        self._shrunk: dict = {}

    def coarse_images(self):
        """8 mm copies (factor 4 of the working copies) for scoring initial transforms."""
        import SimpleITK as sitk

        if self.coarse is None:
            f = max(1, int(self.s.rigid_shrink[0]))
            fixed = sitk.BinShrink(self.fixed, [f] * 3)
            moving = sitk.BinShrink(self.moving, [f] * 3)
            mask = sitk.BinShrink(sitk.Cast(self.fixed_mask, sitk.sitkFloat32), [f] * 3) > 0.5
            self.coarse = (fixed, moving, sitk.Cast(mask, sitk.sitkUInt8))
        return self.coarse

    def _method(self):
        import SimpleITK as sitk

        r = sitk.ImageRegistrationMethod()
        r.SetMetricAsMattesMutualInformation(numberOfHistogramBins=int(self.s.histogram_bins))
        r.SetInterpolator(sitk.sitkLinear)
        # gradients at the sampled points only: no gradient image of the whole scan per level/evaluation
        r.MetricUseFixedImageGradientFilterOff()
        r.MetricUseMovingImageGradientFilterOff()
        return r

    def shrunk_images(self, factor: int):
        """Copies block-averaged by ``factor`` (working, mask) for quick metric evaluations."""
        import SimpleITK as sitk

        if factor not in self._shrunk:
            fixed = sitk.BinShrink(self.fixed, [factor] * 3)
            moving = sitk.BinShrink(self.moving, [factor] * 3)
            mask = sitk.BinShrink(sitk.Cast(self.fixed_mask, sitk.sitkFloat32), [factor] * 3) > 0.5
            self._shrunk[factor] = (fixed, moving, sitk.Cast(mask, sitk.sitkUInt8))
        return self._shrunk[factor]

    def metric(self, tx, coarse: bool = False, level: int = 1) -> float:
        """Mattes MI (negative, lower is better) of ``tx`` over all masked voxels (of the working
        copies, of the coarse copies, or of copies shrunk by ``level``); +inf when the images do
        not overlap enough to compute it."""
        if coarse:
            fixed, moving, mask = self.coarse_images()
        elif level > 1:
            fixed, moving, mask = self.shrunk_images(int(level))
        else:
            fixed, moving, mask = self.fixed, self.moving, self.fixed_mask
        r = self._method()
        r.SetMetricSamplingStrategy(r.NONE)
        r.SetMetricFixedMask(mask)
        r.SetInitialTransform(tx, inPlace=False)
        try:
            return float(r.MetricEvaluate(fixed, moving))
        except RuntimeError:
            return float("inf")

    def optimize(self, tx, shrink, smoothing, iterations, sampling, moving_initial=None, optimizer="rsgd",
                 learning_rate=None, bound=None):
        """Run one multi-resolution stage in place on ``tx``; returns the optimizer's stop condition."""
        r = self._method()
        r.SetMetricSamplingStrategy(r.RANDOM)
        pct = list(sampling)[-len(shrink):] if len(sampling) >= len(shrink) else [sampling[-1]] * len(shrink)
        r.SetMetricSamplingPercentagePerLevel([float(p) for p in pct], int(self.s.seed))
        r.SetMetricFixedMask(self.fixed_mask)
        if optimizer == "lbfgsb":
            r.SetOptimizerAsLBFGSB(
                gradientConvergenceTolerance=1e-5,
                numberOfIterations=int(iterations),
                maximumNumberOfCorrections=5,
                maximumNumberOfFunctionEvaluations=2 * int(iterations),
                costFunctionConvergenceFactor=1e7,
                **({} if bound is None else {"lowerBound": -float(bound), "upperBound": float(bound)}),
            )
        else:
            r.SetOptimizerAsRegularStepGradientDescent(
                learningRate=float(self.s.learning_rate_mm if learning_rate is None else learning_rate),
                minStep=1e-3,
                numberOfIterations=int(iterations),
                relaxationFactor=0.5,
                gradientMagnitudeTolerance=1e-8,
            )
            r.SetOptimizerScalesFromPhysicalShift()
        r.SetShrinkFactorsPerLevel([int(v) for v in shrink])
        r.SetSmoothingSigmasPerLevel([float(v) for v in smoothing])
        r.SmoothingSigmasAreSpecifiedInPhysicalUnitsOn()
        if moving_initial is not None:
            r.SetMovingInitialTransform(moving_initial)
        r.SetInitialTransform(tx, inPlace=True)
        r.Execute(self.fixed, self.moving)
        return r.GetOptimizerStopConditionDescription()


# ----------------------------------------------------------------------------------------------


def register(
    reference: Volume,
    moving: Volume,
    *,
    transform: str = "rigid",
    label_map: bool = False,
    settings: RegistrationSettings | None = None,
    skip_same_frame: bool = True,
    checks: bool = True,
) -> RegistrationResult:
    """Register ``moving`` (CT, PET, SPECT or MRI) onto ``reference`` (usually the MRI) and resample it.

    Args:
        reference: the fixed 3D scan; the output keeps its grid and affine.
        moving: the 3D scan to align (any voxel size and field of view).
        transform: ``"rigid"`` (default), ``"affine"`` (rigid, then affine) or ``"bspline"`` (rigid,
            affine, then a B-spline deformation). Rigid is the default because scans of one head
            differ by a rigid motion, and mutual information biases the extra affine degrees of
            freedom: on the phantom benchmark, affine CT->MRI has a mean TRE of about 0.9 mm
            against 0.1 mm for rigid (it scales the CT by about 1%). Use ``"affine"`` for scanners
            with a known scaling error.
        label_map: ``moving`` is a label map: resample it with nearest neighbour (else linear).
        settings: tuning (:class:`RegistrationSettings`); the defaults meet the benchmark goals.
        skip_same_frame: when both scans share a DICOM frame of reference (hybrid PET/CT, PET/MR),
            skip registration (logged at INFO) and only resample in world coordinates.
        checks: raise :class:`~medfuse.errors.RegistrationError` when a self-check fails (else log
            a warning and return the result; for benchmarks and debugging).

    Returns:
        A :class:`RegistrationResult`: the SimpleITK transform (reference LPS -> moving LPS), the
        resampled moving :class:`~medfuse.volume.Volume` (float32, reference shape and affine,
        moving's modality and meta plus ``meta["registration"]``), the 4x4 RAS matrix, metrics,
        Dice, timing and messages.

    Raises:
        RegistrationError: a blank scan, too little overlap to start, the metric got worse, an
            implausible result, low head-mask Dice, or an orientation error in a header (the
            message says which and what to do).
        UnsupportedInputError: 2D inputs (pre-aligned slices: use ``resample_to_reference``).
        ValueError: unknown ``transform`` (with a suggestion).

    Example:
        >>> result = register(mri, ct)  # doctest: +SKIP
        >>> result.resampled.same_grid(mri)  # doctest: +SKIP
        True
    """
    import SimpleITK as sitk

    from medfuse.registration.checks import decompose_linear, dice, fov_coverage, head_centroid, same_frame_of_reference
    from medfuse.registration.resample import resample_to_reference
    from medfuse.registration.transform import matrix_ras

    t0 = time.perf_counter()
    try:
        kind = TransformType(str(transform).strip().lower())
    except ValueError:
        from medfuse.errors import look_up

        # raises with "did you mean ..."
        kind = TransformType(look_up(transform, [t.value for t in TransformType], "registration transform"))
    s = settings or RegistrationSettings()
    interpolation = "nearest" if label_map else "linear"
    _check_input(reference, "reference")
    _check_input(moving, "moving")
    messages: list[str] = []

    check_failures: list[str] = []

    def fail(message: str) -> None:
        if checks:
            raise RegistrationError(message)
        log.warning("registration check failed (checks overridden, continuing): %s",
                    message.replace(names, log_names))
        messages.append("CHECK FAILED: " + message)
        check_failures.append(message)

    if skip_same_frame and same_frame_of_reference(reference, moving):
        msg = (f"{_log_name(moving)} shares the DICOM frame of reference of {_log_name(reference)} (hybrid scan): "
               "registration skipped, resampled in world coordinates")
        log.info(msg)
        identity = sitk.Transform(3, sitk.sitkIdentity)
        resampled = resample_to_reference(moving, reference, None, interpolation)  # exact when same voxel centres
        result = RegistrationResult(identity, resampled, np.eye(4), "identity", skipped=True, messages=[msg],
                                    elapsed_s=time.perf_counter() - t0)
        resampled.meta["registration"] = result.summary()
        return result

    p = _Problem(reference, moving, s)
    names = f"{moving.name} -> {reference.name}"
    log_names = f"{_log_name(moving)} -> {_log_name(reference)}"  # for log lines: a role or an opaque id, never a path

    # -- check: the headers must place the moving scan over at least half of the reference head
    coverage = fov_coverage(p.ref, p.ref_mask, moving)
    if coverage < s.min_overlap:
        fail(
            f"{names}: only {100 * coverage:.0f}% of the reference head lies inside the moving scan's field of view "
            f"in world coordinates (at least {100 * s.min_overlap:.0f}% is needed to start). The headers do not place "
            "the scans over each other: check that both are the same subject and that their origin/orientation is "
            "right, or pre-align them (or override the check with --accept-registration)"
        )

    c_ref_ras = head_centroid(p.ref, p.ref_mask)
    c_mov_ras = head_centroid(p.mov, p.mov_mask)
    center = _to_lps(c_ref_ras)
    identity_tx = _rigid(center)
    metric_before = p.metric(identity_tx)

    # -- initialization: header, geometric centres, head-mask moments; scored on 8 mm copies
    candidates = {"header": _rigid(center)}
    geo = sitk.CenteredTransformInitializer(p.fixed, p.moving, sitk.VersorRigid3DTransform(),
                                            sitk.CenteredTransformInitializerFilter.GEOMETRY)
    candidates["geometry"] = _rigid(center, translation=np.asarray(geo.TransformPoint(center)) - center)
    candidates["moments"] = _rigid(center, translation=np.subtract(_to_lps(c_mov_ras), center))
    scores = {name: p.metric(tx, coarse=True) for name, tx in candidates.items()}
    start = min(scores, key=scores.get)
    rigid = candidates[start]
    messages.append(f"initialization: {start} (coarse MI " + ", ".join(f"{k} {v:.4f}" for k, v in scores.items()) + ")")
    if _FORCED_START_RAS is not None:  # benchmark hook: a start far from the answer
        rigid = _rigid_from_ras(_FORCED_START_RAS, center)
        messages.append("initialization: forced start (benchmark hook)")
    log.debug("%s: %s", log_names, messages[-1])

    if s.check_orientation:
        _check_orientation(p, center, c_mov_ras, scores[start], rigid, names, fail, messages)

    try:
        stop = p.optimize(rigid, s.rigid_shrink, s.rigid_smoothing_mm, s.rigid_iterations, s.sampling_percentage)
        messages.append(f"rigid: {stop}")
        final = rigid
        if kind in (TransformType.AFFINE, TransformType.BSPLINE):
            affine = sitk.AffineTransform(3)
            affine.SetCenter(rigid.GetCenter())
            affine.SetMatrix(rigid.GetMatrix())
            affine.SetTranslation(rigid.GetTranslation())
            stop = p.optimize(affine, s.affine_shrink, s.affine_smoothing_mm, s.affine_iterations,
                              s.sampling_percentage, learning_rate=s.affine_learning_rate_mm)
            messages.append(f"affine: {stop}")
            final = affine
        linear = final
        if kind == TransformType.BSPLINE:
            final = _bspline_stage(p, linear, messages, fail)
    except RuntimeError as err:
        raise RegistrationError(
            f"{names}: SimpleITK registration failed ({str(err).strip().splitlines()[-1][:200]}); the scans probably "
            "overlap too little after the initial alignment. Check the headers or pre-align the scans"
        ) from err

    metric_after = p.metric(final)
    m_ras = matrix_ras(final)
    figures = decompose_linear(m_ras, c_ref_ras)

    # -- checks after registration
    if not np.isfinite(metric_after) or metric_after > metric_before + 1e-3 * abs(metric_before):
        fail(f"{names}: registration made the mutual information worse ({metric_before:.4f} at the header alignment, "
             f"{metric_after:.4f} after); the optimizer diverged. Check the inputs, use a rigid transform (--registration rigid), or override the "
             "check (--accept-registration)")
    if figures["rotation_deg"] > s.max_rotation_deg:
        fail(f"{names}: implausible result: rotation of {figures['rotation_deg']:.1f} degrees (limit "
             f"{s.max_rotation_deg:g}). Scans of one head rarely differ this much: check the orientation in the "
             "headers, or override the check (--accept-registration)")
    if figures["translation_mm"] > s.max_translation_mm:
        fail(f"{names}: implausible result: the head centre moves by {figures['translation_mm']:.1f} mm (limit "
             f"{s.max_translation_mm:g} mm). Check the origins in the headers, or pre-align the scans, or override the check "
             "(--accept-registration)")
    lo, hi = s.scale_range
    if figures["scale_min"] < lo or figures["scale_max"] > hi:
        fail(f"{names}: implausible result: affine scales {figures['scale_min']:.3f}-{figures['scale_max']:.3f} "
             f"(allowed {lo:g}-{hi:g}). Check the voxel sizes in the headers, or use a rigid transform (--registration "
             "rigid)")

    quality: dict[str, float] = {}
    if s.check_optimum:
        _check_optimum(p, linear, center, names, fail, messages, quality)

    dice_value = _head_dice(p, final, resample_to_reference, dice)  # reported, not a check (see the docstring)

    resampled = resample_to_reference(moving, reference, final, interpolation)
    elapsed = time.perf_counter() - t0
    messages.append(
        f"{kind.value} registration in {elapsed:.1f} s: MI {metric_before:.4f} -> {metric_after:.4f}, head Dice "
        f"{dice_value:.3f}, rotation {figures['rotation_deg']:.1f} deg, head centre moved "
        f"{figures['translation_mm']:.1f} mm"
    )
    log.info("%s: %s", log_names, messages[-1])
    result = RegistrationResult(
        transform=final,
        resampled=resampled,
        reference_to_moving_ras=m_ras,
        transform_type=kind.value,
        metric_before=metric_before,
        metric_after=metric_after,
        dice=dice_value,
        coverage=coverage,
        rotation_deg=figures["rotation_deg"],
        translation_mm=figures["translation_mm"],
        scales=(figures["scale_min"], figures["scale_max"]),
        elapsed_s=elapsed,
        messages=messages,
        check_failures=check_failures,
        checks_enforced=bool(checks),
        quality=quality,
    )
    resampled.meta["registration"] = result.summary()
    return result


def _check_orientation(p: _Problem, center, c_mov_ras, best_score, start_tx, names, fail, messages) -> None:
    """Raise when an axis-aligned 90/180 degree rotation fits clearly better than the headers' orientation."""
    translation = np.subtract(_to_lps(c_mov_ras), center)
    rotations = _axis_rotations()[1:]
    scores = [p.metric(_rigid(center, r, translation), coarse=True) for r in rotations]
    k = int(np.argmin(scores))
    margin = 0.05 * abs(best_score)
    if not scores[k] < best_score - margin:
        return
    # a rotated start scores better: refine both briefly before concluding. The rotated start is a
    # fixed moving-initial transform with a rigid refinement near identity after it (a versor
    # cannot be optimized starting at 180 degrees)
    import SimpleITK as sitk

    s = p.s
    shrink, smooth = s.rigid_shrink[:-1] or s.rigid_shrink, s.rigid_smoothing_mm[:-1] or s.rigid_smoothing_mm
    header = _rigid(center, None, start_tx.GetTranslation())
    turn = _rigid(center, rotations[k], translation)
    refine = _rigid(center)
    for tx, initial in ((header, None), (refine, turn)):
        try:
            p.optimize(tx, shrink, smooth, 60, s.sampling_percentage, moving_initial=initial)
        except RuntimeError:
            pass
    rotated = sitk.CompositeTransform([turn, refine])
    m_header, m_rotated = p.metric(header), p.metric(rotated)
    messages.append(f"orientation check: header orientation MI {m_header:.4f}, best axis rotation MI {m_rotated:.4f}")
    if m_rotated < m_header - 0.02 * abs(m_header):
        angle = float(np.degrees(np.arccos(np.clip((np.trace(rotations[k]) - 1) / 2, -1, 1))))
        fail(f"{names}: the moving scan matches the reference far better after a {angle:.0f} degree rotation about a "
             f"coordinate axis (MI {m_rotated:.4f} vs {m_header:.4f} as the headers place it): the orientation in one "
             "header is probably wrong (axes swapped or flipped), or the moving scan does not show a head. Fix the header, or "
             "reorient the scan, then register (or override the check with --accept-registration)")


#: benchmark hook: when set, a (4, 4) reference->moving RAS matrix used as the rigid start instead
#: of the best initialization (to test that a run started far from the answer is refused).
_FORCED_START_RAS: np.ndarray | None = None


def _rigid_from_ras(matrix_ras: np.ndarray, center_lps):
    """A VersorRigid3DTransform about ``center_lps`` with the rotation/translation of a RAS matrix."""
    flip = np.diag([-1.0, -1.0, 1.0])
    m = np.asarray(matrix_ras, dtype=np.float64)
    a = flip @ m[:3, :3] @ flip
    u, _, vt = np.linalg.svd(a)
    rot = u @ vt
    b = flip @ m[:3, 3]
    c = np.asarray(center_lps, dtype=np.float64)
    return _rigid(center_lps, rot, a @ c + b - c)


def _axis_rotation(axis: int, degrees: float) -> np.ndarray:
    t = np.radians(degrees)
    c, s = np.cos(t), np.sin(t)
    i, j = [k for k in range(3) if k != axis]
    r = np.eye(3)
    r[i, i] = r[j, j] = c
    r[i, j], r[j, i] = -s, s
    return r


def _compose(*transforms):
    """``transforms[0](transforms[1](... x))`` as one SimpleITK transform."""
    import SimpleITK as sitk

    return sitk.CompositeTransform(list(transforms))


def _check_optimum(p: _Problem, final, center, names, fail, messages, quality) -> None:
    """The result must be a clear optimum of the metric, and no far start may reach a clearly better one.

    1. Basin: the metric (working copies, every masked voxel) at 12 small perturbations of the
       result (shifts of ``basin_shift_mm`` along, rotations of ``basin_rotation_deg`` about each
       axis through the head centre) must be worse on average by ``min_basin_rise`` (relative).
       Scans that do not show the same anatomy give a flat landscape.
    2. Rivals: far starts around the result (shifts, rotations, the 23 axis-aligned rotations)
       are scored on 8 mm copies; the ``rival_refine`` best are refined briefly. If one ends more
       than ``rival_distance_mm`` from the result with a metric better by ``rival_margin``, the
       optimizer stopped in a local optimum.
    """
    s = p.s
    m_final = p.metric(final)
    scale = max(abs(m_final), 1e-6)
    # -- 1. basin
    perturbations = []
    for axis in range(3):
        for sign in (1.0, -1.0):
            shift = np.zeros(3)
            shift[axis] = sign * s.basin_shift_mm
            perturbations.append(_rigid(center, None, shift))
            perturbations.append(_rigid(center, _axis_rotation(axis, sign * s.basin_rotation_deg)))
    m_half = p.metric(final, level=2)
    half_scale = max(abs(m_half), 1e-6)
    rises = np.array([(p.metric(_compose(final, q), level=2) - m_half) / half_scale for q in perturbations])
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
                starts.append(_rigid(center, None, shift))
            for a in s.rival_rotations_deg:
                starts.append(_rigid(center, _axis_rotation(axis, sign * a)))
    starts += [_rigid(center, r) for r in _axis_rotations()[1:]]
    coarse_final = p.metric(final, coarse=True)
    coarse = np.array([p.metric(_compose(final, q), coarse=True) for q in starts])
    coarse_gain = (coarse_final - coarse) / max(abs(coarse_final), 1e-6)
    quality["rival_coarse_gain"] = float(coarse_gain.max())
    # only far starts that score nearly as well as the result on the coarse copies are worth refining
    order = [k for k in np.argsort(coarse)[: max(0, int(s.rival_refine))] if coarse_gain[k] > s.rival_coarse_gain]
    idx = np.argwhere(p.ref_mask)
    idx = idx[:: max(1, len(idx) // 2000)]
    pts = [tuple(q) for q in p.ref.world_coordinates(idx) * [-1.0, -1.0, 1.0]]
    at_final = np.array([final.TransformPoint(q) for q in pts])
    shrink, smooth = s.rigid_shrink[:-1] or s.rigid_shrink, s.rigid_smoothing_mm[:-1] or s.rigid_smoothing_mm
    best_gain, best_dist = -np.inf, 0.0
    for k in order:
        initial = _compose(final, starts[k])
        refine = _rigid(center)
        try:
            p.optimize(refine, shrink, smooth, 60, s.sampling_percentage, moving_initial=initial)
        except RuntimeError:
            continue
        alt = _compose(final, starts[k], refine)
        gain = (m_final - p.metric(alt)) / scale
        dist = float(np.linalg.norm(np.array([alt.TransformPoint(q) for q in pts]) - at_final, axis=1).mean())
        if dist > s.rival_distance_mm and gain > best_gain:
            best_gain, best_dist = float(gain), dist
    quality["rival_gain"] = float(best_gain) if np.isfinite(best_gain) else float("nan")
    quality["rival_distance_mm"] = best_dist
    messages.append("optimum check: metric {:.4f}; small perturbations worsen it by {:.1%} on average (least "
                    "{:.1%}); best far start {}".format(
                        m_final, quality["basin_rise"], quality["basin_min_rise"],
                        "none" if not np.isfinite(best_gain) else f"{best_gain:+.1%} at {best_dist:.1f} mm"))
    if quality["basin_rise"] < s.min_basin_rise:
        fail(f"{names}: the result is not a clear optimum of the mutual information (moving it by "
             f"{s.basin_shift_mm:g} mm or {s.basin_rotation_deg:g} degrees changes the metric by only "
             f"{100 * quality['basin_rise']:.2f}% on average, at least {100 * s.min_basin_rise:.1f}% expected): the "
             "scans share too little structure to be aligned, e.g. the moving scan does not show the same anatomy. "
             "Check that both scans show the same head, or override the check (--accept-registration)")
    if np.isfinite(best_gain) and best_gain > s.rival_margin:
        fail(f"{names}: a different alignment, {best_dist:.0f} mm away on average over the head, fits clearly better "
             f"(mutual information {100 * best_gain:.1f}% better than the result): the optimizer stopped in a local "
             "optimum and the result is wrong. Check the headers' origin and orientation or pre-align the scans, "
             "or override the check (--accept-registration)")


def _bspline_stage(p: _Problem, linear, messages, fail):
    import SimpleITK as sitk

    s = p.s
    extent = np.asarray(p.fixed.GetSize()) * np.asarray(p.fixed.GetSpacing())
    mesh = [max(1, int(round(e / s.bspline_grid_mm))) for e in extent]
    bspline = sitk.BSplineTransformInitializer(p.fixed, mesh, order=3)
    stop = p.optimize(bspline, (1,), (0.0,), s.bspline_iterations, (s.bspline_sampling_percentage,),
                      moving_initial=linear, optimizer="lbfgsb", bound=s.bspline_bound_mm)
    messages.append(f"bspline ({'x'.join(map(str, mesh))} mesh): {stop}")
    composite = sitk.CompositeTransform([linear, bspline])
    # largest displacement of the deformation inside the head (on a subsample of the mask)
    idx = np.argwhere(p.ref_mask)[::97]
    pts = p.ref.world_coordinates(idx) * [-1.0, -1.0, 1.0]
    disp = max((np.linalg.norm(np.subtract(bspline.TransformPoint(tuple(q)), q)) for q in pts), default=0.0)
    messages.append(f"bspline: largest displacement in the head {disp:.1f} mm")
    if disp > s.max_bspline_displacement_mm:
        fail(
            f"{p.mov.name} -> {p.ref.name}: implausible B-spline deformation ({disp:.1f} mm inside the head, limit "
            f"{s.max_bspline_displacement_mm:g} mm); use an affine transform (--registration affine) or override "
            "the check (--accept-registration)"
        )
    return composite


def _head_dice(p: _Problem, tx, resample_to_reference, dice) -> float:
    """Dice of the reference head mask and the registered moving head mask, inside the moving field of view."""
    moved = resample_to_reference(p.mov.with_array(p.mov_mask.astype(np.float32)), p.ref, tx, "linear",
                                  default_value=0.0).array > 0.5
    fov = resample_to_reference(p.mov.with_array(np.ones(p.mov.shape, np.float32)), p.ref, tx, "nearest",
                                default_value=0.0).array > 0.5
    return dice(p.ref_mask, moved, region=fov)

