"""A deterministic digital brain phantom: MRI, CT, PET and SPECT of one head with a known misalignment.

The phantom gives tests, ``medfuse demo`` and the registration benchmarks realistic 3D cases whose
ground truth is known exactly: an MRI (the reference scan) and a second scan on its own grid
(different voxel size, field of view and axis order), rigidly misaligned by a transform drawn from
``seed``.

Anatomy
    The ICBM 2009a nonlinear symmetric MNI152 template (T1 and gray/white matter probability maps) that nilearn
    ships inside its package (``nilearn/datasets/data/mni_icbm152_*``; read with nibabel, nilearn is
    never imported and nothing is downloaded). The brain mask is the template's (T1 > 0); CSF is the
    part of the brain mask that is neither gray nor white matter (ventricles, sulci) plus a 2.5 mm
    subarachnoid layer. A skull (1.5 mm inner and outer tables of cortical bone around 3.5 mm of
    diploe, 6.5 mm in all) and a 6 mm scalp are shells at fixed Euclidean distances outside the
    brain mask; below the template's lowest slice the brain stem continues as a cord, so the head
    ends in a narrow neck instead of a closed cap. Without the template files an analytic head
    (ellipsoids: cortex, white matter, ventricles, thalami) with the same shells is used instead and
    a warning is logged. The tissue model lives on a 1 mm grid, is built once per process
    (:func:`functools.lru_cache`) and is read-only.

World convention
    Everything is in **RAS+** millimetres (nibabel's convention: +x toward the patient's Right,
    +y Anterior, +z Superior). The reference world is MNI space, so the **left** hemisphere has
    **x < 0**. The optional marker (label 6, a 6 mm radius lesion) sits in the left hemisphere at
    ``MARKER_CENTER_MM`` = (-30, -18, 28) mm, which makes the phantom chiral: a left-right flip of the
    moving scan cannot go unnoticed.

Transform convention
    ``reference_to_moving`` (4x4) maps a point ``p`` of the reference (MRI) world to the point
    ``q = reference_to_moving @ p`` of the moving scan's world that shows the **same anatomy**. The
    moving scan's intensity at its world point ``q`` is therefore the tissue model's intensity at
    ``inv(reference_to_moving) @ q``. The transform is a rotation about the head centre
    ``HEAD_CENTER_MM`` followed by a translation: ``q = R (p - c) + c + t`` with
    ``R = Rz(rz) @ Ry(ry) @ Rx(rx)`` (right-handed rotations about the RAS x, y, z axes, degrees).
    A registration that estimates ``reference_to_moving`` perfectly has zero TRE
    (:meth:`PhantomCase.tre`). To bring the moving scan onto the MRI grid, sample it at
    ``reference_to_moving @ (world of each MRI voxel)``.

Scans (default grids; ``make_case(moving_shape=..., moving_spacing=..., moving_axes=...)`` change them)
    ========= ========== ====================== ============= ==========================================
    contrast  modality   axes (i, j, k)         spacing (mm)  contrast and degradation
    ========= ========== ====================== ============= ==========================================
    ``t1``    ``"MR"``   R, A, S (reference);   1.5 iso       template T1 in the brain (WM ~880,
                         P, I, R as moving scan               GM ~670 a.u.); Rician noise, bias field
    ``t2``    ``"MR"``   L, I, P (coronal)      1.2 x 1.2 x 3 CSF 1000 > GM 560 > WM 400 a.u.; Rician
                                                              noise, bias field
    ``ct``    ``"CT"``   L, P, S (axial, DICOM) 1 x 1 x 2.5   HU: air -1000, CSF 8, WM 27, GM 38,
                                                              diploe 750, cortical bone 1600; slice
                                                              profile; Gaussian noise (6 HU)
    ``pet``   ``"PT"``   L, A, S (axial)        2.5 x 2.5 x 3 FDG-like Bq/mL: GM 42000, WM 11500 (3.65x);
                                                              5.4 mm FWHM; Poisson-like noise
    ``spect`` ``"NM"``   P, I, L (sagittal)     4 iso         perfusion-like counts: GM 60, WM 26
                                                              (2.3x); 9.4 mm FWHM; Poisson noise
    ========= ========== ====================== ============= ==========================================

Arrays are float32, indexed ``(i, j, k)`` like nibabel, with voxel-to-RAS affines.

Example:
    >>> from medfuse.phantom import make_case
    >>> case = make_case("pet", seed=3)
    >>> case.mri.modality, case.moving.modality
    ('MR', 'PT')
    >>> float(case.tre(case.reference_to_moving).max())
    0.0
"""

from __future__ import annotations

from medfuse.phantom.anatomy import HEAD_CENTER_MM, LABELS, MARKER_CENTER_MM, MARKER_RADIUS_MM, template_dir
from medfuse.phantom.case import PhantomCase, make_case
from medfuse.phantom.contrasts import MODALITIES
from medfuse.phantom.geometry import rigid_matrix
from medfuse.phantom.render import clear_cache, make_volume

__all__ = [
    "PhantomCase",
    "make_case",
    "make_volume",
    "rigid_matrix",
    "template_dir",
    "clear_cache",
    "LABELS",
    "MODALITIES",
    "MARKER_CENTER_MM",
    "MARKER_RADIUS_MM",
    "HEAD_CENTER_MM",
]
