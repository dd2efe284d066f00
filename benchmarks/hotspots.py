"""Hot foci of the SPECT in the fused image: how bright they stay (session 10; measured, not yet fixed).

Hot keep of a pair: over the SPECT's hottest 1% (luminance Y at or above the 99th percentile of its content,
``Y > 0.05 max``), the fused luminance's mean over the source's; 1 = as bright as in the SPECT. Measured on
the AANLIB SPECT-MRI pairs (every case but the second collection's ``cdd-spect-*``), whose colour map runs
purple, orange, white: luminance rises with uptake, so the hottest luminance is the hottest uptake. It is
**not** a measure for the AANLIB PET slices, the second collection's SPECT or medfuse's ``aanlib_pet`` colour
map (blue, green, yellow, red, pink): there the hottest uptake is pink, darker than the yellow of mid uptake.
Fused as ``medfuse fuse`` does (colour kept, luminance read back); networks with the shipped weights (trained
on these pairs: a property of the composition, not a tuned score); ``--weights ROW=CKPT`` adds a checkpoint.

    python benchmarks/hotspots.py [--data ../shared/data/harvard] [--methods max,laplacian,guided,light]
           [--weights light-new=ckpt.pt] [--markdown OUT.md]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from quality import fuse_pair  # noqa: E402  (benchmarks/quality.py: fused as quality.py scores it)

#: the second collection's SPECT-MRI cases (another colour map: left out)
SECOND_COLLECTION = "cdd-spect-"


def hot_keep(source_y: np.ndarray, fused_y: np.ndarray, top: float = 1.0) -> float:
    """Fused / source mean luminance over the source's hottest ``top`` % of its content."""
    s = np.asarray(source_y, np.float64)
    content = s > 0.05 * s.max()
    hot = s >= np.percentile(s[content], 100.0 - top)
    return float(np.asarray(fused_y, np.float64)[hot].mean() / s[hot].mean())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "harvard")
    ap.add_argument("--methods", default="max,laplacian,guided,light")
    ap.add_argument("--weights", action="append", default=[], help="ROW=CHECKPOINT: a network row with these weights")
    ap.add_argument("--markdown", type=Path, default=None)
    args = ap.parse_args(argv)
    from medfuse.datasets.harvard import find_harvard_pairs

    if not (args.data / "spect_mri").is_dir():
        print(f"no Harvard data at {args.data}; pass --data", file=sys.stderr)
        return 2
    rows = [(m, m, None) for m in args.methods.split(",")]
    for spec in args.weights:
        row, ckpt = spec.split("=", 1)
        rows.append((row, "light", ckpt))
    pairs = [p for p in find_harvard_pairs(args.data, tasks=["spect_mri"]) if not p.case.startswith(SECOND_COLLECTION)]
    lines = ["| pairs | method | pairs | hot keep: median | 10th percentile | least | pairs below 0.8 |",
             "|---|---|---|---|---|---|---|"]
    for row, method, ckpt in rows:
        keeps = []
        for p in pairs:
            _, other, fused, _ = fuse_pair(p, "spect_mri", method, ckpt)
            if other.array.max() > 0:
                keeps.append(hot_keep(other.array, fused))
        k = np.asarray(keeps)
        lines.append(f"| SPECT-MRI (AANLIB map) | {row} | {len(k)} | {np.median(k):.3f} | {np.percentile(k, 10):.3f} | "
                     f"{k.min():.3f} | {int((k < 0.8).sum())} ({100 * (k < 0.8).mean():.0f}%) |")
        print(lines[-1], flush=True)
    if args.markdown:
        args.markdown.write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
