"""A single 2D image is fused on one torch thread: the same numbers whatever the caller's thread count (and the
machine's core count), and the caller's thread count is given back."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")


def _slice_pair(harvard_dir):
    from PIL import Image

    folder = sorted((harvard_dir / "spect_mri").iterdir())[0]
    return (np.asarray(Image.open(folder / "mri.png").convert("L"), np.float32) / 255,
            np.asarray(Image.open(folder / "spect.png").convert("L"), np.float32) / 255)


def test_a_2d_fusion_does_not_depend_on_the_callers_thread_count(harvard_dir):
    """On two threads the shipped SPECT-MRI light gave 1 ulp other numbers than on one, on every real slice tried
    (40 of 40), before 2D fusion ran on one thread."""
    from medfuse.inference import fuse_with_network

    a, b = _slice_pair(harvard_dir)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        two = fuse_with_network(a, b, "light", pair="spect_mri")
        assert torch.get_num_threads() == 2  # given back
        torch.set_num_threads(1)
        one = fuse_with_network(a, b, "light", pair="spect_mri")
    finally:
        torch.set_num_threads(before)
    np.testing.assert_array_equal(two, one)


def test_the_thread_count_comes_back_after_an_error():
    from medfuse.threads import one_intra_op_thread

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        with pytest.raises(RuntimeError):
            with one_intra_op_thread():
                assert torch.get_num_threads() == 1
                raise RuntimeError("inside")
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
