"""`medfuse fuse` and `medfuse register` end to end on cases built from real scans (../shared/data/real).

Cases: the MNI T1 template as reference and a real PET / SPECT / CT template moved by a seeded
rigid transform and put on a coarser grid of its own (the truth is the transform); the native,
unregistered MR sequences of one glioma patient (a peer tool's rigid registration is the
reference). Skipped when the folder is absent; run in CI.
"""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest

from medfuse.cli import main
from medfuse.io import load_volume, save_volume
from medfuse.volume import Volume

pytestmark = pytest.mark.real


def _rotation(degrees) -> np.ndarray:
    out = np.eye(3)
    for axis, deg in enumerate(degrees):
        a = np.radians(deg)
        c, s = np.cos(a), np.sin(a)
        r = np.eye(3)
        i, j = [k for k in range(3) if k != axis]
        r[i, i], r[i, j], r[j, i], r[j, j] = c, -s, s, c
        out = r @ out
    return out


def _moved_case(template: Volume, seed: int):
    """The template on a 2x coarser grid, its header moved by a seeded rigid transform.

    Returns ``(moving, truth)``: ``truth`` maps reference RAS points to the moved scan's RAS points.
    """
    rng = np.random.default_rng(seed)
    m = np.eye(4)
    m[:3, :3] = _rotation(rng.uniform(-10, 10, 3))
    m[:3, 3] = rng.uniform(-15, 15, 3)
    arr = template.array
    x, y, z = (n // 2 * 2 for n in arr.shape)
    coarse = arr[:x, :y, :z].reshape(x // 2, 2, y // 2, 2, z // 2, 2).mean(axis=(1, 3, 5))
    scale = np.diag([2.0, 2.0, 2.0, 1.0])
    scale[:3, 3] = 0.5
    affine = m @ template.affine @ scale  # a voxel that was at p in the template now sits at m p
    return Volume(coarse, affine, template.modality), m


def _brain_points(reference: Volume, n: int = 200) -> np.ndarray:
    a = reference.array
    idx = np.argwhere(a > np.percentile(a[a > 0], 50))
    idx = idx[np.random.default_rng(0).choice(len(idx), n, replace=False)]
    return reference.world_coordinates(idx)


def _tre(matrix, truth: np.ndarray, points: np.ndarray) -> float:
    """Mean distance (mm) between where ``matrix`` and ``truth`` send ``points``."""
    ph = np.c_[points, np.ones(len(points))]
    return float(np.linalg.norm((ph @ np.asarray(matrix).T)[:, :3] - (ph @ truth.T)[:, :3], axis=1).mean())


@pytest.fixture(scope="module")
def templates(real_dir):
    folder = real_dir / "templates"
    return {
        "t1": load_volume(folder / "spm_T1.nii", modality="MR"),
        "PT": load_volume(folder / "spm_PET.nii", modality="PT"),
        "NM": load_volume(folder / "spm_SPECT.nii", modality="NM"),
        "CT": load_volume(folder / "clinical_scct.nii", modality="CT"),
    }


@pytest.mark.parametrize("modality, seed, goal_mm", [("PT", 3, 2.0), ("NM", 4, 3.0)])
def test_fuse_real_pet_and_spect_templates(templates, tmp_path, capsys, modality, seed, goal_mm):
    moving, truth = _moved_case(templates[modality], seed)
    save_volume(templates["t1"], tmp_path / "t1.nii.gz")
    save_volume(moving, tmp_path / "scan.nii.gz")  # a name that says nothing: the flag must
    out = tmp_path / "fused.nii.gz"
    args = ["fuse", "--reference", str(tmp_path / "t1.nii.gz"), "--moving", str(tmp_path / "scan.nii.gz"),
            "--out", str(out), "--transform", str(tmp_path / "moving_to_t1.tfm")]
    assert main(args) == 2 and "--moving-modality" in capsys.readouterr().err
    assert main([*args, "--moving-modality", modality]) == 0, capsys.readouterr().err
    fused = nib.load(str(out))
    np.testing.assert_allclose(fused.affine, nib.load(str(tmp_path / "t1.nii.gz")).affine, atol=1e-5)
    side = json.loads((tmp_path / "fused.json").read_text())
    assert side["registration"]["registered"] is True and side["inputs"]["moving"]["modality_source"] == "user"
    tre = _tre(side["registration"]["reference_to_moving_ras"], truth, _brain_points(templates["t1"]))
    assert tre <= 2 * goal_mm, f"TRE {tre:.2f} mm"
    assert (tmp_path / "moving_to_t1.tfm").is_file() and (tmp_path / "fused_qc.png").is_file()


def test_register_real_ct_template(templates, tmp_path, capsys):
    moving, truth = _moved_case(templates["CT"], 5)
    save_volume(templates["t1"], tmp_path / "t1.nii.gz")
    save_volume(moving, tmp_path / "clinical_scct.nii.gz")
    out = tmp_path / "ct_on_t1.nii.gz"
    code = main(["register", "--reference", str(tmp_path / "t1.nii.gz"), "--moving",
                 str(tmp_path / "clinical_scct.nii.gz"), "--out", str(out), "--moving-modality", "CT"])
    assert code == 0, capsys.readouterr().err
    side = json.loads((tmp_path / "ct_on_t1.json").read_text())
    tre = _tre(side["registration"]["reference_to_moving_ras"], truth, _brain_points(templates["t1"]))
    assert tre <= 2.0, f"TRE {tre:.2f} mm"
    np.testing.assert_allclose(nib.load(str(out)).affine, nib.load(str(tmp_path / "t1.nii.gz")).affine, atol=1e-5)


def test_fuse_real_native_mr_sequences(real_dir, tmp_path, capsys):
    """FLAIR onto T1c of one patient: 8-13 degrees and up to 16 mm apart, 5.5 mm slices; compared with a
    peer tool's rigid registration (agreement within about 2 mm over the head is good)."""
    native = real_dir / "tcga_fg6692_native" / "native"
    t1c = next(native.glob("*_t1c_native.nii.gz"))
    flair = next(native.glob("*_flair_native.nii.gz"))
    out = tmp_path / "fused.nii.gz"
    assert main(["fuse", "--reference", str(t1c), "--moving", str(flair), "--out", str(out)]) == 0, \
        capsys.readouterr().err
    side = json.loads((tmp_path / "fused.json").read_text())
    assert side["method"] == "mean"  # no trained network for MR-MR: the classical default
    peer = np.loadtxt(next((real_dir / "tcga_fg6692_native" / "reference_rigid").glob("co__t1c__flair*.txt")))
    ref = load_volume(t1c)
    tre = _tre(side["registration"]["reference_to_moving_ras"], peer, _brain_points(ref))
    assert tre <= 2.5, f"disagreement with the peer registration {tre:.2f} mm"


@pytest.mark.parametrize("pair, modality, seed", [("ct_mri", "CT", 6), ("pet_mri", "PT", 7), ("spect_mri", "NM", 8)])
def test_bundles_on_real_templates(templates, tmp_path, pair, modality, seed):
    """Each MONAI bundle, run as its docs say, on the T1 template and a moved real CT/PET/SPECT template."""
    from tests.bundles.test_bundles import _run_bundle

    moving, truth = _moved_case(templates[modality], seed)
    save_volume(templates["t1"], tmp_path / "t1.nii.gz")
    save_volume(moving, tmp_path / "moving.nii.gz")
    _run_bundle(pair, tmp_path / "out", "--reference", tmp_path / "t1.nii.gz", "--moving", tmp_path / "moving.nii.gz")
    fused = nib.load(str(tmp_path / "out" / "t1_fused.nii.gz"))
    np.testing.assert_allclose(fused.affine, nib.load(str(tmp_path / "t1.nii.gz")).affine, atol=1e-4)
    side = json.loads((tmp_path / "out" / "t1_fused.json").read_text())
    assert side["inputs"]["moving"]["modality"] == modality
    tre = _tre(side["registration"]["reference_to_moving_ras"], truth, _brain_points(templates["t1"]))
    assert tre <= 2 * {"CT": 1.0, "PT": 2.0, "NM": 3.0}[modality], f"TRE {tre:.2f} mm"
