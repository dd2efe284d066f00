"""save_volume refuses NaN/Inf voxels wherever they lie, without an image-sized bool array (issue 26: memory)."""

from __future__ import annotations

import numpy as np
import pytest

from medfuse.errors import NonFiniteError
from medfuse.io import save_volume
from medfuse.volume import Volume


@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("where", [(0, 0, 0), (199, 99, 59), (100, 50, 30)])
def test_a_non_finite_voxel_anywhere_is_refused(tmp_path, order, where):
    a = np.zeros((200, 100, 60), np.float32, order=order)  # first, last and a middle voxel, C and Fortran order
    a[where] = np.inf if where == (0, 0, 0) else np.nan
    with pytest.raises(NonFiniteError, match="refusing to write"):
        save_volume(Volume(a, np.eye(4), "MR"), tmp_path / "x.nii.gz")
    assert not (tmp_path / "x.nii.gz").exists()


def test_a_uint8_colour_volume_is_written(tmp_path):
    vol = Volume(np.zeros((6, 5, 4), np.float32), np.eye(4), "MR")
    vol.rgb = np.full((6, 5, 4, 3), 7, np.uint8)
    assert save_volume(vol, tmp_path / "rgb.nii.gz").is_file()
