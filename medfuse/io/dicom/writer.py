"""Write a derived volume (a fused image, the quantitative moving scan) as a DICOM series.

:func:`write_dicom_series` writes one Secondary Capture file per slice with full patient geometry, so that
medfuse (:func:`~medfuse.io.load_volume`), SimpleITK/GDCM (``ImageSeriesReader``), pydicom and viewers' series
logic see one series on the reference grid:

- **UIDs** (PS3.3 C.7.6.1.1.2): a new SeriesInstanceUID and new SOPInstanceUIDs, all ``2.25.<uuid4 int>``
  (never built from time stamps or identifiers); the **reference's** StudyInstanceUID and
  FrameOfReferenceUID (the output is on the reference grid), new ones when the reference is not DICOM.
- **Patient and study modules** come from the reference series only (:mod:`.identity`); when the reference
  is not DICOM, anonymous placeholders are written (``PatientName``/``PatientID`` ``ANONYMOUS``) and the
  result says so (``placeholders``). Nothing else of either input is carried over (no descriptions,
  institution, operators, private tags).
- **Derivation**: ImageType ``DERIVED\\SECONDARY\\<kind>``, DerivationDescription naming medfuse, the method
  and the registration, SourceImageSequence referencing every instance of both inputs (SOP class +
  instance UID, purpose "Source image for image processing operation"), LossyImageCompression ``01`` with
  the sources' ratio and method when any source was lossy, BurnedInAnnotation ``NO``.
- **Geometry** (LPS, converted explicitly from the RAS affine with :func:`medfuse.volume.ras_to_lps`): per slice
  ImagePositionPatient = the world position of voxel ``(0, 0, k)``, ImageOrientationPatient from the first two
  affine columns, PixelSpacing, SliceThickness and SpacingBetweenSlices; slices are written along the plane
  normal (the array's slice axis is reversed when it runs against it), InstanceNumber 1..Z in that order.
- **Values**: a colour volume (``volume.rgb``) as RGB 8-bit; a grey one as uint16 with one
  RescaleSlope/RescaleIntercept for the series (the values' range over 65535 steps).
- **File names** are ``IM_00001.dcm``...: never built from DICOM text, always inside ``folder``.
- **Atomic**: the files are written into a temporary sibling folder, which is renamed to ``folder`` when
  complete; an existing ``folder`` is replaced only with ``force``.
"""

from __future__ import annotations

import datetime as _dt
import os
import shutil
import tempfile
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from medfuse.errors import OPTION, OutputExistsError, UnsupportedInputError
from medfuse.volume import Volume, ras_to_lps

__all__ = ["write_dicom_series", "new_uid", "SECONDARY_CAPTURE", "check_dicom_output"]

#: Secondary Capture Image Storage: the IOD of derived images made by a workstation
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
#: DCM 121322 "Source image for image processing operation" (CID 7202)
_PURPOSE = ("121322", "DCM", "Source image for image processing operation")
ANONYMOUS = "ANONYMOUS"


def new_uid() -> str:
    """A new UID of the form ``2.25.<uuid4 as an integer>`` (PS3.5 B.2), unique without a registered root."""
    return f"2.25.{uuid.uuid4().int}"


def check_dicom_output(folder: str | os.PathLike, force: bool = False) -> Path:
    """Raise :class:`OutputExistsError` if ``folder`` exists (and is not replaceable); return it as a Path."""
    folder = Path(folder)
    if folder.exists() and not force:
        raise OutputExistsError(f"{folder} exists already; replace it with {OPTION}", option="force")
    if folder.exists() and not folder.is_dir():
        raise OutputExistsError(f"{folder} is a file; a DICOM series is written as a folder: give a folder name")
    return folder


def _ds_text(value: float) -> str:
    """A float as a DICOM DS string (at most 16 characters)."""
    for digits in range(16, 5, -1):
        s = f"{value:.{digits}g}"
        if len(s) <= 16:
            return s
    return f"{value:.6g}"


def _identity(meta: dict | None):
    return None if not meta else meta.get("dicom_uids")


def write_dicom_series(
    volume: Volume,
    folder: str | os.PathLike,
    *,
    reference_meta: dict | None,
    sources: Sequence[dict | None] = (),
    kind: str = "FUSION",
    modality: str = "OT",
    description: str = "medfuse derived image",
    derivation: str = "medfuse",
    series_number: int = 9001,
    units: str | None = None,
    study_uid: str | None = None,
    frame_of_reference_uid: str | None = None,
    force: bool = False,
) -> dict[str, Any]:
    """Write ``volume`` (3D, grey or RGB) as a DICOM series in ``folder``, atomically.

    Args:
        volume: the derived volume, on the reference grid (RAS affine).
        folder: the output folder (must not exist unless ``force``); its parent is created.
        reference_meta: the reference input's ``meta``: its ``"dicom_uids"``
            (:class:`~medfuse.io.dicom.identity.DicomIdentity`) gives the patient and study modules, the
            StudyInstanceUID and the FrameOfReferenceUID; ``None`` or a non-DICOM meta gives placeholders.
        sources: the metas of every input (reference and moving): their instances go into the
            SourceImageSequence, their lossy compression into LossyImageCompression.
        kind: value 3 of ImageType (``FUSION``, ``QUANTITATIVE``...).
        modality: the Modality written (``OT`` for a fused image; the moving modality for its values).
        description: SeriesDescription (medfuse's own words, never text from an input).
        derivation: DerivationDescription (method, registration, version).
        series_number: SeriesNumber.
        units: for grey series, the units of the values (RescaleType; ``HU`` for CT).
        study_uid: StudyInstanceUID to use when the reference is not DICOM (so that two derived series of
            one run share a study); default a new one.
        frame_of_reference_uid: likewise, the FrameOfReferenceUID when the reference is not DICOM.
        force: replace an existing ``folder``.

    Returns:
        ``{"folder", "series_uid", "study_uid", "frame_of_reference_uid", "n_files", "placeholders",
        "sop_instance_uids", "rescale"}`` (the UIDs for tests and the caller's own use: never logged).

    Raises:
        OutputExistsError: ``folder`` exists and ``force`` is false.
        UnsupportedInputError: a 2D volume, or a sheared affine.
    """
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.sequence import Sequence as DicomSequence
    from pydicom.uid import ExplicitVRLittleEndian

    from medfuse import __version__

    folder = check_dicom_output(folder, force)
    if volume.ndim != 3:
        raise UnsupportedInputError(f"{folder}: only 3D volumes are written as a DICOM series; write 2D slices as .png")
    lps = ras_to_lps(volume.affine)
    col, row, step = lps[:3, 0], lps[:3, 1], lps[:3, 2]
    cs, rs, ss = (float(np.linalg.norm(v)) for v in (col, row, step))
    col_dir, row_dir = col / cs, row / rs
    normal = np.cross(col_dir, row_dir)
    if abs(col_dir @ row_dir) > 1e-4 or abs(abs(normal @ (step / ss)) - 1) > 1e-4:
        raise UnsupportedInputError(f"{folder}: the volume's affine is sheared; DICOM slices need an orthogonal grid")
    order = np.arange(volume.shape[2])
    if normal @ step < 0:  # write along the normal, as readers sort the slices
        order = order[::-1]

    ident = _identity(reference_meta)
    placeholders = ident is None
    study = (ident.study_uid if ident is not None and ident.study_uid else None) or study_uid or new_uid()
    frame_of_reference = (
        (ident.frame_of_reference_uid if ident is not None else None) or frame_of_reference_uid or new_uid()
    )
    series_uid = new_uid()

    source_items = []
    seen = set()
    lossy_ratio = lossy_method = None
    lossy = False
    for meta in sources:
        src = _identity(meta)
        if meta and meta.get("lossy"):
            lossy = True
        if src is None:
            continue
        lossy_ratio = lossy_ratio or src.lossy_ratio
        lossy_method = lossy_method or src.lossy_method
        for sop_class, sop in src.instances:
            if sop in seen:
                continue
            seen.add(sop)
            item = Dataset()
            item.ReferencedSOPClassUID = sop_class
            item.ReferencedSOPInstanceUID = sop
            purpose = Dataset()
            purpose.CodeValue, purpose.CodingSchemeDesignator, purpose.CodeMeaning = _PURPOSE
            item.PurposeOfReferenceCodeSequence = DicomSequence([purpose])
            source_items.append(item)

    colour = volume.rgb is not None
    if colour:
        pixels = np.clip(np.rint(volume.rgb), 0, 255).astype(np.uint8)
        slope, intercept = 1.0, 0.0
    else:
        values = np.asarray(volume.array, dtype=np.float64)
        lo, hi = float(values.min()), float(values.max())
        slope = (hi - lo) / 65535.0 if hi > lo else 1.0
        intercept = lo
        pixels = np.clip(np.rint((values - intercept) / slope), 0, 65535).astype(np.uint16)

    now = _dt.datetime.now()
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".part", dir=folder.parent))
    sop_uids = []
    try:
        for n, k in enumerate(order):
            sop = new_uid()
            sop_uids.append(sop)
            meta = FileMetaDataset()
            meta.MediaStorageSOPClassUID = SECONDARY_CAPTURE
            meta.MediaStorageSOPInstanceUID = sop
            meta.TransferSyntaxUID = ExplicitVRLittleEndian
            ds = Dataset()
            ds.file_meta = meta
            ds.SpecificCharacterSet = "ISO_IR 192"
            # patient and study modules: the reference's only, or placeholders
            if placeholders:
                ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = ANONYMOUS, ANONYMOUS, "", ""
                ds.StudyDate, ds.StudyTime = now.strftime("%Y%m%d"), now.strftime("%H%M%S")
                ds.ReferringPhysicianName, ds.StudyID, ds.AccessionNumber = "", "", ""
            else:
                for keyword in ("PatientName", "PatientID", "PatientBirthDate", "PatientSex"):
                    setattr(ds, keyword, ident.patient.get(keyword, ""))
                if "IssuerOfPatientID" in ident.patient:
                    ds.IssuerOfPatientID = ident.patient["IssuerOfPatientID"]
                for keyword in ("StudyDate", "StudyTime", "ReferringPhysicianName", "StudyID", "AccessionNumber"):
                    setattr(ds, keyword, ident.study.get(keyword, ""))
                if "StudyDescription" in ident.study:
                    ds.StudyDescription = ident.study["StudyDescription"]
            ds.StudyInstanceUID = study
            # series, frame of reference, equipment
            ds.SOPClassUID = SECONDARY_CAPTURE
            ds.SOPInstanceUID = sop
            ds.Modality = modality
            ds.SeriesInstanceUID = series_uid
            ds.SeriesNumber = int(series_number)
            ds.SeriesDescription = description[:64]
            ds.SeriesDate, ds.SeriesTime = now.strftime("%Y%m%d"), now.strftime("%H%M%S")
            ds.FrameOfReferenceUID = frame_of_reference
            ds.PositionReferenceIndicator = ""
            ds.Manufacturer = "medfuse"
            ds.SoftwareVersions = f"medfuse {__version__}"
            ds.ConversionType = "WSD"
            # image
            ds.InstanceNumber = n + 1
            ds.ImageType = ["DERIVED", "SECONDARY", kind]
            ds.DerivationDescription = derivation[:1024]
            if source_items:
                ds.SourceImageSequence = DicomSequence(source_items)
            ds.ContentDate, ds.ContentTime = now.strftime("%Y%m%d"), now.strftime("%H%M%S")
            ds.BurnedInAnnotation = "NO"
            if lossy:
                ds.LossyImageCompression = "01"
                if lossy_ratio:
                    ds.LossyImageCompressionRatio = lossy_ratio
                if lossy_method:
                    ds.LossyImageCompressionMethod = lossy_method
            else:
                ds.LossyImageCompression = "00"
            # image plane (LPS)
            ds.ImagePositionPatient = [_ds_text(float(v)) for v in lps[:3, 3] + k * step]
            ds.ImageOrientationPatient = [_ds_text(float(v)) for v in np.r_[col_dir, row_dir]]
            ds.PixelSpacing = [_ds_text(rs), _ds_text(cs)]
            ds.SliceThickness = _ds_text(ss)
            ds.SpacingBetweenSlices = _ds_text(ss)
            # pixels: slice k of (X, Y, Z) is (rows, cols) = array[:, :, k].T
            ds.Rows, ds.Columns = int(volume.shape[1]), int(volume.shape[0])
            if colour:
                ds.SamplesPerPixel = 3
                ds.PhotometricInterpretation = "RGB"
                ds.PlanarConfiguration = 0
                ds.BitsAllocated = ds.BitsStored = 8
                ds.HighBit = 7
                ds.PixelRepresentation = 0
                ds.PixelData = np.ascontiguousarray(pixels[:, :, k, :].transpose(1, 0, 2)).tobytes()
            else:
                ds.SamplesPerPixel = 1
                ds.PhotometricInterpretation = "MONOCHROME2"
                ds.BitsAllocated = ds.BitsStored = 16
                ds.HighBit = 15
                ds.PixelRepresentation = 0
                ds.RescaleSlope = _ds_text(slope)
                ds.RescaleIntercept = _ds_text(intercept)
                ds.RescaleType = "HU" if units == "HU" else "US"
                ds.WindowCenter = _ds_text(intercept + slope * 32767.5)
                ds.WindowWidth = _ds_text(max(slope * 65535.0, 1e-6))
                ds.PixelData = np.ascontiguousarray(pixels[:, :, k].T).tobytes()
            if modality == "PT" and units:
                ds.Units = {"SUVbw": "GML", "Bq/mL": "BQML", "counts": "CNTS"}.get(units, "")
            ds.save_as(tmp / f"IM_{n + 1:05d}.dcm", enforce_file_format=True)
        if folder.exists():  # force: move the old series aside, then replace it
            old = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".old", dir=folder.parent))
            os.replace(folder, old / "series")
            os.replace(tmp, folder)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, folder)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return {
        "folder": folder,
        "series_uid": series_uid,
        "study_uid": study,
        "frame_of_reference_uid": frame_of_reference,
        "n_files": len(order),
        "placeholders": placeholders,
        "sop_instance_uids": sop_uids,
        "rescale": None if colour else {"slope": slope, "intercept": intercept},
    }
