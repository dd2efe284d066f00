"""QC picture: colour columns, informative slice position, overlay that never ends in white."""

from __future__ import annotations

import numpy as np

from medfuse.color import colormap_lut
from medfuse.pipeline import FusionOptions, fuse_volumes
from medfuse.report.qc import OVERLAY_COLORMAP, informative_center, qc_figure, save_qc_figure

from tests.test_color3d import _pair


def test_slices_go_through_the_hottest_region():
    mri, pet = _pair("PT")
    result = fuse_volumes(mri, pet, FusionOptions(method="mean"))
    center = informative_center(result.reference, result.moving, True, values=result.quantitative.array)
    assert np.abs(center - np.array([21, 15, 11])).max() <= 2  # the lesion, not the centre (14, 15, 12)


def test_qc_picture_in_colour(tmp_path):
    mri, pet = _pair("PT")
    result = fuse_volumes(mri, pet, FusionOptions(method="mean"))
    img = qc_figure(result)
    a = np.asarray(img).astype(int)
    assert img.width > 800 and img.height > 400
    assert (np.ptp(a, axis=-1) > 80).mean() > 0.01  # colour panels, not only grey
    assert save_qc_figure(result, tmp_path / "qc.png").is_file()


def test_overlay_scale_ends_in_yellow_not_white():
    top = colormap_lut(OVERLAY_COLORMAP)[-1]
    assert tuple(top) == (255, 255, 0)


def test_ct_qc_is_gray_with_overlay():
    mri, ct = _pair("CT")
    img = qc_figure(fuse_volumes(mri, ct, FusionOptions(method="mean")))
    assert img.width > 800
