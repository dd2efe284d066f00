"""Do the two inputs make a pair? Roles that fit their modalities, and one patient.

A fusion of the wrong subject, or of an MRI given as the PET, still looks plausible. Before anything is
registered, :func:`check_pair` compares what the two inputs say about themselves:

- **Roles and modalities.** A DICOM input's Modality (0008,0060) must agree with the modality the user
  declared for its role (``--moving-modality PT`` for a series whose Modality is MR is refused) and with a
  modality word in its file or folder name (a folder named ``pet`` that holds an MR series). For a fusion, a
  functional reference (PET, SPECT) with an anatomical moving scan (MRI, CT) means the two were given the
  wrong way round: the output would be on the PET's grid (``medfuse register`` may register onto a PET).
- **One patient.** When both inputs are DICOM with a PatientID (0010,0020), the two IDs must be equal.
  They are compared only through a keyed hash (HMAC-SHA-256 with a random key drawn once per process and
  never stored): no ID, and no hash of one, is kept, logged, printed or written. The sidecar records only
  whether they matched.
- **Frames of reference** are recorded (never logged) in the opaque form the DICOM reader keeps
  (``meta["frame_of_reference"]``: the first 16 hex digits of the SHA-256 of the FrameOfReferenceUID),
  so that two sidecars can be matched without the UIDs themselves (DICOM's de-identification profile,
  PS3.15 Annex E, replaces FrameOfReferenceUID) and whether the pair shared one frame is on record.
  Different frames (or studies) are normal for a pair scanned on two machines and are not refused.

Each problem raises :class:`~medfuse.errors.PairMismatchError` with one line that names the input by its
role (never its path or any DICOM text) and the fix; ``accept_mismatch=True`` (``--accept-mismatch`` on
``medfuse fuse`` and ``medfuse register``) fuses anyway, with a warning, and the sidecar lists what was
overridden.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from typing import Any

from medfuse.errors import OPTION
from medfuse.modality import MODALITIES, MODALITY_LABELS, canonical_modality, modality_from_name

__all__ = ["check_pair"]

log = logging.getLogger(__name__)

#: modalities that show anatomy (a reference) and those that show function (the moving scan of a pair)
_ANATOMICAL = ("MR", "CT")
_FUNCTIONAL = ("PT", "NM")
#: key of the patient-ID hashes: random, drawn once per process, never stored or shown
_KEY = secrets.token_bytes(32)


def _patient_digest(volume) -> bytes | None:
    """HMAC-SHA-256 of the input's DICOM PatientID under a per-process random key, or None (no ID)."""
    identity = (volume.meta or {}).get("dicom_uids")
    patient = getattr(identity, "patient", None) or {}
    value = str(patient.get("PatientID") or "").strip()
    if not value:
        return None
    return hmac.new(_KEY, value.encode("utf-8", "surrogatepass"), hashlib.sha256).digest()


def _dicom_modality(volume) -> str | None:
    """The DICOM Modality of an input read from DICOM, as a medfuse code, or None (not DICOM, or OT/SEG...)."""
    meta = volume.meta or {}
    if meta.get("format") != "dicom":
        return None
    value = str(meta.get("modality") or "").strip().upper()
    return value if value in MODALITIES else None


def _label(code: str | None) -> str:
    return MODALITY_LABELS.get(code or "", str(code))


def check_pair(
    reference,
    moving,
    *,
    accept_mismatch: bool = False,
    paths: tuple[Any, Any] | None = None,
    names: tuple[str, str] = ("the reference scan", "the moving scan"),
    swapped_roles: bool = True,
) -> dict[str, Any]:
    """Check that ``reference`` and ``moving`` are in the right roles and of one patient.

    Args:
        reference, moving: the inputs as read (:class:`~medfuse.volume.Volume`, modality resolved by
            :func:`medfuse.modality.resolve_modality`; DICOM inputs carry ``meta["modality"]`` and
            ``meta["dicom_uids"]``).
        accept_mismatch: warn (and record) instead of raising.
        paths: the paths the inputs were read from, for the name-word check (never shown).
        names: how messages name the two inputs: by their roles, never by their paths.
        swapped_roles: refuse a PET/SPECT reference with an MRI/CT moving scan (fusion); registration onto a
            PET grid is legitimate, so ``medfuse register`` turns this off.

    Returns:
        The sidecar record: ``{"same_patient": True|False|None (not comparable), "patient_comparison": how,
        "frame_of_reference": {"reference", "moving" (opaque ids or None), "same": bool|None},
        "mismatches_accepted": [one line per overridden problem]}``.

    Raises:
        PairMismatchError: a role contradicts a DICOM Modality, the roles look swapped, or the PatientIDs
            differ; and ``accept_mismatch`` is false. Its ``option`` is ``accept_mismatch`` (the override) and
            its ``role`` the input the first problem is about (None for both).
    """
    from medfuse.errors import PairMismatchError

    problems: list[tuple[str, str | None]] = []  # (problem, the role it is about)
    fix = f"or go on anyway with {OPTION}"
    for volume, path, name, role in zip((reference, moving), paths or (None, None), names, ("reference", "moving")):
        dicom = _dicom_modality(volume)
        if dicom is None:
            continue
        source = (volume.meta or {}).get("modality_source")
        declared = canonical_modality(volume.modality) if volume.modality is not None else None
        if source == "user" and declared is not None and declared != dicom:
            problems.append((
                f"{name}: the modality given for it says {_label(declared)} but its DICOM Modality (0008,0060) is "
                f"{_label(dicom)}; check that the right scan was given as the {role} scan and correct its "
                f"modality, {fix}", role))
            continue
        named = modality_from_name(path) if path is not None else None
        if named is not None and named != dicom:
            problems.append((
                f"{name}: its file name says {_label(named)} but its DICOM Modality (0008,0060) is "
                f"{_label(dicom)}; check that the scans were given in the right roles (reference and moving), {fix}",
                role))
    ref_code, mov_code = (canonical_modality(v.modality) if v.modality is not None else None for v in (reference, moving))
    if swapped_roles and ref_code in _FUNCTIONAL and mov_code in _ANATOMICAL and not problems:
        problems.append((
            f"{names[0]} is {_label(ref_code)} and {names[1]} is {_label(mov_code)}: the "
            f"roles look swapped (the output takes the grid of the reference scan); give the {_label(mov_code)} as "
            f"the reference and the {_label(ref_code)} as the moving scan, {fix}", None))
    a, b = _patient_digest(reference), _patient_digest(moving)
    same_patient = None if a is None or b is None else hmac.compare_digest(a, b)
    if same_patient is False:
        problems.append((
            f"{names[0]} and {names[1]} belong to different patients (their DICOM "
            f"PatientIDs differ); give two scans of one patient, {fix} (e.g. for exports pseudonymized separately)",
            None))
    if problems and not accept_mismatch:
        first, role = problems[0]
        raise PairMismatchError(first + (f" ({len(problems) - 1} more problem(s) with this pair)"
                                         if len(problems) > 1 else ""), role=role, option="accept_mismatch")
    accepted = [problem.split(f", {fix}")[0] for problem, _ in problems]
    for problem in accepted:
        log.warning("pair check overridden (accept_mismatch): %s", problem)
    frames = [(v.meta or {}).get("frame_of_reference") for v in (reference, moving)]
    return {
        "same_patient": same_patient,
        "patient_comparison": (
            "DICOM PatientIDs compared through a keyed SHA-256 hash (random key per run, not stored); neither the "
            "IDs nor their hashes are kept" if same_patient is not None else
            "not compared: " + ("neither input" if a is None and b is None else "only one input") + " is DICOM "
            "with a PatientID"
        ),
        "frame_of_reference": {
            "reference": frames[0],
            "moving": frames[1],
            "same": None if None in frames else frames[0] == frames[1],
            "note": "first 16 hex digits of the SHA-256 of each DICOM FrameOfReferenceUID (None: not DICOM)",
        },
        "mismatches_accepted": accepted,
    }
