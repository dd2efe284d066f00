"""3D real pairs keep both scans (issue 24, item 5): ``medfuse fuse`` on the real templates, as a user runs it.

For each template pair (``../shared/data/real/templates``: spm_T1 with spm_PET, spm_SPECT and
clinical_scct, aligned by construction, ``--no-register``) and each method, ``medfuse fuse`` writes
the fused volume (colour for PET/SPECT) and its QC picture; then, over the head (union of both
scans' head masks), each source's top-5% region contrast kept by the fused volume relative to that
source alone (:func:`quality3d.keeps_both`; a colour volume is read as each source by a
least-squares linear fit of the source from (R, G, B, 1)). Goal (issue 24): the default keeps at
least 0.7 of both with PET and SPECT, 0.6 with CT.

    python benchmarks/quality_keep3d.py [--methods max,guided,light] [--extra ROW=NET:PAIR=W,...]
           [--qc-dir benchmarks/results] [--out benchmarks/results/quality_keep3d.md]

``--extra`` rows are networks with given weights (as ``quality3d.py``). The QC pictures are copied to
``--qc-dir`` as ``quality_qc_<case>_<row>.png``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from quality3d import PAIR, REAL, keeps_both, load_case, parse_extra  # noqa: E402

CASES = {"tpl_pet": "spm_PET.nii", "tpl_spect": "spm_SPECT.nii", "tpl_ct": "clinical_scct.nii"}
GOAL = {"tpl_pet": 0.7, "tpl_spect": 0.7, "tpl_ct": 0.6}
MODALITY = {"tpl_pet": "PT", "tpl_spect": "NM", "tpl_ct": "CT"}


def fused_keeps(case: str, fused_path: Path) -> dict[str, float]:
    import nibabel as nib

    from medfuse.intensity import normalize
    from medfuse.intensity.mask import head_mask

    ref, mov = load_case(case)
    mask = head_mask(ref, "MR") | head_mask(mov, mov.modality)
    a, b = normalize(ref).array, normalize(mov).array
    data = np.asanyarray(nib.load(str(fused_path)).dataobj)
    if data.dtype.names:  # RGB NIfTI
        f = np.stack([data[c] for c in ("R", "G", "B")], axis=-1).astype(np.float64)
    else:
        f = np.asarray(data, np.float64)
        f = (f - f[mask].min()) / max(float(np.ptp(f[mask])), 1e-12)
    if f.shape[:3] != a.shape:
        raise ValueError(f"{case}: fused grid {f.shape[:3]} is not the reference's {a.shape}")
    return keeps_both(a, b, f, mask)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--methods", default="max,guided,light")
    ap.add_argument("--extra", action="append", default=[])
    ap.add_argument("--qc-dir", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--json", type=Path, default=None, help="also write {task: {row: {keep_mri, keep_other, goal, "
                    "met}}} (what quality.py --keep3d reads: the goal's 3D clause)")
    args = ap.parse_args(argv)
    if not (REAL / "templates").is_dir():
        print(f"no real templates at {REAL / 'templates'}", file=sys.stderr)
        return 2
    extra = parse_extra(args.extra)
    lines = ["| case | method | keep MRI | keep other | goal (both >=) | met |", "|---|---|---|---|---|---|"]
    report: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="medfuse-keep3d-") as tmp:
        for case in args.cases.split(","):
            pair = PAIR[MODALITY[case]]
            for row in args.methods.split(",") + sorted(extra):
                cmd = [sys.executable, "-m", "medfuse.cli", "fuse", "--reference", str(REAL / "templates" / "spm_T1.nii"),
                       "--moving", str(REAL / "templates" / CASES[case]), "--moving-modality", MODALITY[case],
                       "--no-register", "--force"]
                if row in extra:
                    net, paths = extra[row]
                    if pair not in paths:
                        continue
                    cmd += ["--method", net, "--weights", paths[pair]]
                else:
                    cmd += ["--method", row]
                out = Path(tmp) / f"{case}_{row}.nii.gz"
                subprocess.run(cmd + ["--out", str(out)], check=True, stdout=subprocess.DEVNULL,
                               env={**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")})
                k = fused_keeps(case, out)
                met = k["keepA"] >= GOAL[case] and k["keepB"] >= GOAL[case]
                lines.append(f"| {case} | {row} | {k['keepA']:.2f} | {k['keepB']:.2f} | {GOAL[case]} | "
                             f"{'yes' if met else 'no'} |")
                print(lines[-1], flush=True)
                report.setdefault(pair, {})[row] = {"case": case, "keep_mri": round(k["keepA"], 4),
                                                    "keep_other": round(k["keepB"], 4), "goal": GOAL[case], "met": met}
                if args.qc_dir is not None:
                    qc = out.with_name(out.name.replace(".nii.gz", "_qc.png"))
                    if qc.is_file():
                        shutil.copy(qc, args.qc_dir / f"quality_qc_{case}_{row}.png")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out is not None:
        args.out.write_text(text)
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
