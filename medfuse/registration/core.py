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

   The head-mask Dice is computed and reported (:attr:`RegistrationResult.dice`), but it is
   not a check (nothing raises on a low Dice): head masks of different modalities do not outline the
   same thing (correct CT/PET/SPECT-to-MRI registrations give 0.75-0.85, the aligned PET template 0.81).

A failed check raises :class:`~medfuse.errors.RegistrationError` whose ``option`` is
``"accept_registration"`` (the pipeline's keyword; the command line renders it as its flag). Every check
can be overridden: with ``checks=False`` (what ``accept_registration`` passes) a failed check, before or
after the optimization, is logged as a warning, listed in :attr:`RegistrationResult.check_failures` and
recorded as ``"checks": "overridden"`` in the summary. The checks of the inputs (3D, not blank, finite)
cannot be overridden.

Volumes must be 3D: 2D slices (AANLIB pairs) are pre-aligned; use
:func:`~medfuse.registration.resample_to_reference` for them.

Modules: this one composes the stages (:func:`register`) and holds the settings and the result;
:mod:`~medfuse.registration.problem` the working copies, metric and optimizer;
:mod:`~medfuse.registration.stages` the input checks, the initialization and the optimization;
:mod:`~medfuse.registration.checks` the self-checks.

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
cylinder phantom, far optimizer starts): 27 refused. Benchmarks start the optimizer far from the
answer through :func:`register`'s ``start_ras``.
"""

from __future__ import annotations

import enum
import logging
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

import numpy as np

from medfuse.choices import REGISTRATION_TYPES
from medfuse.errors import RegistrationError
from medfuse.registration.checks import (
    bspline_failures,
    check_optimum,
    check_orientation,
    decompose_linear,
    fov_coverage,
    head_dice,
    overlap_failures,
    plausibility_failures,
    same_frame_of_reference,
)
from medfuse.registration.problem import Problem
from medfuse.registration.stages import check_inputs, initialize, log_name, optimize
from medfuse.registration.transform import matrix_ras
from medfuse.volume import Volume

__all__ = ["register", "RegistrationResult", "RegistrationSettings", "TransformType", "OVERRIDE_OPTION",
           "STAGE_PROGRESS"]

log = logging.getLogger(__name__)


#: What :func:`register` estimates: rigid (6 dof), affine (12 dof, after rigid), or affine then B-spline; its
#: members are :data:`medfuse.choices.REGISTRATION_TYPES` (``TransformType.RIGID == "rigid"``).
TransformType = enum.Enum("TransformType", {name.upper(): name for name in REGISTRATION_TYPES}, type=str,
                          module=__name__)


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
        messages: what was done, in words (for logs and reports); human text only, failures are not
            repeated here.
        check_failures: the messages of the self-checks that failed (only possible with
            ``checks=False``: with checks on, a failed check raises); always a list, empty when none
            failed or registration was skipped. The one place to read them.
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
# register(): its stages are in stages.py (inputs, start, fit) and checks.py (self-checks)

#: where each stage of :func:`register` starts, in percent of the whole, per transform type (its ``progress``):
#: shares measured with ``checks=False`` on 2 threads (TCGA FLAIR -> T1c rigid 5.4 s, a moved SPM PET -> T1 rigid
#: 7.6 s and B-spline 37 s): working copies ~20%, start and orientation ~7%, rigid optimization ~40%, checks
#: of the result ~17%, resampling ~3%; the B-spline stage takes most of a B-spline registration
STAGE_PROGRESS: dict[str, dict[str, int]] = {
    "rigid": {"working copies": 0, "initialization": 20, "rigid": 27, "checking the result": 75, "resampling": 95},
    "affine": {"working copies": 0, "initialization": 15, "rigid": 20, "affine": 45, "checking the result": 78,
               "resampling": 95},
    "bspline": {"working copies": 0, "initialization": 3, "rigid": 5, "affine": 15, "bspline": 30,
                "checking the result": 78, "resampling": 85},
}

#: the API keyword that overrides the self-checks (``fuse_files``/``fuse_volumes``' ``accept_registration``;
#: :func:`register`'s own ``checks=False``): the ``option`` of every failed-check :class:`RegistrationError`
OVERRIDE_OPTION = "accept_registration"


@dataclass
class _Verdicts:
    """What :func:`register` does with the failures its self-checks return: raise the first when the checks are
    enforced, else log each as a warning and keep it.

    Attributes:
        enforced: raise (the ``checks`` argument of :func:`register`).
        names: how errors name the pair (``"<moving> -> <reference>"``: the caller's names).
        log_names: how log lines name it (roles or opaque ids, never a path).
        failures: the failures kept (rendered text, the pair named as in errors).
    """

    enforced: bool
    names: str
    log_names: str
    failures: list[str] = field(default_factory=list)

    def apply(self, found: list[str]) -> None:
        """Act on the failure bodies one check returned (each names the override as ``errors.OPTION``).

        Raises:
            RegistrationError: the first of ``found``, with ``option`` :data:`OVERRIDE_OPTION`, when enforced.
        """
        for body in found:
            err = RegistrationError(f"{self.names}: {body}", option=OVERRIDE_OPTION)
            if self.enforced:
                raise err
            log.warning("registration check failed (checks overridden, continuing): %s: %s", self.log_names,
                        RegistrationError(body, option=OVERRIDE_OPTION).render())
            self.failures.append(err.render())


def _transform_type(transform) -> TransformType:
    """The :class:`TransformType` a name selects (case and surrounding spaces ignored).

    Raises:
        OptionError: an unknown name, with "did you mean ...".
    """
    try:
        return TransformType(str(transform).strip().lower())
    except ValueError:
        from medfuse.errors import look_up

        return TransformType(look_up(transform, [t.value for t in TransformType], "registration transform"))


def _skipped(reference: Volume, moving: Volume, interpolation: str, t0: float) -> RegistrationResult:
    """The result when both scans share one DICOM frame of reference: the identity, moving resampled in world
    coordinates (exact when they share voxel centres), logged at INFO."""
    import SimpleITK as sitk

    from medfuse.registration.resample import resample_to_reference

    msg = (f"{log_name(moving)} shares the DICOM frame of reference of {log_name(reference)} (hybrid scan): "
           "registration skipped, resampled in world coordinates")
    log.info(msg)
    identity = sitk.Transform(3, sitk.sitkIdentity)
    resampled = resample_to_reference(moving, reference, None, interpolation)
    result = RegistrationResult(identity, resampled, np.eye(4), "identity", skipped=True, messages=[msg],
                                elapsed_s=time.perf_counter() - t0)
    resampled.meta["registration"] = result.summary()
    return result


def register(
    reference: Volume,
    moving: Volume,
    *,
    transform: str = "rigid",
    label_map: bool = False,
    settings: RegistrationSettings | None = None,
    skip_same_frame: bool = True,
    checks: bool = True,
    start_ras: np.ndarray | None = None,
    progress: Callable[[int, str], None] | None = None,
) -> RegistrationResult:
    """Register ``moving`` (CT, PET, SPECT or MRI) onto ``reference`` (usually the MRI) and resample it.

    The stages: the inputs are checked (:func:`~medfuse.registration.stages.check_inputs`); the field-of-view
    overlap is checked; the start is chosen (:func:`~medfuse.registration.stages.initialize`) and its orientation
    checked; the transform is optimized (:func:`~medfuse.registration.stages.optimize`); the result is checked
    (:mod:`medfuse.registration.checks`); the moving scan is resampled onto the reference grid.

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
        checks: raise :class:`~medfuse.errors.RegistrationError` when a self-check fails; False (the pipeline's
            ``accept_registration``) logs each failure as a warning, lists it in
            :attr:`RegistrationResult.check_failures` and returns the result. The checks of the inputs
            (2D, blank, NaN) and a SimpleITK failure raise either way.
        start_ras: a (4, 4) reference->moving RAS matrix to start the rigid optimization from instead of the
            best initialization (benchmarks use it to test that a run started far from the answer is refused);
            the orientation check still compares with the best initialization's score.
        progress: called as ``progress(percent, stage)`` when each stage starts, ``percent`` the share of the
            registration done (0-99, from :data:`STAGE_PROGRESS`): the working copies, initialization, each
            optimization stage, checking the result, resampling. Not called when registration is skipped.

    Returns:
        A :class:`RegistrationResult`: the SimpleITK transform (reference LPS -> moving LPS), the
        resampled moving :class:`~medfuse.volume.Volume` (float32, reference shape and affine,
        moving's modality and meta plus ``meta["registration"]``), the 4x4 RAS matrix, metrics,
        the head-mask Dice (reported, not checked), timing, messages and the overridden check failures.

    Raises:
        RegistrationError: a blank or NaN scan (``role`` says which), or SimpleITK failed; and, unless
            ``checks=False``, a failed self-check (``option`` ``"accept_registration"``, named in the message as
            :data:`~medfuse.errors.OPTION`): too little overlap to start, an orientation error in a header, an
            implausible B-spline deformation, the metric got worse, an implausible rotation, shift or scale, or
            the result is no clear optimum of the metric. The message says which and what to do.
        UnsupportedInputError: 2D inputs (pre-aligned slices: use ``resample_to_reference``).
        OptionError: unknown ``transform`` (a ``ValueError``, with a suggestion).

    Example:
        >>> result = register(mri, ct)  # doctest: +SKIP
        >>> result.resampled.same_grid(mri)  # doctest: +SKIP
        True
    """
    t0 = time.perf_counter()
    kind = _transform_type(transform)
    s = settings or RegistrationSettings()
    interpolation = "nearest" if label_map else "linear"
    check_inputs(reference, moving)
    if skip_same_frame and same_frame_of_reference(reference, moving):
        return _skipped(reference, moving, interpolation, t0)

    def stage(name: str) -> None:
        if progress is not None:
            progress(STAGE_PROGRESS[kind.value][name], name)

    stage("working copies")
    p = Problem(reference, moving, s)
    verdicts = _Verdicts(bool(checks), f"{moving.name} -> {reference.name}",
                         f"{log_name(moving)} -> {log_name(reference)}")
    coverage = fov_coverage(p.ref, p.ref_mask, moving)
    verdicts.apply(overlap_failures(coverage, s))

    stage("initialization")
    start = initialize(p, start_ras)
    messages = list(start.messages)
    log.debug("%s: %s", verdicts.log_names, messages[-1])
    if s.check_orientation:
        found, message = check_orientation(p, start.center, start.c_mov_ras, start.score, start.transform)
        messages += [message] if message else []
        verdicts.apply(found)

    fit = optimize(p, start.transform, kind.value, verdicts.names, on_stage=stage)
    messages += fit.messages
    if kind == TransformType.BSPLINE:
        verdicts.apply(bspline_failures(fit.bspline_displacement_mm, s))
    stage("checking the result")
    metric_after = p.metric(fit.final)
    figures = decompose_linear(matrix_ras(fit.final), start.c_ref_ras)
    verdicts.apply(plausibility_failures(start.metric_before, metric_after, figures, s))
    quality: dict[str, float] = {}
    if s.check_optimum:
        known = metric_after if fit.linear is fit.final else None  # a linear result's metric: evaluated once
        found, message, quality = check_optimum(p, fit.linear, start.center, known)
        messages.append(message)
        verdicts.apply(found)
    stage("resampling")
    return _result(p, reference, moving, kind, fit, start, metric_after, figures, coverage, quality, messages,
                   verdicts, interpolation, t0)


def _result(p: Problem, reference: Volume, moving: Volume, kind: TransformType, fit, start, metric_after: float,
            figures: dict[str, float], coverage: float, quality: dict[str, float], messages: list[str],
            verdicts: _Verdicts, interpolation: str, t0: float) -> RegistrationResult:
    """The last stage: the head-mask Dice (reported), the moving scan resampled onto the reference grid through
    ``fit.final``, the summary line (logged at INFO) and the :class:`RegistrationResult`, whose summary is also
    stored in the resampled volume's ``meta["registration"]``."""
    from medfuse.registration.resample import resample_to_reference

    dice_value = head_dice(p, fit.final)
    resampled = resample_to_reference(moving, reference, fit.final, interpolation)
    elapsed = time.perf_counter() - t0
    messages.append(
        f"{kind.value} registration in {elapsed:.1f} s: MI {start.metric_before:.4f} -> {metric_after:.4f}, head Dice "
        f"{dice_value:.3f}, rotation {figures['rotation_deg']:.1f} deg, head centre moved "
        f"{figures['translation_mm']:.1f} mm"
    )
    log.info("%s: %s", verdicts.log_names, messages[-1])
    result = RegistrationResult(
        transform=fit.final,
        resampled=resampled,
        reference_to_moving_ras=matrix_ras(fit.final),
        transform_type=kind.value,
        metric_before=start.metric_before,
        metric_after=metric_after,
        dice=dice_value,
        coverage=coverage,
        rotation_deg=figures["rotation_deg"],
        translation_mm=figures["translation_mm"],
        scales=(figures["scale_min"], figures["scale_max"]),
        elapsed_s=elapsed,
        messages=messages,
        check_failures=list(verdicts.failures),
        checks_enforced=verdicts.enforced,
        quality=quality,
    )
    resampled.meta["registration"] = result.summary()
    return result
