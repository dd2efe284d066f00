"""medfuse.distance.distance_mm against scipy's exact Euclidean distance transform (an independent implementation)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from medfuse.distance import distance_mm


@pytest.mark.parametrize("shape,spacing", [((40, 50, 30), (1.0, 2.0, 3.0)), ((64, 48), (0.5, 1.5)),
                                           ((30, 31, 32), (0.9, 0.9, 1.1))])
def test_distance_equals_scipy_on_anisotropic_grids(shape, spacing):
    mask = np.random.default_rng(1).random(shape) > 0.02
    mask[0] = True  # True up to the border: the border is not a boundary, as in scipy
    d = distance_mm(mask, spacing)
    assert d.dtype == np.float32 and d.shape == mask.shape
    np.testing.assert_allclose(d, ndimage.distance_transform_edt(mask, sampling=spacing), atol=1e-4)
    assert np.all(d[~mask] == 0)


def test_one_false_voxel_far_away_and_an_all_true_mask():
    mask = np.ones((25, 20, 15), bool)
    mask[0, 0, 0] = False
    np.testing.assert_allclose(distance_mm(mask, (1.0, 2.0, 3.0))[24, 19, 14],
                               np.sqrt(24.0 ** 2 + 38.0 ** 2 + 42.0 ** 2), rtol=1e-6)
    assert np.all(np.isinf(distance_mm(np.ones((4, 4, 4), bool), (1.0, 1.0, 1.0))))
    with pytest.raises(ValueError, match="spacing"):
        distance_mm(mask, (1.0, 1.0))
