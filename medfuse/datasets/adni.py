"""ADNI download trees: each FDG or amyloid PET paired with the same subject's T1 MRI nearest in date.

::

    ADNI/<subject>/<series description>/<date time>/<image id>/*.dcm      (or one *.nii / *.nii.gz)
    e.g. ADNI/002_S_0295/MPRAGE/2006-04-18_08_20_30.0/I45108/*.dcm
         ADNI/002_S_0295/ADNI_Brain_PET__Raw_FDG/2006-05-09_16_49_33.0/I17595/*.dcm

``ROOT`` is the ``ADNI`` folder or the folder holding it. Every image-id folder is one series; it is
classified by its series description (the folder name, and the DICOM SeriesDescription) and, for
DICOM, by the Modality tag and the radiopharmaceutical of PET series:

- **PET** (``Modality == PT``, or a PET description): FDG (``FDG``, ``Fluorodeoxyglucose``) or
  amyloid (``AV45``/florbetapir, ``FBB``/florbetaben, ``PIB``, ``NAV4694``, flutemetamol). Tau and
  unrecognised tracers are skipped with the reason; description and DICOM tags that disagree (on the
  modality or the tracer) make the series ambiguous: skipped, never guessed.
- **T1 MRI** (``Modality == MR`` or an MRI description): MPRAGE / MP-RAGE / IR-SPGR / SPGR / T1
  descriptions (sagittal MPRAGE included: the pipeline fuses in axial slices whatever the storage
  plane); localizers, calibrations, FLAIR, T2, DTI, fMRI... are skipped.

The acquisition date is the ``<date time>`` folder name (else the DICOM acquisition/series/study
date). Each PET is paired with the T1 MRI of the same subject nearest in date within ``window_days``
(default 180). No MRI in the window: *unmatched*; two or more MRIs at the same nearest distance (in
days; e.g. an MPRAGE and its repeat): *ambiguous*, listed with the candidates; narrow the choice with
``mri_series`` (a regular expression the MRI description must match). Both are reported, never guessed.

Case id: ``<subject>_<PET image id>`` (study pseudonyms; DICOM patient names are never read), or a
pseudonym when a folder name is not an ADNI id. Series descriptions are shown (in ``info`` and skip
reasons) only when made of known protocol words (``MPRAGE``, ``ADNI_Brain_PET__Raw_FDG``...); others by
an opaque ``~<8 hex digits>``.
"""

from __future__ import annotations

import datetime as _dt
import os
import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["discover_adni", "classify_series", "DEFAULT_WINDOW_DAYS", "SUBJECT_PATTERN"]

DEFAULT_WINDOW_DAYS = 180
SUBJECT_PATTERN = re.compile(r"^\d{3}_S_\d{4,5}$")
_DATE_FOLDER = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?:_(\d{2})_(\d{2})_(\d{2}))?")
_NIFTI = (".nii", ".nii.gz")

#: tracer -> (kind, words in descriptions or radiopharmaceutical names), matched case-insensitively
_TRACERS = {
    "FDG": ("fdg", (r"fdg", r"fluorodeoxyglucose", r"fludeoxyglucose")),
    "florbetapir": ("amyloid", (r"av[-_ ]?45", r"florbetapir", r"amyvid")),
    "florbetaben": ("amyloid", (r"fbb", r"florbetaben", r"neuraceq")),
    "PIB": ("amyloid", (r"\bpib\b", r"_pib", r"pittsburgh", r"pib[_ ]")),
    "NAV4694": ("amyloid", (r"nav[-_ ]?4694", r"flutafuranol")),
    "flutemetamol": ("amyloid", (r"flutemetamol", r"vizamyl")),
    "tau": ("tau", (r"av[-_ ]?1451", r"flortaucipir", r"tauvid", r"\btau\b", r"_tau", r"pi[-_ ]?2620",
                    r"mk[-_ ]?6240")),
}
_PET_WORDS = re.compile(r"pet|coreg,?_?avg|_suvr|amyloid", re.IGNORECASE)
_T1_WORDS = re.compile(r"mp[-_ ]?rage|spgr|t1|ir[-_]?fspgr|mprage", re.IGNORECASE)
_NOT_T1 = re.compile(r"locali[sz]er|calibration|scout|survey|flair|\bt2|_t2|t2[_*-]|dti|dwi|diffusion|fmri|bold|"
                     r"resting|asl|perfusion|field[_ ]?map|b1[-_]cal|mask|seg|swi|hippocampal", re.IGNORECASE)


#: words ADNI series descriptions are made of (protocol names); a description with any other word is not shown
_DESCRIPTION_WORDS = frozenset("""
adni brain pet raw fdg av av45 av1451 fbb pib nav nav4694 flutemetamol florbetapir florbetaben flortaucipir tau
amyloid coreg avg std img and vox siz uniform resolution standardized image voxel size mprage mp rage repeat rpt
sag sagittal axial ax cor coronal accelerated ir spgr fspgr irspgr t1 t2 t2star flair 3d 2d n3 scaled gradwarp b1
correction mt1 dynamic frames frame early late static registered co averaged average mask seg localizer
calibration survey scout dti dwi fmri bold resting state asl perfusion field mapping map swi hippocampal mri pd
se tse fse grappa ipat p2 ipat2 x min mins to of the
""".split())


def _public_description(text: str) -> bool:
    words = [w for w in re.split(r"[^A-Za-z0-9]+", text) if w]
    return bool(words) and all(w.isdigit() or w.lower() in _DESCRIPTION_WORDS for w in words)


def _shown(name: str, folder: Path, found, *, description: bool = False) -> str:
    """``name`` (a description or an image id) when public, else the folder's opaque name."""
    from medfuse.datasets.base import is_public

    if (_public_description(name) if description else is_public(name, "adni")):
        return name
    return found.relative(folder).split("/")[-1]


@dataclass
class _Series:
    subject: str
    description: str
    image_id: str
    folder: Path
    path: Path  # what load_volume reads: the folder (DICOM) or the NIfTI file
    date: _dt.date | None
    kind: str | None  # "mri", "pet" or None
    tracer: str | None
    tracer_kind: str | None
    problem: str | None  # why it cannot be used, when it cannot


def _tracer_of(text: str) -> tuple[str | None, str | None]:
    low = text.lower()
    hits = [(name, kind) for name, (kind, words) in _TRACERS.items() if any(re.search(w, low) for w in words)]
    if not hits:
        return None, None
    if len({h[0] for h in hits}) > 1:
        return "conflict:" + ",".join(sorted(h[0] for h in hits)), None
    return hits[0]


def _folder_date(name: str) -> _dt.date | None:
    m = _DATE_FOLDER.match(name)
    if not m:
        return None
    try:
        return _dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError:
        return None


def _dicom_header(path: Path) -> dict:
    """The few tags classification needs (never patient names)."""
    import pydicom

    ds = pydicom.dcmread(path, stop_before_pixels=True, force=True, specific_tags=[
        "Modality", "SeriesDescription", "AcquisitionDate", "SeriesDate", "StudyDate",
        "RadiopharmaceuticalInformationSequence"])
    radio = []
    for item in ds.get("RadiopharmaceuticalInformationSequence", None) or []:
        radio.append(str(item.get("Radiopharmaceutical", "") or ""))
        for code in item.get("RadionuclideCodeSequence", None) or []:
            radio.append(str(code.get("CodeMeaning", "") or ""))
    date = None
    for key in ("AcquisitionDate", "SeriesDate", "StudyDate"):
        text = str(ds.get(key, "") or "")
        if re.fullmatch(r"\d{8}", text):
            try:
                date = _dt.date(int(text[:4]), int(text[4:6]), int(text[6:8]))
                break
            except ValueError:
                pass
    return {"modality": str(ds.get("Modality", "") or "").upper(), "description": str(ds.get("SeriesDescription", "")
                                                                                       or ""),
            "radiopharmaceutical": " ".join(r for r in radio if r), "date": date}


def classify_series(description: str, header: dict | None = None) -> tuple[str | None, str | None, str | None, str | None]:
    """``(kind, tracer, tracer_kind, problem)`` of one series from its description and DICOM header.

    ``kind`` is ``"pet"``, ``"mri"`` or None; ``problem`` says why the series cannot be used (None
    when it can: a T1 MRI, or an FDG/amyloid PET).
    """
    header = header or {}
    text = " ".join([description, header.get("description", "")])
    modality = header.get("modality", "")
    described_pet = bool(_PET_WORDS.search(text)) or _tracer_of(text)[0] is not None
    described_mri = bool(_T1_WORDS.search(text)) and not described_pet
    if modality in ("PT", "MR"):
        kind = "pet" if modality == "PT" else "mri"
        if (kind == "pet" and described_mri) or (kind == "mri" and described_pet):
            return None, None, None, (f"ambiguous: the description says {'MRI' if described_mri else 'PET'} but the "
                                      f"DICOM Modality is {modality}")
    elif modality:
        return None, None, None, f"not PET or MRI (DICOM Modality {modality})"
    else:
        kind = "pet" if described_pet else "mri" if _T1_WORDS.search(text) else None
    if kind is None:
        return None, None, None, "not recognised as PET or T1 MRI from its description"
    if kind == "mri":
        if _NOT_T1.search(text) or not _T1_WORDS.search(text):
            return "mri", None, None, "MRI but not a T1 structural series (MPRAGE/SPGR): not used"
        return "mri", None, None, None
    by_text = _tracer_of(text)
    by_tag = _tracer_of(header.get("radiopharmaceutical", "")) if header.get("radiopharmaceutical") else (None, None)
    for name, _ in (by_text, by_tag):
        if name and name.startswith("conflict:"):
            return "pet", None, None, f"ambiguous: several tracers named ({name[9:]})"
    if by_text[0] and by_tag[0] and by_text[0] != by_tag[0]:
        return "pet", None, None, (f"ambiguous: the description says {by_text[0]} but the DICOM radiopharmaceutical "
                                   f"says {by_tag[0]}")
    tracer, tracer_kind = by_tag if by_tag[0] else by_text
    if tracer is None:
        return "pet", None, None, "PET tracer not recognised (FDG or amyloid) from description or DICOM tags"
    if tracer_kind == "tau":
        return "pet", tracer, tracer_kind, "tau PET: only FDG and amyloid PET are paired"
    return "pet", tracer, tracer_kind, None


def _adni_folder(root: Path) -> Path:
    if (root / "ADNI").is_dir():
        return root / "ADNI"
    return root


def _read_series(subject: str, desc_dir: Path, date_dir: Path, id_dir: Path, found) -> _Series | None:
    files = sorted(f for f in id_dir.iterdir() if f.is_file())
    dcm = [f for f in files if f.suffix.lower() in (".dcm", ".ima")]
    nii = [f for f in files if f.name.lower().endswith(_NIFTI)]
    for f in files:
        if f not in dcm and f not in nii:
            found.ignore(f, "not DICOM or NIfTI")
    where = found.relative(id_dir)
    if dcm and nii:
        found.skipped.append(_skip()(where, "ambiguous: both DICOM and NIfTI files"))
        return None
    if len(nii) > 1:
        found.skipped.append(_skip()(where, f"ambiguous: {len(nii)} NIfTI files in one series folder"))
        return None
    if not dcm and not nii:
        found.skipped.append(_skip()(where, "no DICOM or NIfTI files"))
        return None
    header = None
    if dcm:
        try:
            header = _dicom_header(dcm[0])
        except Exception as err:  # noqa: BLE001 - a broken file is reported, not fatal
            found.skipped.append(_skip()(where, f"unreadable DICOM header: {type(err).__name__}"))
            return None
    kind, tracer, tracer_kind, problem = classify_series(desc_dir.name.replace("_", " "), header)
    date = _folder_date(date_dir.name) or (header or {}).get("date")
    if problem is None and date is None:
        problem = "no acquisition date (neither the date folder nor the DICOM header gives one)"
    return _Series(subject, desc_dir.name, id_dir.name, id_dir, id_dir if dcm else nii[0], date, kind, tracer,
                   tracer_kind, problem)


def _skip():
    from medfuse.datasets.base import Skipped

    return Skipped


def discover_adni(root: str | os.PathLike, window_days: int = DEFAULT_WINDOW_DAYS,
                  mri_series: str | None = None) -> "Discovery":
    """Pair every FDG/amyloid PET of an ADNI tree with its subject's nearest T1 MRI (see the module doc).

    Args:
        root: the ``ADNI`` folder or its parent.
        window_days: the largest gap in days between the PET and the MRI.
        mri_series: a regular expression (case-insensitive) the MRI series description must match
            (e.g. ``"^MPRAGE$"`` to leave out repeats); default any T1 series.

    Returns:
        A :class:`~medfuse.datasets.base.Discovery`: cases with inputs ``{"mri", "pet"}`` (MR, PT)
        and ``info`` (tracer, tracer kind, days from MRI to PET, both image ids and descriptions);
        skipped series and PETs (unmatched, ambiguous) with the reason.

    Raises:
        NotADirectoryError: ``root`` is not a folder.
    """
    from medfuse.datasets.base import Case, Discovery, Skipped

    root = Path(root)
    if not root.is_dir():
        raise NotADirectoryError(f"{root}: not a folder; give the ADNI download folder")
    base = _adni_folder(root)
    found = Discovery("adni", root)
    mri_filter = re.compile(mri_series, re.IGNORECASE) if mri_series else None
    for subject_dir in sorted(base.iterdir()):
        if not subject_dir.is_dir():
            found.ignore(subject_dir, "file outside the subject folders")
            continue
        if not SUBJECT_PATTERN.match(subject_dir.name):
            found.skipped.append(Skipped(found.relative(subject_dir), "not an ADNI subject folder (e.g. 002_S_0295)"))
            continue
        series: list[_Series] = []
        for desc_dir in sorted(p for p in subject_dir.iterdir() if p.is_dir()):
            for date_dir in sorted(p for p in desc_dir.iterdir() if p.is_dir()):
                for id_dir in sorted(p for p in date_dir.iterdir() if p.is_dir()):
                    s = _read_series(subject_dir.name, desc_dir, date_dir, id_dir, found)
                    if s is not None:
                        series.append(s)
                for f in date_dir.iterdir():
                    if f.is_file():
                        found.ignore(f, "file outside an image-id folder")
            for f in desc_dir.iterdir():
                if f.is_file():
                    found.ignore(f, "file outside an image-id folder")
        for f in subject_dir.iterdir():
            if f.is_file():
                found.ignore(f, "file outside an image-id folder")
        for s in series:
            if s.problem is not None:
                found.skipped.append(Skipped(found.relative(s.folder), s.problem))
        mris = [s for s in series if s.kind == "mri" and s.problem is None]
        if mri_filter is not None:
            for s in [m for m in mris if not mri_filter.search(m.description)]:
                found.skipped.append(Skipped(found.relative(s.folder), "MRI description does not match --mri-series"))
            mris = [m for m in mris if mri_filter.search(m.description)]
        for pet in (s for s in series if s.kind == "pet" and s.problem is None):
            where = found.relative(pet.folder)
            gaps = sorted((((m.date - pet.date).days, m) for m in mris), key=lambda g: (abs(g[0]), g[1].image_id))
            within = [(d, m) for d, m in gaps if abs(d) <= window_days]
            if not within:
                nearest = min((abs(d) for d, _ in gaps), default=None)
                why = (f"unmatched: no T1 MRI of {pet.subject} within {window_days} days of the PET"
                       + (f" (nearest {nearest} days away)" if nearest is not None else " (the subject has none)"))
                found.skipped.append(Skipped(where, why))
                continue
            best = min(abs(d) for d, _ in within)
            tied = [m for d, m in within if abs(d) == best]
            if len(tied) > 1:
                names = "; ".join(f"{_shown(m.description, m.folder.parent.parent, found, description=True)}/"
                                  f"{_shown(m.image_id, m.folder, found)}" for m in tied)
                found.skipped.append(Skipped(where, f"ambiguous: {len(tied)} T1 MRIs {best} days from the PET "
                                                    f"({names}); choose with --mri-series"))
                continue
            mri = tied[0]
            days = (pet.date - mri.date).days
            found.cases.append(Case(
                found.case_id(f"{pet.subject}_{pet.image_id}", pet.folder), {"mri": mri.path, "pet": pet.path},
                {"mri": "MR", "pet": "PT"},
                info={"subject": pet.subject, "tracer": pet.tracer, "tracer_kind": pet.tracer_kind,
                      "days_mri_to_pet": days, "mri_image_id": _shown(mri.image_id, mri.folder, found),
                      "mri_series": _shown(mri.description, mri.folder.parent.parent, found, description=True),
                      "pet_image_id": _shown(pet.image_id, pet.folder, found),
                      "pet_series": _shown(pet.description, pet.folder.parent.parent, found, description=True)},
            ))
    return found
