"""What a derived DICOM needs from its sources, kept where nothing prints it.

:func:`~medfuse.io.dicom.read_dicom_series` stores a :class:`DicomIdentity` in ``meta["dicom_uids"]``: the raw
Study/Series/FrameOfReference UIDs, the SOP class and instance UIDs of the slices read, and the patient and
study modules of the series. :func:`~medfuse.io.dicom.writer.write_dicom_series` copies the reference's into
the derived series (and references both inputs' instances). The object's ``repr``/``str`` say only that the
values are withheld, so ``repr(volume.meta)``, log lines, sidecars (which go through ``str``) and messages
never show them.
"""

from __future__ import annotations

from typing import Any

__all__ = ["DicomIdentity", "PATIENT_MODULE", "STUDY_MODULE"]

#: Patient module attributes carried into a derived DICOM (PS3.3 C.7.1.1, type 2 and the usual type 3).
PATIENT_MODULE = ("PatientName", "PatientID", "IssuerOfPatientID", "PatientBirthDate", "PatientSex")
#: General Study module attributes carried into a derived DICOM (PS3.3 C.7.2.1); StudyInstanceUID apart.
STUDY_MODULE = (
    "StudyDate",
    "StudyTime",
    "ReferringPhysicianName",
    "StudyID",
    "AccessionNumber",
    "StudyDescription",
)


class DicomIdentity:
    """Raw identifiers of one DICOM series (never logged, printed, or written to a sidecar).

    Attributes:
        study_uid, series_uid, frame_of_reference_uid: the UIDs, or ``None``.
        instances: ``[(SOPClassUID, SOPInstanceUID), ...]`` of the slices read, in slice order.
        patient, study: ``{keyword: str value}`` of :data:`PATIENT_MODULE` / :data:`STUDY_MODULE` present.
        lossy_ratio, lossy_method: LossyImageCompressionRatio / Method of the source (text), or ``None``.
    """

    __slots__ = (
        "study_uid",
        "series_uid",
        "frame_of_reference_uid",
        "instances",
        "patient",
        "study",
        "lossy_ratio",
        "lossy_method",
    )

    def __init__(self, **values: Any) -> None:
        for name in self.__slots__:
            setattr(self, name, values.get(name))
        self.instances = list(self.instances or [])
        self.patient = dict(self.patient or {})
        self.study = dict(self.study or {})

    def __repr__(self) -> str:
        return "DicomIdentity(<withheld>)"

    __str__ = __repr__

    def __getstate__(self):  # picklable (batch workers) despite __slots__
        return {name: getattr(self, name) for name in self.__slots__}

    def __setstate__(self, state):
        for name in self.__slots__:
            setattr(self, name, state.get(name))

    @classmethod
    def from_datasets(cls, datasets, series_uid: str | None) -> "DicomIdentity":
        """Collect the identity of a series from its datasets (headers; the first one gives the modules)."""
        first = datasets[0]

        def text(ds, keyword):
            if keyword not in ds or ds[keyword].value in (None, ""):
                return None
            value = ds[keyword].value
            return str(value).strip() if not isinstance(value, (list, tuple)) else "\\".join(map(str, value))

        instances = []
        for ds in datasets:
            sop_class, sop = text(ds, "SOPClassUID"), text(ds, "SOPInstanceUID")
            if sop_class and sop:
                instances.append((sop_class, sop))
        ratios = {text(ds, "LossyImageCompressionRatio") for ds in datasets} - {None}
        methods = {text(ds, "LossyImageCompressionMethod") for ds in datasets} - {None}
        return cls(
            study_uid=text(first, "StudyInstanceUID"),
            series_uid=series_uid or None,
            frame_of_reference_uid=text(first, "FrameOfReferenceUID"),
            instances=instances,
            patient={k: v for k in PATIENT_MODULE if (v := text(first, k)) is not None},
            study={k: v for k in STUDY_MODULE if (v := text(first, k)) is not None},
            lossy_ratio=sorted(ratios)[0] if ratios else None,
            lossy_method=sorted(methods)[0] if methods else None,
        )
