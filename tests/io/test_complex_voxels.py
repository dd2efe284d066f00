"""Complex-valued voxels are refused with one line, never fused from their real part (issue 23 item 12).

The complex volume is made from two real scans (SPM's T1 and T2 templates: T1 + i*T2), so neither the real
part nor the magnitude is what a reader could pass off as "the image"; nibabel writes it as complex64.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from medfuse.errors import UnsupportedInputError
from medfuse.io import load_volume


def _complex_nifti(real_dir, path, dtype=np.complex64):
    import nibabel as nib

    t1 = nib.load(real_dir / "templates" / "spm_T1.nii")
    t2 = nib.load(real_dir / "templates" / "spm_T2.nii")
    data = (np.asarray(t1.dataobj, dtype=np.float64) + 1j * np.asarray(t2.dataobj, dtype=np.float64)).astype(dtype)
    nib.save(nib.Nifti1Image(data, t1.affine), path)
    assert nib.load(path).get_data_dtype().kind == "c"
    return path


@pytest.mark.parametrize("dtype", [np.complex64, np.complex128])
def test_complex_nifti_is_refused_before_any_cast(tmp_path, real_dir, dtype):
    path = _complex_nifti(real_dir, tmp_path / "t1_complex.nii.gz", dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's ComplexWarning was all the user got
        with pytest.raises(UnsupportedInputError) as err:
            load_volume(path, modality="MR")
    msg = str(err.value)
    assert "\n" not in msg and "complex-valued voxels" in msg and np.dtype(dtype).name in msg
    assert "magnitude" in msg and "numpy.abs" in msg


def test_complex_nrrd_is_refused(tmp_path):
    import SimpleITK as sitk

    rng = np.random.default_rng(0)
    image = sitk.GetImageFromArray((rng.random((6, 7, 8)) + 1j * rng.random((6, 7, 8))).astype(np.complex64))
    sitk.WriteImage(image, str(tmp_path / "c.nrrd"))
    with pytest.raises(UnsupportedInputError, match="complex-valued voxels"):
        load_volume(tmp_path / "c.nrrd", modality="MR")


def test_fuse_names_the_complex_input_by_its_role(tmp_path, real_dir, capsys):
    """Through the command line: one line naming the role (not the path, which holds a patient's name), exit 2."""
    from medfuse.cli import main

    folder = tmp_path / "Doe^Jane_19570101"
    folder.mkdir()
    moving = _complex_nifti(real_dir, folder / "flair_complex.nii.gz")
    out = tmp_path / "fused.nii.gz"
    code = main(["fuse", "--reference", str(real_dir / "templates" / "spm_T1.nii"), "--moving", str(moving),
                 "--moving-modality", "MR", "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and not out.exists()
    assert len(err.splitlines()) == 1 and err.startswith("medfuse fuse: error: the moving scan: ") and "complex-valued voxels" in err
    assert "Doe^Jane" not in err and "flair_complex" not in err
