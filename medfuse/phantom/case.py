"""A phantom registration/fusion case: the MRI, the misaligned second scan and their ground truth."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from medfuse.errors import look_up
from medfuse.phantom.anatomy import HEAD_CENTER_MM, MARKER_CENTER_MM, load_anatomy
from medfuse.phantom.contrasts import MODALITIES, MOVING_T1_GRID
from medfuse.phantom.geometry import resolve_grid, rigid_matrix, three
from medfuse.phantom.render import label_volumes, make_volume
from medfuse.volume import Volume

__all__ = ["PhantomCase", "make_case"]


@dataclass
class PhantomCase:
    """One phantom registration/fusion case with its ground truth.

    Attributes:
        mri: T1 MRI on the reference grid (modality ``"MR"``, RAS axes); the reference scan.
        moving: the other scan on its own grid (``"CT"``, ``"PT"``, ``"NM"`` or ``"MR"``).
        modality: ``"ct"``, ``"pet"``, ``"spect"``, ``"t2"`` (or ``"t1"``).
        reference_to_moving: (4, 4) float64 map of reference-world RAS points to the moving scan's
            world RAS points showing the same anatomy (ground truth).
        brain_mask: float32 0/1 brain mask on the MRI grid.
        labels: float32 tissue labels on the MRI grid (see :data:`LABELS`).
        marker_center_mm: reference-world RAS position of the marker (``None`` without marker).
        seed: the seed the case was made from.
    """

    mri: Volume
    moving: Volume
    modality: str
    reference_to_moving: np.ndarray
    brain_mask: Volume
    labels: Volume
    marker_center_mm: np.ndarray | None = None
    seed: int = 0
    meta: dict = field(default_factory=dict)

    @property
    def moving_to_reference(self) -> np.ndarray:
        """The inverse transform: moving-world RAS points to reference-world RAS points."""
        return np.linalg.inv(self.reference_to_moving)

    def target_points(self, n: int = 200, seed: int = 0) -> np.ndarray:
        """``(n, 3)`` RAS mm points (reference world) uniformly spread inside the brain mask.

        Each point is a random brain-mask voxel of the MRI grid plus a uniform offset within that
        voxel, so the set is deterministic given ``seed``.
        """
        if int(n) < 1:
            raise ValueError(f"n must be a positive number of points; got {n!r}")
        rng = np.random.default_rng(seed)
        voxels = np.argwhere(self.brain_mask.array > 0.5)
        if len(voxels) == 0:
            raise ValueError("the phantom's brain mask is empty on this MRI grid; enlarge mri_shape")
        pick = voxels[rng.integers(0, len(voxels), size=int(n))]
        index = pick + rng.uniform(-0.5, 0.5, size=pick.shape)
        return self.mri.world_coordinates(index)

    def tre(self, estimated_reference_to_moving: np.ndarray, points: np.ndarray | None = None) -> np.ndarray:
        """Target registration error (mm) of an estimated transform, per point.

        Args:
            estimated_reference_to_moving: (4, 4) estimate of :attr:`reference_to_moving` (same
                direction: reference world to moving world, RAS mm).
            points: ``(N, 3)`` reference-world RAS points; default :meth:`target_points`.

        Returns:
            ``(N,)`` float64 distances ``|estimate @ p - truth @ p|`` in mm.
        """
        est = np.asarray(estimated_reference_to_moving, dtype=np.float64)
        if est.shape != (4, 4):
            raise ValueError(f"estimated_reference_to_moving must be 4x4; got shape {est.shape}")
        pts = self.target_points() if points is None else np.atleast_2d(np.asarray(points, dtype=np.float64))
        if pts.shape[1] != 3:
            raise ValueError(f"points must be (N, 3) RAS mm; got shape {pts.shape}")
        diff = (est[:3, :3] - self.reference_to_moving[:3, :3]) @ pts.T
        diff += (est[:3, 3] - self.reference_to_moving[:3, 3])[:, None]
        return np.linalg.norm(diff, axis=0)


def _draw(value, limit: float, rng: np.random.Generator, name: str) -> np.ndarray:
    """The given per-axis value, or a uniform draw in [-limit, limit] for each axis."""
    if value is None and not (np.isfinite(limit) and limit >= 0):
        raise ValueError(f"max_{name} must be a finite number >= 0; got {limit!r}")
    # always drawn, so a given rotation does not change the translation drawn from the same seed
    draw = rng.uniform(-1.0, 1.0, size=3) * (float(limit) if np.isfinite(limit) else 0.0)
    if value is None:
        return draw
    return three(value, name, positive=False)


def make_case(
    modality: str = "pet",
    seed: int = 0,
    *,
    rotation_deg=None,
    translation_mm=None,
    max_rotation_deg: float = 15.0,
    max_translation_mm: float = 20.0,
    mri_shape=None,
    mri_spacing=None,
    moving_shape=None,
    moving_spacing=None,
    moving_axes: str | None = None,
    marker: bool = True,
    noise: bool = True,
    blur: bool = True,
    anatomy: str = "auto",
) -> PhantomCase:
    """Make a deterministic MRI + ``modality`` case with a known rigid misalignment.

    Grids: the MRI is RAS-aligned, 1.5 mm isotropic, ``(128, 152, 120)``; the moving scan's defaults
    are in the module table. Given only a shape, a scan keeps its default field of view (square
    in-plane pixels on axes i, j; the slice axis k spans the default extent), e.g.
    ``mri_shape=(256, 256, 180)`` gives 0.89 x 0.89 x 1 mm and ``moving_shape=(512, 512, 120)`` for
    CT gives 0.47 x 0.47 x 1.8 mm. Given only a spacing, the shape covers the default field of
    view. Both grids are centred on the head.

    Args:
        modality: the moving scan: ``"ct"``, ``"pet"``, ``"spect"``, ``"t2"`` (or ``"t1"``).
        seed: makes everything deterministic: the misalignment, the noise, the bias fields.
        rotation_deg: ``(rx, ry, rz)`` degrees about the RAS axes through ``HEAD_CENTER_MM`` (a
            number means all three); ``None`` draws each uniformly in ``[-max_rotation_deg, +]``.
            Give 0 (and ``translation_mm=0``) for an aligned case.
        translation_mm: ``(tx, ty, tz)`` mm; ``None`` draws each in ``[-max_translation_mm, +]``.
        max_rotation_deg: bound of the random rotations.
        max_translation_mm: bound of the random translations.
        mri_shape: shape of the MRI grid.
        mri_spacing: voxel size (mm) of the MRI grid.
        moving_shape: shape of the moving grid.
        moving_spacing: voxel size (mm) of the moving grid.
        moving_axes: axis codes of the moving grid (default per modality, e.g. ``"LPS"`` for CT).
        marker: add the left-hemisphere lesion (label 6) to every scan.
        noise: add noise (and MR bias fields).
        blur: apply the scanners' resolution.
        anatomy: ``"auto"``, ``"mni152"`` or ``"analytic"`` (see :func:`make_volume`).

    Returns:
        A :class:`PhantomCase`; ``reference_to_moving`` maps reference (MRI) world RAS points to
        the moving scan's world RAS points (``q = R (p - c) + c + t``, see :func:`rigid_matrix`).

    Raises:
        ValueError: an unknown modality or anatomy, or a malformed shape/spacing/rotation.
    """
    name = look_up(modality, MODALITIES, "modality", ignore_case=True)
    seq = np.random.SeedSequence(int(seed))
    geometry_rng, mri_rng, moving_rng = (np.random.default_rng(s) for s in seq.spawn(3))
    rotation = _draw(rotation_deg, max_rotation_deg, geometry_rng, "rotation_deg")
    translation = _draw(translation_mm, max_translation_mm, geometry_rng, "translation_mm")
    ref_to_moving = rigid_matrix(rotation, translation, HEAD_CENTER_MM)

    anat = load_anatomy(anatomy)
    anatomy = anat.kind
    mri = make_volume("t1", mri_shape, mri_spacing, seed=mri_rng, marker=marker, noise=noise,
                      blur=blur, anatomy=anatomy)
    if name == "t1":  # a second T1 gets a grid of its own (sagittal), not the reference's
        moving_shape, moving_spacing = resolve_grid(MOVING_T1_GRID, moving_shape, moving_spacing)
        moving_axes = moving_axes or MOVING_T1_GRID.axes
    moving = make_volume(name, moving_shape, moving_spacing, axes=moving_axes, reference_to_scan=ref_to_moving,
                         seed=moving_rng, marker=marker, noise=noise, blur=blur, anatomy=anatomy)
    labels, brain_mask = label_volumes(anat, mri, marker)
    meta = {"rotation_deg": rotation.tolist(), "translation_mm": translation.tolist(),
            "center_mm": list(HEAD_CENTER_MM), "anatomy": anatomy}
    return PhantomCase(
        mri=mri,
        moving=moving,
        modality=name,
        reference_to_moving=ref_to_moving,
        brain_mask=brain_mask,
        labels=labels,
        marker_center_mm=np.asarray(MARKER_CENTER_MM, dtype=np.float64) if marker else None,
        seed=int(seed),
        meta=meta,
    )
