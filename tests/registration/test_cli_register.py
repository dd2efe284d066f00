"""``medfuse register``: files written on the reference grid, transform readable, errors as one line."""

from __future__ import annotations

import numpy as np

from medfuse.cli import main
from medfuse.io import load_volume, save_volume
from medfuse.registration import load_transform, matrix_ras


def test_register_command_writes_resampled_scan_and_transform(tmp_path, ct_case, capsys):
    ref, mov = tmp_path / "mri.nii.gz", tmp_path / "ct.nii.gz"
    save_volume(ct_case.mri, ref)
    save_volume(ct_case.moving, mov)
    out, tfm = tmp_path / "ct_on_mri.nii.gz", tmp_path / "ct_to_mri.tfm"
    argv = ["register", "--reference", str(ref), "--moving", str(mov), "--out", str(out), "--transform", str(tfm)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "resampled:" in printed and "transform:" in printed and "rigid registration" in printed
    resampled = load_volume(out)
    assert resampled.shape == ct_case.mri.shape
    np.testing.assert_allclose(resampled.affine, ct_case.mri.affine, atol=1e-4)
    assert ct_case.tre(matrix_ras(load_transform(tfm))).mean() < 1.0

    assert main(argv) == 2  # outputs exist: refused before any work
    assert "--force" in capsys.readouterr().err


def test_register_command_refuses_2d_slices_in_one_line(tmp_path, capsys):
    from medfuse.volume import Volume

    a = tmp_path / "mri.png"
    save_volume(Volume(np.tile(np.arange(32, dtype=np.float32) * 8, (32, 1))), a)
    assert main(["register", "--reference", str(a), "--moving", str(a), "--out", str(tmp_path / "o.nii.gz")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "pre-aligned" in err
