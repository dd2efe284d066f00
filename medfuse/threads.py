"""Thread counts of the libraries medfuse calls.

:func:`one_intra_op_thread`: torch on one intra-op thread for a block (a single 2D image's fusion,
:func:`medfuse.inference.fuse_slices`).
"""

from __future__ import annotations

import contextlib

__all__ = ["one_intra_op_thread"]


@contextlib.contextmanager
def one_intra_op_thread():
    """torch on one intra-op thread inside the block, the caller's thread count restored after it.

    :func:`medfuse.inference.fuse_slices` fuses a single 2D image so. Its operators are too small to gain
    from a second thread (the shipped PET-MRI ``light`` on a 256 x 256 pair, in process: 19-22 -> 12.5-13 ms
    CPU, wall 10-11 -> 12.5-13 ms), and a convolution's sums are then ordered the same on every machine: on two
    threads the float output differed from one thread's by 1 ulp on every SPECT-MRI slice tried (40 of 40),
    so a 2D result depended on the machine's core count.
    """
    import torch

    before = torch.get_num_threads()
    if before != 1:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if before != 1:
            torch.set_num_threads(before)
