"""The shipped ``light`` with and without the sub-pixel phase filter (``subpixel_filter`` of
:func:`medfuse.inference.fuse_with_network`), to look at.

``light`` predicts each 2 x 2 sub-pixel phase with its own head channel (a pixel shuffle). Where those
channels disagree by a constant, the fused image carries a 2-pixel grid: invisible on AANLIB's
textured slices, plain on a smooth real template. This writes one picture: the middle axial slice of
the real T1 + CT templates (``benchmarks/quality3d.py``'s case ``tpl_ct``: spm_T1, clinical_scct from
``../shared/data/real/templates``), normalized as ``medfuse fuse`` does: the MRI, the CT, ``light``
composed without the filter and with it (what ships), each with a 3x zoom of the centre; and prints the ``grid`` figure of ``benchmarks/quality3d.py`` for both.

    python benchmarks/subpixel_grid.py [--out benchmarks/results/subpixel_grid.png]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "subpixel_grid.png")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from quality3d import REAL, artefact_figures, load_case

    if not (REAL / "templates" / "spm_T1.nii").is_file():
        print(f"no templates at {REAL / 'templates'}", file=sys.stderr)
        return 2
    from PIL import Image, ImageDraw

    import medfuse.inference as inference
    from medfuse.intensity import normalize
    from medfuse.intensity.mask import head_mask
    from medfuse.volume import to_axial

    ref, mov = load_case("tpl_ct")
    a, b = normalize(ref).array, normalize(mov).array
    mask = head_mask(ref, "MR") | head_mask(mov, "CT")
    fused = {}
    for flag in (False, True):
        fused[flag] = inference.fuse_with_network(a, b, "light", pair="ct_mri", affine=ref.affine, subpixel_filter=flag)
        A, B, F, M = (to_axial(x, ref.affine) for x in (a, b, fused[flag], mask))
        print(f"light, sub-pixel filter {'on ' if flag else 'off'}: grid {artefact_figures(A, B, F, M)['grid']:.2f}")
    tiles = [("T1 (spm_T1)", a), ("CT (clinical_scct)", b), ("light, no filter", fused[False]),
             ("light, as shipped", fused[True])]
    size, zoom, head = 3, 3, 16  # pixels per voxel of the full view; the centre crop is `zoom` x that
    ims = []
    for name, vol in tiles:
        ax = to_axial(vol, ref.affine)
        sl = np.clip(ax[:, :, ax.shape[2] // 2], 0, 1).T[::-1]  # anterior up, patient's left on the right
        img = Image.fromarray((sl * 255).astype(np.uint8))
        h, w = sl.shape
        full = img.resize((w * size, h * size), Image.NEAREST)
        cw, ch = w // zoom, h // zoom
        box = ((w - cw) // 2, (h - ch) // 2, (w - cw) // 2 + cw, (h - ch) // 2 + ch)
        crop = img.crop(box).resize((w * size, h * size), Image.NEAREST)
        ims.append((name, full, crop))
    W, H = ims[0][1].width, ims[0][1].height
    grid = Image.new("L", (len(ims) * (W + 6), 2 * H + 2 * head + 6), 0)
    draw = ImageDraw.Draw(grid)
    for i, (name, full, crop) in enumerate(ims):
        x = i * (W + 6)
        draw.text((x + 2, 2), name, fill=255)
        grid.paste(full, (x, head))
        draw.text((x + 2, H + head + 4), f"centre, {zoom}x", fill=255)
        grid.paste(crop, (x, H + 2 * head + 6))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    grid.save(args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
