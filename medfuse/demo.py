"""``medfuse demo``: the whole pipeline on a built-in phantom case, no data needed."""

from __future__ import annotations

import logging
import os
from pathlib import Path

__all__ = ["run_demo"]

log = logging.getLogger(__name__)


def run_demo(
    out_dir: str | os.PathLike = "medfuse-demo",
    *,
    modality: str = "pet",
    method: str | None = None,
    seed: int = 0,
    force: bool = False,
    colormap: str | None = None,
) -> dict[str, Path]:
    """Make a phantom MRI and a misaligned PET (or CT/SPECT) on its own grid, write both as NIfTI,
    then register, normalize, fuse and write the fused volume (RGB for PET/SPECT, through ``colormap``),
    the moving scan on the MRI grid in its units (``fused_moving.nii.gz``), the transform and a QC picture.

    Returns:
        ``{"reference", "moving", "fused", "quantitative", "sidecar", "qc", "transform"}`` -> written paths.
    """
    from medfuse.io import check_output, save_volume
    from medfuse.phantom import make_case
    from medfuse.pipeline import fuse_files

    out = Path(out_dir)
    paths = {
        "reference": out / "mri.nii.gz",
        "moving": out / f"{modality}.nii.gz",
        "fused": out / "fused.nii.gz",
        "quantitative": out / "fused_moving.nii.gz",
        "sidecar": out / "fused.json",
        "qc": out / "fused_qc.png",
        "transform": out / f"{modality}_to_mri.tfm",
    }
    for p in paths.values():
        check_output(p, force)
    case = make_case(modality, seed=seed)
    save_volume(case.mri, paths["reference"], force=force)
    save_volume(case.moving, paths["moving"], force=force)
    written = fuse_files(
        paths["reference"], paths["moving"], paths["fused"], method, force=force, qc=paths["qc"],
        transform_out=paths["transform"], reference_modality="MR", moving_modality=case.moving.modality,
        colormap=colormap,
    )
    return {**{k: paths[k] for k in ("reference", "moving")}, **written}
