"""Write small synthetic DICOM series with known geometry, for tests anywhere in medfuse.

:func:`write_series` turns an ``(X, Y, Z)`` array of *stored* pixel values and a voxel-to-RAS
affine into one single-frame DICOM file per slice, exactly as a scanner would describe it:
ImagePositionPatient / ImageOrientationPatient / PixelSpacing in **LPS** millimetres, per-slice
RescaleSlope / RescaleIntercept, InstanceNumber in any order, optional PET tags. The real-world
value a correct reader must return for voxel ``(i, j, k)`` is ``array[i, j, k] * slopes[k] +
intercepts[k]``; :func:`expected_values` computes it.

Index convention (the one ``medfuse.io.dicom`` reads back): ``i`` is the DICOM column index,
``j`` the row index, ``k`` the slice index, so slice ``k``'s ``pixel_array`` is
``array[:, :, k].T`` and the affine's columns are (row direction x column spacing, column
direction x row spacing, slice step).

Example:
    >>> import numpy as np
    >>> arr = np.zeros((32, 32, 8), dtype=np.int16)
    >>> files = write_series(tmp_path, arr, np.diag([1.0, 1.0, 2.5, 1.0]), modality="CT")
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from medfuse.volume import ras_to_lps

__all__ = [
    "write_series",
    "expected_values",
    "pet_tags_default",
    "pet_tags_from_real_header",
    "archive_style_copy",
    "SOP_CLASS",
    "ENHANCED_SOP_CLASS",
    "CANARY_FIELDS",
]

#: Storage SOP classes of the single-frame image IODs written here.
SOP_CLASS = {
    "CT": "1.2.840.10008.5.1.4.1.1.2",
    "MR": "1.2.840.10008.5.1.4.1.1.4",
    "PT": "1.2.840.10008.5.1.4.1.1.128",
    "NM": "1.2.840.10008.5.1.4.1.1.20",
    "OT": "1.2.840.10008.5.1.4.1.1.7",
}

#: Storage SOP classes of the enhanced (functional-group) multi-frame IODs.
ENHANCED_SOP_CLASS = {
    "CT": "1.2.840.10008.5.1.4.1.1.2.1",
    "MR": "1.2.840.10008.5.1.4.1.1.4.1",
    "PT": "1.2.840.10008.5.1.4.1.1.130",
    "PT_LEGACY": "1.2.840.10008.5.1.4.1.1.128.1",
}

#: Identifying or free-text PN/LO/SH attributes a canary test fills (SeriesDescription is not
#: among them: medfuse shows it on purpose so the user can choose a series).
CANARY_FIELDS = (
    "PatientName",
    "PatientID",
    "OtherPatientIDs",
    "ReferringPhysicianName",
    "PerformingPhysicianName",
    "OperatorsName",
    "InstitutionName",
    "InstitutionAddress",
    "StationName",
    "StudyDescription",
    "ProtocolName",
    "AccessionNumber",
    "StudyID",
    "BodyPartExamined",
    "Manufacturer",
    "ManufacturerModelName",
    "DeviceSerialNumber",
)


def pet_tags_default(
    *,
    weight_kg: float | None = 70.0,
    dose_bq: float | None = 370e6,
    half_life_s: float | None = 6586.2,
    injection: str | None = "20240102093000.000000",
    series: str = "20240102103000.000000",
    units: str = "BQML",
    decay_correction: str = "START",
    corrected_image: Sequence[str] = ("ATTN", "DECY"),
) -> dict[str, Any]:
    """Return a ``tags`` mapping with a complete FDG PET header (the SUV oracle of bad-inputs §3).

    Times are DICOM DT strings (``YYYYMMDDHHMMSS.ffffff``); ``injection=None`` leaves out the
    radiopharmaceutical start date/time, ``weight_kg=None`` the patient weight, and so on.
    """
    rp = Dataset()
    if injection is not None:
        rp.RadiopharmaceuticalStartDateTime = injection
        rp.RadiopharmaceuticalStartTime = injection[8:]
    if dose_bq is not None:
        rp.RadionuclideTotalDose = f"{dose_bq:.6g}"
    if half_life_s is not None:
        rp.RadionuclideHalfLife = f"{half_life_s:.6g}"
    rp.Radiopharmaceutical = "Fluorodeoxyglucose"
    tags: dict[str, Any] = {
        "Units": units,
        "DecayCorrection": decay_correction,
        "CorrectedImage": list(corrected_image),
        "SeriesDate": series[:8],
        "SeriesTime": series[8:],
        "AcquisitionDate": series[:8],
        "AcquisitionTime": series[8:],
        "RadiopharmaceuticalInformationSequence": DicomSequence([rp]),
    }
    if weight_kg is not None:
        tags["PatientWeight"] = f"{weight_kg:.6g}"
    return tags


#: attributes of a real PET header JSON (``shared/data/real/pet_suv_headers``) that belong in the
#: Radiopharmaceutical Information Sequence item, not at the top level
_RADIOPHARMACEUTICAL = ("RadionuclideTotalDose", "RadionuclideHalfLife", "RadiopharmaceuticalStartTime",
                        "RadiopharmaceuticalStartDateTime")


def pet_tags_from_real_header(path: str | Path, instance: int = 0) -> dict[str, Any]:
    """A ``tags`` mapping holding one real scanner's complete PET header, as :func:`write_series` takes it.

    ``path`` is one of the ``*-instances.json`` files of ``shared/data/real/pet_suv_headers`` (header
    fields of real Siemens, GE and Philips PET series, from cornerstonejs/calculate-suv): every
    attribute is written as the scanner wrote it (the radiopharmaceutical ones inside
    RadiopharmaceuticalInformationSequence), and the Philips private SUV and activity-concentration
    scale factors, when the vendor has them, as (7053,1000) and (7053,1009) of the private creator
    "Philips PET Private Group".
    """
    import json

    header = dict(json.loads(Path(path).read_text())[instance])
    philips = header.pop("PhilipsPETPrivateGroup", None) or {}
    rp = Dataset()
    for keyword in _RADIOPHARMACEUTICAL:
        if keyword in header:
            setattr(rp, keyword, header.pop(keyword))
    tags: dict[str, Any] = {k: v for k, v in header.items() if v is not None}
    tags["RadiopharmaceuticalInformationSequence"] = DicomSequence([rp])
    if philips:
        def private(ds: Dataset) -> None:
            block = ds.private_block(0x7053, "Philips PET Private Group", create=True)
            for offset, name in ((0x00, "SUVScaleFactor"), (0x09, "ActivityConcentrationScaleFactor")):
                if name in philips:
                    block.add_new(offset, "DS", str(philips[name]).strip())

        tags["_private"] = private
    return tags


def _per_slice(values, n: int, default: float, name: str) -> np.ndarray:
    if values is None:
        return np.full(n, default, dtype=np.float64)
    out = np.broadcast_to(np.asarray(values, dtype=np.float64), (n,)).copy()
    if out.shape != (n,):
        raise ValueError(f"{name} must have one value per slice ({n}), got {np.shape(values)}")
    return out


def _ds(value: float) -> str:
    """Format a float as a DICOM DS string (at most 16 characters, full precision kept)."""
    for digits in range(16, 5, -1):
        s = f"{value:.{digits}g}"
        if len(s) <= 16:
            return s
    return f"{value:.6g}"


def expected_values(array_xyz: np.ndarray, slopes=None, intercepts=None) -> np.ndarray:
    """Real-world values (float64, ``(X, Y, Z)``) a reader must return for :func:`write_series`."""
    a = np.asarray(array_xyz, dtype=np.float64)
    n = a.shape[2]
    return a * _per_slice(slopes, n, 1.0, "slopes") + _per_slice(intercepts, n, 0.0, "intercepts")


def write_series(
    folder: str | Path,
    array_xyz: np.ndarray,
    affine_ras: np.ndarray,
    modality: str = "CT",
    series_uid: str | None = None,
    frame_of_reference_uid: str | None = None,
    slopes: Sequence[float] | float | None = None,
    pet_tags: Mapping[str, Any] | None = None,
    *,
    intercepts: Sequence[float] | float | None = None,
    instance_numbers: Sequence[int] | None = None,
    tags: Mapping[str, Any] | None = None,
    series_description: str = "synthetic",
    series_number: int = 1,
    study_uid: str | None = None,
    file_names: Sequence[str] | None = None,
    edit: Callable[[Dataset, int], None] | None = None,
) -> list[Path]:
    """Write one single-frame DICOM file per slice of ``array_xyz`` into ``folder``.

    Args:
        folder: output folder (created if needed).
        array_xyz: ``(X, Y, Z)`` integer array of **stored** pixel values; ``X`` is the number of
            columns, ``Y`` of rows, ``Z`` of slices. Written as int16 when it has negative values,
            else uint16.
        affine_ras: (4, 4) voxel-to-RAS affine of ``array_xyz``; its first two columns must be
            orthogonal and its third parallel to their cross product (any sign) for a valid stack.
        modality: DICOM Modality (``"CT"``, ``"MR"``, ``"PT"``, ``"NM"``, ``"OT"``).
        series_uid: SeriesInstanceUID (new one when ``None``).
        frame_of_reference_uid: FrameOfReferenceUID (new one when ``None``).
        slopes: RescaleSlope per slice (or one value); default 1.
        pet_tags: the PET attributes, written like ``tags``; ``None`` writes
            :func:`pet_tags_default` when ``modality == "PT"`` (pass ``{}`` for none at all).
        intercepts: RescaleIntercept per slice (or one value); default 0 (pass -1024 for a
            realistic CT: stored values are then HU + 1024).
        instance_numbers: InstanceNumber per slice (default ``1..Z``); pass a permutation to check
            a reader ignores it.
        tags: extra attributes by keyword, written to every slice; a callable value is called with
            the slice index and its result written (per-slice values).
        series_description: SeriesDescription.
        series_number: SeriesNumber.
        study_uid: StudyInstanceUID (new one when ``None``).
        file_names: one file name per slice (default ``slice_{k:03d}.dcm``).
        edit: called as ``edit(dataset, k)`` just before slice ``k`` is saved (to break things).

    Returns:
        The written paths, in slice order ``k = 0..Z-1``.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    arr = np.asarray(array_xyz)
    if arr.ndim != 3:
        raise ValueError(f"array_xyz must be (X, Y, Z), got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.integer):
        if not np.allclose(arr, np.round(arr)):
            raise ValueError("array_xyz holds stored pixel values and must be integer-valued")
        arr = np.round(arr).astype(np.int64)
    signed = bool(arr.min() < 0)
    dtype = np.int16 if signed else np.uint16
    info = np.iinfo(dtype)
    if arr.min() < info.min or arr.max() > info.max:
        raise ValueError(f"stored values must fit {np.dtype(dtype).name}")
    nx, ny, nz = arr.shape

    lps = ras_to_lps(np.asarray(affine_ras, dtype=np.float64))
    col_step, row_step, slice_step, origin = lps[:3, 0], lps[:3, 1], lps[:3, 2], lps[:3, 3]
    col_spacing, row_spacing = np.linalg.norm(col_step), np.linalg.norm(row_step)
    iop = np.r_[col_step / col_spacing, row_step / row_spacing]

    slopes_k = _per_slice(slopes, nz, 1.0, "slopes")
    intercepts_k = _per_slice(intercepts, nz, 0.0, "intercepts")
    if instance_numbers is None:
        instance_numbers = list(range(1, nz + 1))
    if len(instance_numbers) != nz:
        raise ValueError(f"instance_numbers must have {nz} values")
    if file_names is None:
        file_names = [f"slice_{k:03d}.dcm" for k in range(nz)]
    series_uid = series_uid or generate_uid(prefix=None)
    frame_of_reference_uid = frame_of_reference_uid or generate_uid(prefix=None)
    study_uid = study_uid or generate_uid(prefix=None)
    sop_class = SOP_CLASS.get(modality, SOP_CLASS["OT"])

    extra: dict[str, Any] = {}
    if pet_tags is None and modality == "PT":
        pet_tags = pet_tags_default()
    extra.update(pet_tags or {})
    extra.update(tags or {})

    now = _dt.datetime(2024, 1, 2, 10, 30, 0)
    paths = []
    for k in range(nz):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = sop_class
        meta.MediaStorageSOPInstanceUID = generate_uid(prefix=None)
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID = sop_class
        ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
        ds.StudyInstanceUID = study_uid
        ds.SeriesInstanceUID = series_uid
        ds.FrameOfReferenceUID = frame_of_reference_uid
        ds.Modality = modality
        ds.PatientName = "Synthetic^Phantom"
        ds.PatientID = "SYN0001"
        ds.StudyDate = ds.SeriesDate = ds.ContentDate = now.strftime("%Y%m%d")
        ds.StudyTime = ds.SeriesTime = ds.ContentTime = now.strftime("%H%M%S")
        ds.SeriesDescription = series_description
        ds.SeriesNumber = series_number
        ds.InstanceNumber = int(instance_numbers[k])
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.ImagePositionPatient = [_ds(v) for v in origin + k * slice_step]
        ds.ImageOrientationPatient = [_ds(v) for v in iop]
        ds.PixelSpacing = [_ds(row_spacing), _ds(col_spacing)]
        ds.SliceThickness = _ds(float(np.linalg.norm(slice_step)))
        ds.RescaleSlope = _ds(slopes_k[k])
        ds.RescaleIntercept = _ds(intercepts_k[k])
        if modality == "CT":
            ds.RescaleType = "HU"
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.Rows, ds.Columns = ny, nx
        ds.BitsAllocated = 16
        ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = 1 if signed else 0
        ds.PixelData = np.ascontiguousarray(arr[:, :, k].T.astype(dtype)).tobytes()
        for keyword, value in extra.items():
            if keyword == "_private":  # private attributes: value(dataset) writes them
                value(ds)
                continue
            setattr(ds, keyword, value(k) if callable(value) else value)
        if edit is not None:
            edit(ds, k)
        path = folder / file_names[k]
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def archive_style_copy(
    paths: Sequence[str | Path],
    folder: str | Path,
    *,
    number_of_frames: int | None = None,
    shared: bool = True,
) -> list[Path]:
    """Copy single-frame files the way some archives (ADNI, PACS exports) rewrite them.

    Each copy is the same classic single-frame image (same SOP class, geometry and pixels, new
    SOPInstanceUID and SeriesInstanceUID, so the copy is a series of its own) with an **empty**
    ``PerFrameFunctionalGroupsSequence`` (and an empty ``SharedFunctionalGroupsSequence`` when
    ``shared``) added, and ``NumberOfFrames`` absent (``None``) or set to ``number_of_frames``.

    Returns:
        The written paths, in the order of ``paths``.
    """
    import pydicom
    from pydicom.uid import generate_uid

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    series_uid = generate_uid(prefix=None)
    out = []
    for path in paths:
        ds = pydicom.dcmread(path)
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid(prefix=None)
        ds.SeriesInstanceUID = series_uid
        ds.PerFrameFunctionalGroupsSequence = DicomSequence([])
        if shared:
            ds.SharedFunctionalGroupsSequence = DicomSequence([])
        if number_of_frames is None:
            if "NumberOfFrames" in ds:
                del ds.NumberOfFrames
        else:
            ds.NumberOfFrames = number_of_frames
        target = folder / Path(path).name
        ds.save_as(target, enforce_file_format=True)
        out.append(target)
    return out
