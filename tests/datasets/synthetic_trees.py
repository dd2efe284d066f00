"""Tiny synthetic data set trees in the Harvard, BraTS and ADNI layouts, for adapter and batch tests."""

from __future__ import annotations

import datetime as _dt
from pathlib import Path

import numpy as np

__all__ = ["write_harvard_tree", "write_brats_case", "brain_like", "write_adni_series", "pet_tags"]


def brain_like(shape=(24, 28, 20), seed: int = 0, contrast: float = 1.0) -> np.ndarray:
    """A smooth ellipsoidal 'head' with an inner structure and noise (float32, >= 0)."""
    rng = np.random.default_rng(seed)
    grid = np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij")
    r = np.sqrt(sum((g / s) ** 2 for g, s in zip(grid, (0.8, 0.85, 0.8))))
    head = (r < 1.0).astype(np.float32) * 100.0
    inner = (np.sqrt(sum((g / s) ** 2 for g, s in zip(grid, (0.35, 0.4, 0.35)))) < 1.0)
    head[inner] = 100.0 + 80.0 * contrast
    return (head + rng.normal(0, 3.0, shape).clip(-5, 5) * (head > 0)).astype(np.float32)


def write_harvard_tree(root: Path, n: int = 2, size: int = 32) -> Path:
    """``root/{ct_mri,pet_mri}/<pair>/{mri.png, ct.png|pet.png}`` (PET in colour), plus strays."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for task, other in (("ct_mri", "ct.png"), ("pet_mri", "pet.png")):
        for i in range(n):
            d = root / task / f"xg-{1000 + i}"
            d.mkdir(parents=True)
            yy, xx = np.mgrid[:size, :size]
            disk = ((yy - size / 2) ** 2 + (xx - size / 2) ** 2 < (size / 2.5) ** 2)
            mri = (disk * (120 + rng.integers(0, 60, (size, size)))).astype(np.uint8)
            Image.fromarray(mri).save(d / "mri.png")
            if other == "pet.png":
                rgb = np.stack([disk * 200, disk * (xx * 4 % 255), disk * 30], -1).astype(np.uint8)
                Image.fromarray(rgb, "RGB").save(d / other)
            else:
                Image.fromarray((disk * (60 + rng.integers(0, 120, (size, size)))).astype(np.uint8)).save(d / other)
    (root / "README.md").write_text("stray\n")
    return root


def write_brats_case(root: Path, case_id: str, naming: str = "2021", *, sequences=("t1", "t1ce", "t2", "flair"),
                     seg: bool = True, shape=(24, 28, 20), extra_files=()) -> Path:
    """One BraTS case folder (co-registered NIfTI sequences, LPS-stored like BraTS) with optional seg."""
    import nibabel as nib

    names = {"2021": {"t1": "_t1", "t1ce": "_t1ce", "t2": "_t2", "flair": "_flair", "seg": "_seg"},
             "2023": {"t1": "-t1n", "t1ce": "-t1c", "t2": "-t2w", "flair": "-t2f", "seg": "-seg"}}[naming]
    affine = np.diag([-1.0, -1.0, 1.0, 1.0])
    affine[:3, 3] = [12.0, 14.0, -10.0]
    folder = root / case_id
    folder.mkdir(parents=True, exist_ok=True)
    for k, seq in enumerate(sequences):
        nib.save(nib.Nifti1Image(brain_like(shape, seed=k, contrast=1.0 - 0.5 * k), affine),
                 str(folder / f"{case_id}{names[seq]}.nii.gz"))
    if seg:
        labels = np.zeros(shape, dtype=np.uint8)
        labels[8:14, 10:16, 6:12] = 2
        labels[10:12, 12:14, 8:10] = 4
        nib.save(nib.Nifti1Image(labels, affine), str(folder / f"{case_id}{names['seg']}.nii.gz"))
    for name in extra_files:
        (folder / name).write_text("{}\n")
    return folder


def pet_tags(tracer_name: str = "Fluorodeoxyglucose", date: str = "20240102") -> dict:
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    from tests.io.dicom_fixtures import pet_tags_default

    tags = pet_tags_default(injection=f"{date}093000.000000", series=f"{date}103000.000000")
    rp = Dataset()
    rp.Radiopharmaceutical = tracer_name
    old = tags["RadiopharmaceuticalInformationSequence"][0]
    for kw in ("RadiopharmaceuticalStartDateTime", "RadiopharmaceuticalStartTime", "RadionuclideTotalDose",
               "RadionuclideHalfLife"):
        if kw in old:
            setattr(rp, kw, getattr(old, kw))
    tags["RadiopharmaceuticalInformationSequence"] = Sequence([rp])
    return tags


def write_adni_series(root: Path, subject: str, description: str, date: _dt.date, image_id: str, modality: str,
                      *, tracer: str | None = None, array=None, affine=None, nifti: bool = False,
                      dicom_description: str | None = None) -> Path:
    """``root/ADNI/<subject>/<description>/<date>_08_20_30.0/<image_id>/`` with a small series."""
    from tests.io.dicom_fixtures import write_series

    folder = root / "ADNI" / subject / description / f"{date.isoformat()}_08_20_30.0" / image_id
    arr = np.asarray(array if array is not None else np.arange(4 * 4 * 3).reshape(4, 4, 3) + 10)
    aff = affine if affine is not None else np.diag([2.0, 2.0, 3.0, 1.0])
    if nifti:
        import nibabel as nib

        folder.mkdir(parents=True)
        nib.save(nib.Nifti1Image(arr.astype(np.float32), aff), str(folder / f"ADNI_{subject}_{image_id}.nii"))
        return folder
    d = date.strftime("%Y%m%d")
    tags = {"SeriesDate": d, "AcquisitionDate": d, "StudyDate": d}
    extra = pet_tags(tracer or "Fluorodeoxyglucose", d) if modality == "PT" else None
    write_series(folder, np.rint(arr).astype(np.int64), aff, modality=modality, pet_tags=extra, tags=tags,
                 series_description=dicom_description if dicom_description is not None else description.replace("_", " "))
    return folder
