"""3D fusion quality: phantom and real volumes, every method, artefact figures and metrics.

Cases (moving scan already on the reference grid, no registration error involved):

* phantom PET, SPECT, CT (``medfuse.phantom.make_case(modality, seed=0)`` with no misalignment,
  moving scan resampled onto the MRI grid);
* the real templates (``../shared/data/real/templates``: spm_T1 with spm_PET, spm_SPECT and
  clinical_scct, one 2 mm grid);
* BraTS TCGA-FG-6692 t1ce + flair (MR-MR: classical methods only, no network is trained for it).

Each is normalized like ``medfuse fuse`` (:func:`medfuse.intensity.normalize`) and fused by every
classical method and every shipped network of its pair (``light`` is the default). Figures, over
the head mask (union of :func:`medfuse.intensity.head_mask` of both scans), on axial slices:

* ``over``: 99.9th percentile of the overshoot, ``max(f - hi, lo - f, 0)`` with ``lo``/``hi`` the
  min/max of both sources over 3x3 in-plane neighbourhoods; ``over%``: percentage of head voxels
  whose overshoot exceeds the documented margin 0.05;
* ``noise``: flat-region noise ratio: mean local std (5x5 in-plane) of the fused volume over the
  flattest 30% of the head (lowest max of the sources' local std) / the same for the max of the
  sources' local std (<= 1: no amplification);
* ``grid``: flat-region 2-pixel pattern ratio: mean |x - binomial(x)| (the in-plane [1, 2, 1] / 4
  filter of :func:`medfuse.inference.suppress_subpixel_phases`, whose response is zero at a 2-pixel
  period) of the fused volume over the same flat region / the max of the sources' (> 1: a grid or
  checkerboard the sources do not have, which ``noise`` can miss on smooth templates);
* ``sat%``: percentage of head voxels saturated (fused >= 0.99, or <= 0.01 where both sources are
  above 0.01); ``src%``: the sources' own (a >= 0.99 or b >= 0.99);
* ``plane``: mean |difference| between neighbouring axial slices of the fused volume / the max
  of the two sources' figure (> 1: striping in sagittal/coronal views);
* metrics ``EN SD AG SF MI Qabf SSIM VIF`` of :func:`medfuse.metrics.registry.compute_volume_metrics`
  (per axial slice inside the head mask, averaged) on every ``--metric-step``-th axial slice (4:
  subsampled to keep the run short on 2 cores);
* ``s``: fusion time in seconds (whole volume);
* ``keepA`` / ``keepB`` (issue 24, item 5: "keeps both scans"): for each source S (A the MRI, B the
  other scan), its top-5% region R (head voxels at or above S's 95th percentile over the head) and
  the contrast ``mean(X[R]) - mean(X[head - R])``; keep = the fused volume's contrast on R / S's own
  (1: the region stands out as much as in S alone; 0: it is gone). A colour fused volume is read as S
  by a least-squares linear fit of S from (R, G, B, 1) over the head (:func:`keeps_both`); this
  script fuses grey volumes, which are used as they are.

    python benchmarks/quality3d.py [--cases ph_pet,tpl_spect,...] [--methods light,mean] [--out results.md]
           [--extra light-pyr=light:pet_mri=W1.pt,spect_mri=W2.pt,ct_mri=W3.pt]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

REAL = ROOT.parent / "shared" / "data" / "real"
CLASSICAL = ["mean", "max", "laplacian", "wavelet", "guided"]
NETWORKS = ["light", "fmmf", "mdgan", "msra"]
METRICS = ["EN", "SD", "AG", "SF", "MI", "Qabf", "SSIM", "VIF"]
MARGIN = 0.05
PAIR = {"PT": "pet_mri", "NM": "spect_mri", "CT": "ct_mri"}
CASES = ["ph_pet", "ph_spect", "ph_ct", "tpl_pet", "tpl_spect", "tpl_ct", "brats"]


def load_case(name: str):
    """``(reference, moving_on_reference_grid)`` Volumes, raw intensities."""
    from medfuse.io import load_volume
    from medfuse.registration.resample import resample_to_reference

    if name.startswith("ph_"):
        from medfuse.phantom import make_case

        case = make_case(name[3:], 0, rotation_deg=0, translation_mm=0)
        return case.mri, resample_to_reference(case.moving, case.mri)
    if name.startswith("tpl_"):
        files = {"pet": ("spm_PET.nii", "PT"), "spect": ("spm_SPECT.nii", "NM"), "ct": ("clinical_scct.nii", "CT")}
        fname, modality = files[name[4:]]
        ref = load_volume(REAL / "templates" / "spm_T1.nii", modality="MR")
        mov = load_volume(REAL / "templates" / fname, modality=modality)
    else:
        d = REAL / "brats" / "TCGA-FG-6692"
        ref = load_volume(d / "TCGA-FG-6692_t1ce.nii.gz", modality="MR")
        mov = load_volume(d / "TCGA-FG-6692_flair.nii.gz", modality="MR")
    return ref, (mov if mov.same_grid(ref) else resample_to_reference(mov, ref))


def _local_std(x: np.ndarray) -> np.ndarray:
    from scipy import ndimage

    m = ndimage.uniform_filter(x, (5, 5, 1))
    return np.sqrt(np.clip(ndimage.uniform_filter(x * x, (5, 5, 1)) - m * m, 0, None))


def artefact_figures(a: np.ndarray, b: np.ndarray, f: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    """Overshoot, flat-region noise, saturation and plane consistency; arrays in axial orientation."""
    from scipy import ndimage

    a, b, f = (np.asarray(x, np.float64) for x in (a, b, f))
    lo = ndimage.minimum_filter(np.minimum(a, b), (3, 3, 1), mode="nearest")
    hi = ndimage.maximum_filter(np.maximum(a, b), (3, 3, 1), mode="nearest")
    over = np.maximum(np.maximum(f - hi, lo - f), 0.0)[mask]
    sa, sb, sf = _local_std(a), _local_std(b), _local_std(f)
    smax = np.maximum(sa, sb)
    flat = mask & (smax <= np.percentile(smax[mask], 30))
    both = mask[:, :, 1:] & mask[:, :, :-1]

    def dz(x):
        return float(np.abs(np.diff(x, axis=2))[both].mean())

    def hf(x):  # in-plane content at the 2-pixel period, over the flat region
        from medfuse.inference import suppress_subpixel_phases

        planes = np.moveaxis(x, 2, 0)
        return float(np.abs(planes - suppress_subpixel_phases(planes.copy(), 2))[np.moveaxis(flat, 2, 0)].mean())

    return {
        "over": float(np.percentile(over, 99.9)),
        "over%": 100.0 * float((over > MARGIN + 1e-6).mean()),
        "noise": float(sf[flat].mean() / max(smax[flat].mean(), 1e-12)),
        "grid": hf(f) / max(hf(a), hf(b), 1e-12),
        "sat%": 100.0 * float(((f >= 0.99) | ((f <= 0.01) & (a > 0.01) & (b > 0.01)))[mask].mean()),
        "src%": 100.0 * float(((a >= 0.99) | (b >= 0.99))[mask].mean()),
        "plane": dz(f) / max(dz(a), dz(b), 1e-12),
    }


def keeps_both(a: np.ndarray, b: np.ndarray, f: np.ndarray, mask: np.ndarray, top: float = 5.0) -> dict[str, float]:
    """``{"keepA", "keepB"}``: each source's top-``top``% region contrast kept by the fused volume ``f``
    (grey, or colour with a trailing axis of 3: read as each source by a least-squares linear fit over
    ``mask``), relative to that source alone (module docstring)."""
    out = {}
    for key, s in (("keepA", a), ("keepB", b)):
        s = np.asarray(s, np.float64)
        if f.ndim == s.ndim + 1 and f.shape[-1] == 3:
            design = np.concatenate([f[mask].astype(np.float64), np.ones((int(mask.sum()), 1))], axis=1)
            coef, *_ = np.linalg.lstsq(design, s[mask], rcond=None)
            seen = np.zeros_like(s)
            seen[mask] = design @ coef
        else:
            seen = np.asarray(f, np.float64)
        region = mask & (s >= np.percentile(s[mask], 100.0 - top))
        rest = mask & ~region
        own = s[region].mean() - s[rest].mean()
        out[key] = float((seen[region].mean() - seen[rest].mean()) / own) if own > 0 else float("nan")
    return out


def run(cases, methods, metric_step: int, extra: dict[str, str] | None = None):
    """``extra`` (:func:`parse_extra`): ``{ROW: (NET, {PAIR: WEIGHTS})}``, network rows with given weights
    per pair (e.g. a candidate's cross-validation fold weights)."""
    from medfuse.fusion import fuse_arrays
    from medfuse.intensity import normalize
    from medfuse.intensity.mask import head_mask
    from medfuse.metrics.registry import compute_volume_metrics
    from medfuse.volume import to_axial
    from medfuse.weights import weights_path

    rows = []
    for name in cases:
        ref, mov = load_case(name)
        mask = head_mask(ref, "MR") | head_mask(mov, mov.modality)
        a, b = normalize(ref).array, normalize(mov).array
        pair = PAIR.get(mov.modality)
        for method in methods + sorted(extra or {}):
            given = (extra or {}).get(method)
            if given is not None:
                net, paths = given
                if pair not in paths:
                    continue
                fuse = dict(method=net, weights=paths[pair])
            elif method in NETWORKS and (pair is None or weights_path(pair, method) is None):
                continue
            else:
                fuse = dict(method=method)
            t0 = time.perf_counter()
            f = fuse_arrays(a, b, pair=pair, affine=ref.affine, **fuse)
            seconds = time.perf_counter() - t0
            A, B, F, M = (to_axial(x, ref.affine) for x in (a, b, f, mask))
            row = {"case": name, "method": method, **artefact_figures(A, B, F, M), **keeps_both(A, B, F, M),
                   "s": seconds}
            sl = slice(None, None, metric_step)
            row.update(compute_volume_metrics((A[:, :, sl], B[:, :, sl]), F[:, :, sl], METRICS, M[:, :, sl]))
            rows.append(row)
            print(" ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()),
                  flush=True)
    return rows


def parse_extra(specs: list[str]) -> dict[str, tuple[str, dict[str, str]]]:
    """``["light-pyr=light:pet_mri=/w/a.pt,ct_mri=/w/b.pt"]`` -> ``{"light-pyr": ("light", {"pet_mri": ...})}``."""
    out = {}
    for spec in specs:
        row, _, rest = spec.partition("=")
        net, _, paths = rest.partition(":")
        out[row] = (net, dict(p.split("=", 1) for p in paths.split(",") if p))
    return out


def table(rows) -> str:
    keys = ["over", "over%", "noise", "grid", "sat%", "src%", "plane", "keepA", "keepB", *METRICS, "s"]
    lines = ["| case | method | " + " | ".join(keys) + " |", "|---|---|" + "---|" * len(keys)]
    for r in rows:
        lines.append(f"| {r['case']} | {r['method']} | " + " | ".join(f"{r[k]:.3g}" for k in keys) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--methods", default=",".join(CLASSICAL + NETWORKS))
    parser.add_argument("--metric-step", type=int, default=4, help="score every N-th axial slice")
    parser.add_argument("--out", type=Path, default=None, help="also write the table (markdown) here")
    parser.add_argument("--extra", action="append", default=[], help="ROW=NET:PAIR=WEIGHTS,PAIR=WEIGHTS: a network "
                        "row with given weights (e.g. a candidate's fold weights); repeatable")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(2)
    t0 = time.perf_counter()
    rows = run(args.cases.split(","), args.methods.split(","), args.metric_step, parse_extra(args.extra))
    text = table(rows)
    print(text)
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")
    if args.out is not None:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
