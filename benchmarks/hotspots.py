"""Hot foci of the PET/SPECT in the fused image: how bright they stay (sessions 10-11).

Hot keep of a pair: over the functional scan's hottest 1 % **by uptake** (at or above the 99th percentile of
its content, ``u > 0.05 max u``), the fused luminance's mean over the functional scan's own luminance; 1 = as
bright as in the PET/SPECT alone. The uptake of an AANLIB colour slice is its colours read back through the
colour map they lie on (:func:`medfuse.hotspots.uptake_from_colours`: the AANLIB PET map for the PET slices and
the second collection's SPECT, the AANLIB SPECT map for the other SPECT slices); never the luminance, which
under the PET map is darker at the hottest uptake (magenta) than at mid uptake (yellow).

Groups: PET-MRI (247 pairs), SPECT-MRI in the AANLIB SPECT map (297), SPECT-MRI of the second collection
(``cdd-spect-*``, 13, PET map). Fused as ``medfuse fuse`` does (colour kept, luminance read back), with the
hot-region floor (``floor``) and without it (``--no-keep-hot``, ``raw``); networks with the shipped weights
(trained on these pairs: hot keep is a property of the composition, not a tuned score); ``--weights ROW=CKPT``
adds a checkpoint. The last column is how much the floor changed the fused luminance (0..255, mean absolute
change) where it can act: the uptake at or above its 95th percentile (below it nothing changes).

    python benchmarks/hotspots.py [--data ../shared/data/harvard] [--methods max,laplacian,guided,light]
           [--weights light-new=ckpt.pt] [--floor both|on|off] [--markdown OUT.md]
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

#: the second collection's SPECT-MRI cases (drawn with the PET map)
SECOND_COLLECTION = "cdd-spect-"


def hot_keep(uptake: np.ndarray, source_y: np.ndarray, fused_y: np.ndarray, top: float = 1.0) -> float:
    """Fused / source mean luminance over the ``top`` % of the content with the highest uptake."""
    u = np.asarray(uptake, np.float64)
    content = u > 0.05 * u.max()
    hot = u >= np.percentile(u[content], 100.0 - top)
    return float(np.asarray(fused_y, np.float64)[hot].mean() / max(np.asarray(source_y, np.float64)[hot].mean(), 1e-9))


def groups(data: Path):
    from medfuse.datasets.harvard import find_harvard_pairs

    pet = list(find_harvard_pairs(data, tasks=["pet_mri"]))
    spect = list(find_harvard_pairs(data, tasks=["spect_mri"]))
    return [("PET-MRI (AANLIB PET map)", "pet_mri", pet),
            ("SPECT-MRI (AANLIB SPECT map)", "spect_mri", [p for p in spect if not p.case.startswith(SECOND_COLLECTION)]),
            ("SPECT-MRI (2nd collection, PET map)", "spect_mri", [p for p in spect if p.case.startswith(SECOND_COLLECTION)])]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "harvard")
    ap.add_argument("--methods", default="max,laplacian,guided,light")
    ap.add_argument("--weights", action="append", default=[], help="ROW=CHECKPOINT: a network row with these weights")
    ap.add_argument("--floor", default="both", choices=["both", "on", "off"],
                    help="with the hot-region floor (on), without (off), or both")
    ap.add_argument("--groups", default=None, help="comma-separated group indices (0 PET, 1 SPECT, 2 2nd collection)")
    ap.add_argument("--markdown", type=Path, default=None)
    args = ap.parse_args(argv)
    from medfuse.hotspots import hot_regions, uptake_from_colours
    from medfuse.io import load_volume

    if not (args.data / "spect_mri").is_dir():
        print(f"no Harvard data at {args.data}; pass --data", file=sys.stderr)
        return 2
    rows = [(m, m, None) for m in args.methods.split(",")]
    for spec in args.weights:
        row, ckpt = spec.split("=", 1)
        rows.append((row, "light", ckpt))
    floors = {"both": (False, True), "on": (True,), "off": (False,)}[args.floor]
    chosen = groups(args.data)
    if args.groups:
        chosen = [chosen[int(i)] for i in args.groups.split(",")]
    lines = ["| pairs | method | floor | pairs | hot keep: median | 10th percentile | least | pairs below 0.8 | "
             "mean change in the ramp (0..255) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for label, task, pairs in chosen:
        uptakes = {}
        for p in pairs:
            other = load_volume(p.other, modality="PT" if task == "pet_mri" else "NM")
            uptakes[p.pair_id] = uptake_from_colours(other.rgb).uptake if other.rgb is not None else other.array
        for row, method, ckpt in rows:
            raw = {}
            for floor in floors:
                keeps, changes = [], []
                for p in pairs:
                    u = uptakes[p.pair_id]
                    if u is None or u.max() <= 0:
                        continue
                    _, other, fused, _ = fuse_pair(p, task, method, ckpt, keep_hot=floor)
                    keeps.append(hot_keep(u, other.array, fused))
                    if not floor:
                        raw[p.pair_id] = fused
                    elif p.pair_id in raw:
                        ramp = u >= hot_regions(u).lo  # where the floor can act (its ramp's start)
                        changes.append(float(np.abs(fused - raw[p.pair_id])[ramp].mean()))
                k = np.asarray(keeps)
                change = f"{np.mean(changes):.2f}" if changes else "-"
                lines.append(f"| {label} | {row} | {'on' if floor else 'off'} | {len(k)} | {np.median(k):.3f} | "
                             f"{np.percentile(k, 10):.3f} | {k.min():.3f} | {int((k < 0.8).sum())} "
                             f"({100 * (k < 0.8).mean():.0f}%) | {change} |")
                print(lines[-1], flush=True)
    if args.markdown:
        args.markdown.write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
