"""medfuse.slicing.check_fusion_inputs: clipped copies only where clipping changes something (issue 26: memory)."""

from __future__ import annotations

import numpy as np
import pytest

from medfuse.errors import UnsupportedInputError
from medfuse.slicing import check_fusion_inputs


def test_in_range_inputs_come_back_themselves_and_rounding_outside_is_clipped():
    rng = np.random.default_rng(0)
    a = rng.random((8, 9, 5)).astype(np.float32)
    b = rng.random((8, 9, 5)).astype(np.float32)
    b[0, 0, 0], b[1, 1, 1] = -5e-4, 1.0 + 5e-4  # rounding of a resampling, within the tolerance
    out_a, out_b = check_fusion_inputs(a, b, "test")
    assert out_a is a  # no 75 MB copy of a head volume that clipping would not change
    assert out_b is not b and out_b.min() == 0.0 and out_b.max() == 1.0
    np.testing.assert_array_equal(out_b[2:], b[2:])
    assert b[0, 0, 0] < 0  # the input itself is never changed
    a64, _ = check_fusion_inputs(a, a, "test", dtype=np.float64)
    assert a64.dtype == np.float64 and np.array_equal(a64, a)
    with pytest.raises(UnsupportedInputError, match=r"test: b \(the second image\) has values in"):
        check_fusion_inputs(a, b * 2, "test")
