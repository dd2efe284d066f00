"""medfuse.filters equals scipy.ndimage's min/max filters (mode "nearest", last two axes)."""

import numpy as np
import pytest
from scipy import ndimage

from medfuse.filters import local_max, local_min


@pytest.mark.parametrize("shape", [(1, 1), (2, 3), (5, 4), (3, 1, 9), (4, 17, 2), (2, 6, 6), (2, 2, 5, 7)])
@pytest.mark.parametrize("size", [1, 3, 5, 7])
def test_equals_scipy(shape, size):
    x = np.random.default_rng(sum(shape) + size).random(shape).astype(np.float32)
    window = (1,) * (x.ndim - 2) + (size, size)
    assert np.array_equal(local_max(x, size), ndimage.maximum_filter(x, size=window, mode="nearest"))
    assert np.array_equal(local_min(x, size), ndimage.minimum_filter(x, size=window, mode="nearest"))


def test_input_untouched_and_integer_arrays():
    x = np.arange(30, dtype=np.int16).reshape(5, 6)
    before = x.copy()
    assert np.array_equal(local_max(x), ndimage.maximum_filter(x, size=3, mode="nearest"))
    assert np.array_equal(x, before)


@pytest.mark.parametrize("size", [0, 2, -1])
def test_bad_size(size):
    with pytest.raises(ValueError, match="odd"):
        local_min(np.zeros((4, 4)), size)


def test_needs_two_axes():
    with pytest.raises(ValueError, match="stack of images"):
        local_max(np.zeros(5))
