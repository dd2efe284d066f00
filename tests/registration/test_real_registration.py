"""register() on real scans (MNI templates): a correct registration is accepted, wrong ones refused.

The templates (``../shared/data/real/templates``, or ``$MEDFUSE_REAL_DATA``) are all on one MNI
2 mm grid and aligned by construction; a template moved by a known rigid transform onto another
grid is registered back to the T1 and the known transform is the truth. The tests skip when the
data is absent. The full calibration (more templates, seeds, the native patient, more wrong cases)
is ``benchmarks/registration.py``.
"""

from __future__ import annotations

import numpy as np
import pytest

from medfuse.errors import RegistrationError
from medfuse.phantom import rigid_matrix
from medfuse.phantom.geometry import grid_affine
from medfuse.registration import register
from medfuse.volume import Volume

pytestmark = pytest.mark.real


def _moved(volume: Volume, truth: np.ndarray, spacing, axes: str, fov_mm, center_mm) -> Volume:
    """``volume`` moved by ``truth`` (its point p appears at ``truth @ p``) onto a new grid."""
    from scipy import ndimage

    spacing = np.asarray(spacing, dtype=np.float64)
    shape = tuple(int(round(f / s)) for f, s in zip(fov_mm, spacing))
    affine = grid_affine(shape, spacing, axes, center_mm)
    to_source = np.linalg.inv(volume.affine) @ np.linalg.inv(truth) @ affine
    idx = np.indices(shape, dtype=np.float64).reshape(3, -1)
    arr = ndimage.map_coordinates(volume.array, to_source[:3, :3] @ idx + to_source[:3, 3:4], order=1, cval=0.0)
    return Volume(arr.reshape(shape).astype(np.float32), affine, volume.modality, {}, "moved-template")


@pytest.fixture(scope="module")
def templates(real_dir):
    from medfuse.intensity.mask import head_mask
    from medfuse.io import load_volume
    from medfuse.registration.checks import head_centroid

    folder = real_dir / "templates"
    t1 = load_volume(folder / "spm_T1.nii", modality="MR")
    pet = load_volume(folder / "spm_PET.nii", modality="PT")
    mask = head_mask(t1)
    from scipy import ndimage

    inner = np.argwhere(ndimage.binary_erosion(mask, iterations=10))
    points = t1.world_coordinates(inner[np.random.default_rng(0).choice(len(inner), 200, replace=False)])
    return t1, pet, head_centroid(t1, mask), points


def _tre(est: np.ndarray, truth: np.ndarray, points: np.ndarray) -> np.ndarray:
    d = est - truth
    return np.linalg.norm(points @ d[:3, :3].T + d[:3, 3], axis=1)


def test_pet_template_moved_by_a_known_transform_is_accepted(templates):
    t1, pet, centre, points = templates
    truth = rigid_matrix((10.0, -8.0, 12.0), (15.0, -12.0, 8.0), centre)
    moving = _moved(pet, truth, (2.5, 2.5, 3.0), "LPS", (200, 230, 190), truth[:3, :3] @ centre + truth[:3, 3])
    result = register(t1, moving)  # checks on: no RegistrationError
    assert not result.check_failures and result.summary()["checks"] == "enforced"
    tre = _tre(result.reference_to_moving_ras, truth, points)
    # the PET and T1 templates' own mutual-information optimum lies about 2.4 mm from identity
    # (the aligned pair gives the same figure), within twice the PET goal of 2 mm
    assert tre.mean() < 4.0
    assert result.quality["basin_rise"] > 0.05


def test_aligned_pet_template_is_accepted(templates):
    t1, pet, _, points = templates
    result = register(t1, pet)  # refused by the old head-mask Dice check (0.81)
    assert _tre(result.reference_to_moving_ras, np.eye(4), points).mean() < 4.0


@pytest.mark.parametrize("rotation", [(90, 0, 0), (0, 0, 180)])
def test_pet_template_with_a_rotated_header_is_refused(templates, rotation):
    t1, pet, centre, _ = templates
    wrong = Volume(pet.array, rigid_matrix(rotation, (0, 0, 0), centre) @ pet.affine, "PT", {}, "rotated-header")
    with pytest.raises(RegistrationError, match=r"rotated-header -> .*(rotation about a coordinate axis|"
                                                r"different alignment)"):
        register(t1, wrong)


def test_pet_template_shifted_150_mm_is_refused_and_can_be_overridden(templates):
    t1, pet, _, _ = templates
    far = Volume(pet.array, rigid_matrix((0, 0, 0), (0, 150, 0)) @ pet.affine, "PT", {}, "shifted-header")
    with pytest.raises(RegistrationError, match=r"shifted-header -> .*field of view.*the accept_registration option"):
        register(t1, far)
    result = register(t1, far, checks=False)  # the user knows better: warnings, not errors
    summary = result.summary()
    assert summary["checks"] == "overridden"
    assert any("field of view" in m for m in summary["check_failures"])
    assert any("head centre moves" in m for m in summary["check_failures"])
