"""The functional scan's hottest regions in the fused image (PET-MRI, SPECT-MRI): how bright they stay.

Hot keep of a pair: over the functional scan's hottest 1% (its luminance Y at or above the 99th percentile
of its content, ``Y > 0.05 max``), the fused luminance's mean over the source's. 1 = as bright as in the
PET/SPECT; `max` keeps ~1 by construction. A network that chooses the MRI's detail over a small hot focus on
dark grey matter turns the focus grey in colour (below ~0.8 it reads as "not hot"): the image hides what it
was fused to show. Every PET-MRI and SPECT-MRI pair of the Harvard AANLIB set, fused as ``medfuse fuse`` does
(colour kept, luminance read back); networks with the shipped weights (trained on these pairs: this measures
a property of the composition, not a score), with and without :func:`medfuse.hotspots.keep_hot_regions`
("-nofloor": the module's pair list emptied for that row, as composed before the floor).

    python benchmarks/hotspots.py [--data ../shared/data/harvard] [--methods max,laplacian,guided,light]
           [--markdown OUT.md]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def hot_keep(source_y: np.ndarray, fused_y: np.ndarray, top: float = 1.0) -> float:
    """Fused / source mean luminance over the source's hottest ``top`` % of its content."""
    s = np.asarray(source_y, np.float64)
    content = s > 0.05 * s.max()
    hot = s >= np.percentile(s[content], 100.0 - top)
    return float(np.asarray(fused_y, np.float64)[hot].mean() / s[hot].mean())


def fused_luminance(p, pair: str, method: str) -> tuple[np.ndarray, np.ndarray]:
    from medfuse.color import split_luminance
    from medfuse.io import load_volume
    from medfuse.pairs import MODALITY_OF_PAIR
    from medfuse.pipeline import FusionOptions, fuse_volumes

    mri = load_volume(p.mri, modality="MR")
    other = load_volume(p.other, modality=MODALITY_OF_PAIR[pair])
    result = fuse_volumes(mri, other, FusionOptions(method=method, register=False))
    fused = split_luminance(result.fused.rgb)[0] if result.fused.rgb is not None else result.fused.array
    return np.asarray(other.array, np.float64), np.clip(np.rint(fused), 0, 255)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "harvard")
    ap.add_argument("--pairs", default="pet_mri,spect_mri")
    ap.add_argument("--methods", default="max,laplacian,guided,light,light-nofloor")
    ap.add_argument("--markdown", type=Path, default=None)
    args = ap.parse_args(argv)
    import medfuse.inference as inference
    from medfuse.datasets.harvard import find_harvard_pairs

    if not (args.data / "pet_mri").is_dir():
        print(f"no Harvard data at {args.data}; pass --data", file=sys.stderr)
        return 2
    lines = ["| pair | method | pairs | hot keep: median | 10th percentile | least | pairs below 0.8 |",
             "|---|---|---|---|---|---|---|"]
    hot_pairs = inference.HOT_PAIRS
    for pair in args.pairs.split(","):
        pairs = find_harvard_pairs(args.data, tasks=[pair])
        for row in args.methods.split(","):
            method = row.removesuffix("-nofloor")
            inference.HOT_PAIRS = () if row.endswith("-nofloor") else hot_pairs
            keeps = []
            for p in pairs:
                src, fused = fused_luminance(p, pair, method)
                if src.max() > 0:
                    keeps.append(hot_keep(src, fused))
            k = np.asarray(keeps)
            lines.append(f"| {pair} | {row} | {len(k)} | {np.median(k):.3f} | {np.percentile(k, 10):.3f} | "
                         f"{k.min():.3f} | {int((k < 0.8).sum())} ({100 * (k < 0.8).mean():.0f}%) |")
            print(lines[-1], flush=True)
    inference.HOT_PAIRS = hot_pairs
    if args.markdown:
        args.markdown.write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
