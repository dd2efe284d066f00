"""Speed and size of the fusion networks against a reference CNN of IFCNN's shape, in one process.

For each network (2D defaults, or the shipped weights' configuration when present): parameters,
GFLOP per 256x256 slice, and milliseconds per slice with ``--threads`` CPU threads and slices
batched (``--batch``), plus the ratio to the reference network timed in the same run: IFCNN's
shape (a 7x7 64-channel convolution at full resolution, two 3x3 64-channel blocks, a 1x1 output;
random weights, which do not change the time). The goal of issue 6: the default network
<= 10 ms per slice on 2 threads, about 20x faster than the reference.

    python benchmarks/speed.py [--threads 2] [--batch 16] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def reference_cnn():
    """A network of IFCNN's shape for timing (Zhang et al. 2020): conv7x7(2->64), 2x conv3x3(64), conv1x1."""
    from torch import nn

    return nn.Sequential(
        nn.Conv2d(2, 64, 7, padding=3), nn.ReLU(inplace=True),
        nn.Conv2d(64, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(inplace=True),
        nn.Conv2d(64, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(inplace=True),
        nn.Conv2d(64, 1, 1),
    ).eval()


def ms_per_slice(model, batch: int, repeats: int, size: int = 256) -> float:
    import torch

    x = torch.rand(batch, 2, size, size)
    with torch.inference_mode():
        model(x)  # warm-up (oneDNN kernel selection)
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - t0)
    return 1000.0 * statistics.median(times) / batch


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args(argv)

    import torch

    from medfuse.inference import load_model
    from medfuse.networks import NETWORKS, build_network, count_flops, count_parameters
    from medfuse.weights import default_network, shipped_weights

    torch.set_num_threads(args.threads)
    shipped = {method: path for (pair, method), path in shipped_weights().items()}
    ref = reference_cnn()
    ref_ms = ms_per_slice(ref, args.batch, args.repeats)
    print(f"threads {args.threads}, batch {args.batch}, 256x256 slices, torch {torch.__version__}")
    print("| network | params | GFLOP/slice | ms/slice | speed-up vs IFCNN-shape |")
    print("|---|---|---|---|---|")
    print(f"| IFCNN-shape reference | {count_parameters(ref):,} | {count_flops(ref, (1, 2, 256, 256)) / 1e9:.2f} "
          f"| {ref_ms:.1f} | 1.0x |")
    defaults = {default_network(p) for p in ("ct_mri", "pet_mri", "spect_mri")} - {None}
    ok = True
    for name in NETWORKS:
        model = load_model(shipped[name])[0] if name in shipped else build_network(name, spatial_dims=2)
        model.eval()
        ms = ms_per_slice(model, args.batch, args.repeats)
        mark = " (default)" if name in defaults else ""
        print(f"| {name}{mark} | {count_parameters(model):,} | {count_flops(model, (1, 2, 256, 256)) / 1e9:.3f} "
              f"| {ms:.1f} | {ref_ms / ms:.1f}x |")
        if name in defaults:
            ok &= ms <= 10.0
    print(f"goal: default network <= 10 ms/slice on {args.threads} threads -> {'MET' if ok else 'NOT MET'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
