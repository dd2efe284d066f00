"""The working problem of one registration: downsampled copies, head masks, the metric and the optimizer.

:class:`Problem` holds what every stage of :func:`~medfuse.registration.register` shares: both scans
block-averaged to about ``working_spacing_mm`` and clipped to their 0.5-99.5th percentiles (as SimpleITK
images, LPS), the head masks, the dilated reference mask the metric samples inside, cached shrunk copies
for quick metric evaluations, Mattes mutual information (:meth:`Problem.metric`) and one multi-resolution
optimization stage (:meth:`Problem.optimize`).

The rigid-transform helpers build SimpleITK transforms about a centre given in LPS millimetres
(SimpleITK's world); :func:`rigid_from_ras` converts a RAS matrix (nibabel's world) explicitly.
"""

from __future__ import annotations

import itertools

import numpy as np

from medfuse.volume import Volume

__all__ = [
    "Problem",
    "to_lps",
    "working_copy",
    "rigid",
    "rigid_from_ras",
    "axis_rotation",
    "axis_rotations",
    "compose",
]

_RAS_TO_LPS = np.array([-1.0, -1.0, 1.0])


def to_lps(point_ras) -> tuple[float, ...]:
    """A RAS point (mm) as an LPS tuple (mm), the form SimpleITK takes (the same sign flip maps LPS to RAS)."""
    return tuple(float(v) for v in np.asarray(point_ras, dtype=np.float64) * _RAS_TO_LPS)


def working_copy(volume: Volume, spacing_mm: float) -> Volume:
    """``volume`` block-averaged to about ``spacing_mm`` per voxel (same world extent; the affine moves the
    origin to the centre of each block, so world positions stay exact)."""
    from medfuse.intensity.mask import block_mean

    factors = tuple(max(1, int(round(spacing_mm / s))) for s in volume.spacing)
    arr = block_mean(volume.array, factors)
    scale = np.diag([*map(float, factors), 1.0])
    scale[:3, 3] = (np.asarray(factors, dtype=np.float64) - 1.0) / 2.0
    return Volume(arr, volume.affine @ scale, volume.modality, dict(volume.meta), volume.source)


def _clipped(volume: Volume) -> np.ndarray:
    """The array clipped to its 0.5-99.5th percentiles (outliers would waste histogram bins)."""
    lo, hi = np.percentile(volume.array, [0.5, 99.5])
    return np.clip(volume.array, lo, hi)


def rigid(center_lps, rotation=None, translation=(0.0, 0.0, 0.0)):
    """A SimpleITK ``VersorRigid3DTransform`` about ``center_lps`` (mm) with a (3, 3) LPS rotation (default
    none) and an LPS translation (mm)."""
    import SimpleITK as sitk

    tx = sitk.VersorRigid3DTransform()
    tx.SetCenter(center_lps)
    if rotation is not None:
        tx.SetMatrix(tuple(float(v) for v in np.asarray(rotation).ravel()))
    tx.SetTranslation(tuple(float(v) for v in translation))
    return tx


def rigid_from_ras(matrix_ras: np.ndarray, center_lps):
    """A rigid transform about ``center_lps`` with the rotation (the nearest one, by SVD) and translation of a
    (4, 4) reference->moving RAS matrix, converted to LPS."""
    flip = np.diag(_RAS_TO_LPS)
    m = np.asarray(matrix_ras, dtype=np.float64)
    a = flip @ m[:3, :3] @ flip
    u, _, vt = np.linalg.svd(a)
    rot = u @ vt
    b = flip @ m[:3, 3]
    c = np.asarray(center_lps, dtype=np.float64)
    return rigid(center_lps, rot, a @ c + b - c)


def axis_rotation(axis: int, degrees: float) -> np.ndarray:
    """The (3, 3) rotation by ``degrees`` about coordinate axis ``axis`` (0, 1 or 2)."""
    t = np.radians(degrees)
    c, s = np.cos(t), np.sin(t)
    i, j = [k for k in range(3) if k != axis]
    r = np.eye(3)
    r[i, i] = r[j, j] = c
    r[i, j], r[j, i] = -s, s
    return r


def axis_rotations() -> list[np.ndarray]:
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


def compose(*transforms):
    """``transforms[0](transforms[1](... x))`` as one SimpleITK transform."""
    import SimpleITK as sitk

    return sitk.CompositeTransform(list(transforms))


class Problem:
    """The working images, masks and metric settings shared by every stage of one registration.

    Args:
        reference, moving: the scans (3D, RAS affines).
        settings: a :class:`~medfuse.registration.RegistrationSettings`.

    Attributes:
        s: the settings.
        ref, mov: the working copies (:func:`working_copy`, :class:`~medfuse.volume.Volume`, RAS).
        ref_mask, mov_mask: their head masks (boolean arrays).
        fixed, moving: the clipped working copies as SimpleITK images (LPS).
        fixed_mask: the reference head mask dilated by about 6 mm (SimpleITK uint8), where the metric samples.
    """

    def __init__(self, reference: Volume, moving: Volume, settings):
        from scipy import ndimage

        from medfuse.intensity.mask import bounding_box, head_mask
        from medfuse.io.sitk import to_sitk

        self.s = settings
        self.ref = working_copy(reference, settings.working_spacing_mm)
        self.mov = working_copy(moving, settings.working_spacing_mm)
        self.ref_mask = head_mask(self.ref)
        self.mov_mask = head_mask(self.mov)
        self.fixed = to_sitk(self.ref, _clipped(self.ref))
        self.moving = to_sitk(self.mov, _clipped(self.mov))
        iterations = max(1, int(round(6.0 / settings.working_spacing_mm)))  # ~6 mm: sample the head's edge too
        dilated = np.zeros(self.ref_mask.shape, np.uint8)  # 0/1, as sitkUInt8 directly
        if self.ref_mask.any():  # dilated on the head's box widened by the reach (nothing changes outside it)
            box = bounding_box(self.ref_mask, iterations)
            dilated[box] = ndimage.binary_dilation(self.ref_mask[box], iterations=iterations)
        self.fixed_mask = to_sitk(self.ref, dilated)
        self._shrunk: dict = {}

    def shrunk_images(self, factor: int):
        """``(fixed, moving, mask)`` block-averaged by ``factor`` (cached) for quick metric evaluations; the
        coarse copies that score starts are those shrunk by the first rigid pyramid factor (4: 8 mm)."""
        import SimpleITK as sitk

        if factor not in self._shrunk:
            fixed = sitk.BinShrink(self.fixed, [factor] * 3)
            moving = sitk.BinShrink(self.moving, [factor] * 3)
            mask = sitk.BinShrink(sitk.Cast(self.fixed_mask, sitk.sitkFloat32), [factor] * 3) > 0.5
            self._shrunk[factor] = (fixed, moving, sitk.Cast(mask, sitk.sitkUInt8))
        return self._shrunk[factor]

    def _method(self):
        import SimpleITK as sitk

        r = sitk.ImageRegistrationMethod()
        r.SetMetricAsMattesMutualInformation(numberOfHistogramBins=int(self.s.histogram_bins))
        r.SetInterpolator(sitk.sitkLinear)
        # gradients at the sampled points only: no gradient image of the whole scan per level/evaluation
        r.MetricUseFixedImageGradientFilterOff()
        r.MetricUseMovingImageGradientFilterOff()
        return r

    def metric(self, tx, coarse: bool = False, level: int = 1) -> float:
        """Mattes MI (negative, lower is better) of ``tx`` over all masked voxels of the working copies, of
        the coarse copies (``coarse``: shrunk by the first rigid pyramid factor) or of copies shrunk by
        ``level``; +inf when the images do not overlap enough to compute it."""
        if coarse:
            fixed, moving, mask = self.shrunk_images(max(1, int(self.s.rigid_shrink[0])))
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
                 learning_rate=None, bound=None) -> str:
        """Run one multi-resolution stage in place on ``tx`` (regular-step gradient descent, or L-BFGS-B with
        ``bound`` on each parameter); returns the optimizer's stop condition.

        Raises:
            RuntimeError: SimpleITK's, e.g. when too few samples overlap (the caller decides what it means).
        """
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

    def head_points_lps(self, step: int | None = None, count: int | None = None) -> np.ndarray:
        """LPS points (mm) of reference head-mask voxels of the working copy: every ``step``-th, or about
        ``count`` of them evenly spread."""
        idx = np.argwhere(self.ref_mask)
        if count is not None:
            step = max(1, len(idx) // count)
        idx = idx[:: step or 1]
        return self.ref.world_coordinates(idx) * _RAS_TO_LPS
