"""The whole fusion of one case, composed from the steps' own modules.

    check options -> load (+ modality) -> register/resample -> normalize -> (colour split) -> fuse
    -> (colour merge) -> write + sidecar + QC

:func:`fuse_volumes` works on :class:`~medfuse.volume.Volume` objects (the API, Slicer and the
MONAI transforms call it or its steps); :func:`fuse_files` and :func:`register_files` add checking
every option and output path before any work, reading, writing, the JSON sidecar and the QC
picture (the CLI and the demo call them). The fused result always has the reference's grid and
affine.

PET and SPECT volumes are fused in colour: the normalized moving scan goes through a colour map
(:mod:`medfuse.color`; the AANLIB tables the networks were trained with by default), its
luminance is fused with the reference and its chroma kept (the same path as 2D AANLIB colour
slices), and the result is an RGB volume. CT-MRI and MR-MR stay grey. :func:`fuse_files` also
writes, by default, the moving scan on the reference grid in its own units (SUV, Bq/mL, HU, ...;
``<out stem>_moving<ext>``), so the display image is never the only output.

Registration is skipped when the inputs already share one grid (the same voxel centres in world space,
in any storage order: :mod:`medfuse.registration.grid`) or one DICOM frame of reference, unless
``register=True``; the sidecar says so.
"""

from __future__ import annotations

import logging
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from medfuse.errors import MedfuseError, SpaceMismatchError, UnsupportedInputError
from medfuse.volume import Volume

__all__ = [
    "FusionResult",
    "fuse_volumes",
    "fuse_files",
    "register_files",
    "prepare_pair",
    "default_method",
    "check_fusion_options",
    "load_inputs",
    "SLICE_SUFFIXES",
    "quantity_units",
    "quantitative_path",
    "role_label",
    "OUT_FORMATS",
]

#: what ``fuse_files(out_format=...)`` / ``medfuse fuse --format`` accept (None: from the extension of ``out``)
OUT_FORMATS = ("nifti", "nrrd", "dicom")

log = logging.getLogger(__name__)

#: extensions a fused 2D slice can be written to (3D volumes: ``medfuse.io.VOLUME_SUFFIXES``)
SLICE_SUFFIXES = (".png", ".tif", ".tiff", ".bmp")
#: a progress callback: ``progress(percent, step)`` (the command line's ``--progress`` prints each call)
Progress = Callable[[int, str], None]


def _step(progress: Progress | None, percent: int, step: str) -> None:
    log.debug("step: %s", step)
    if progress is not None:
        progress(int(percent), step)


#: options of :func:`~medfuse.io.load_volume` that the command line offers per input (``--moving-series``...)
_LOAD_OPTIONS = ("series", "frame", "xform", "assume-orientation", "modality")


@dataclass
class FusionResult:
    """What :func:`fuse_volumes` returns.

    Attributes:
        fused: on the reference grid with the reference affine. 3D: float32 in [0, 1]. 2D: float32
            on 0..255, with ``rgb`` set when the moving slice was colour.
        reference: the normalized reference ([0, 1]).
        moving: the normalized moving scan on the reference grid ([0, 1]).
        method: the fusion method used.
        registration: the registration result, or None when the inputs were taken as aligned.
        timings: seconds per step.
        alignment: how the moving scan was put on the reference grid, in words and figures (for the
            sidecar): ``{"registered": bool, "reason": ...}`` plus the registration summary.
        weights: the network checkpoint used (None for classical methods).
        quantitative: 3D only: the moving scan on the reference grid in its own units (float32,
            reference affine): the registration's resampled scan, in SUV when the PET metadata allow
            it; ``meta["units"]`` names the units. None for 2D slices.
        colour: for colour fusion, ``{"colormap", "range", "units", "rule"}``: which colour map the
            normalized moving scan went through and which of its values map to the ends of the map;
            None when the result is grey.
        ignored_options: one line per option that had no effect on this pair and why (also logged as a
            warning and written to the sidecar), so no option is ignored silently.
    """

    fused: Volume
    reference: Volume
    moving: Volume
    method: str
    registration: object | None = None
    timings: dict[str, float] = field(default_factory=dict)
    alignment: dict[str, Any] = field(default_factory=dict)
    weights: Path | None = None
    quantitative: Volume | None = None
    colour: dict[str, Any] | None = None
    ignored_options: list[str] = field(default_factory=list)


def default_method(moving: Volume) -> str:
    """The method used when none is given: the pair's default in ``medfuse/weights/defaults.json``
    (chosen by ``benchmarks/quality.py`` on cross-validated folds), else ``mean``."""
    from medfuse.fusion import pair_for_modality
    from medfuse.weights import default_method_for_pair

    return default_method_for_pair(pair_for_modality(moving.modality)) or "mean"


# ----------------------------------------------------------------------------------------------
# checks before any work


def check_fusion_options(
    *,
    out: str | os.PathLike | None = None,
    method: str | None = None,
    weights: str | os.PathLike | None = None,
    window=None,
    device: str = "cpu",
    registration_type: str = "rigid",
    transform_out: str | os.PathLike | None = None,
    extra_outputs: tuple = (),
    force: bool = False,
) -> dict[str, Any]:
    """Check every option and output path before anything is loaded or registered.

    Returns:
        The checked values: ``{"method": canonical name or None, "window": parsed window}``.

    Raises:
        OptionError: an unknown method, registration type or CT window (with "did you mean").
        UnsupportedInputError: an output extension medfuse cannot write, a missing weights file, a
            CUDA device on a machine without one.
        OutputExistsError: an output exists and ``force`` is false.
    """
    from medfuse.errors import look_up
    from medfuse.io import VOLUME_SUFFIXES, check_output
    from medfuse.io.atomic import full_suffix

    checked: dict[str, Any] = {"method": None, "window": window}
    if method is not None:
        from medfuse.fusion import available_methods

        checked["method"] = look_up(method, list(available_methods()), "fusion method (--method)", ignore_case=True)
    look_up(registration_type, ("rigid", "affine", "bspline"), "registration (--registration)")
    if window is not None and not isinstance(window, (tuple, list)):
        from medfuse.intensity.normalize import CTWindow

        look_up(str(window).strip().lower().replace("-", "_"), [w.value for w in CTWindow], "CT window (--window)")
    if weights is not None and not Path(weights).is_file():
        raise UnsupportedInputError(f"{weights}: weights file not found; give an existing checkpoint with --weights")
    if str(device).startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise UnsupportedInputError(f"device {device!r} requested but no CUDA GPU is available; use --device cpu")
    if out is not None:
        suffix = full_suffix(out)
        if suffix not in (*VOLUME_SUFFIXES, *SLICE_SUFFIXES):
            raise UnsupportedInputError(
                f"{out}: cannot write {suffix or 'a file without extension'!r}; give --out a name ending in "
                f"{', '.join(VOLUME_SUFFIXES)} (volumes) or {', '.join(SLICE_SUFFIXES)} (2D slices)"
            )
    if transform_out is not None:
        from medfuse.registration.transform import TRANSFORM_SUFFIXES

        if full_suffix(transform_out) not in TRANSFORM_SUFFIXES:
            raise UnsupportedInputError(
                f"{transform_out}: transforms are written as ITK transform files; give --transform a name ending in "
                f"{', '.join(TRANSFORM_SUFFIXES)}"
            )
    for target in (out, transform_out, *extra_outputs):
        if target is not None:
            check_output(target, force)
    return checked


def _check_output_dims(volume: Volume, out: str | os.PathLike) -> None:
    from medfuse.io.atomic import full_suffix

    if volume.ndim == 3 and full_suffix(out) in SLICE_SUFFIXES:
        from medfuse.io import VOLUME_SUFFIXES

        raise UnsupportedInputError(
            f"{out}: a 3D result cannot be written as {full_suffix(out)}; give --out a volume name ending in "
            f"{', '.join(VOLUME_SUFFIXES)}"
        )


def _role_flags(message: str, role: str) -> str:
    """Name the per-input flags of the command line (``--series`` -> ``--moving-series``)."""
    for option in _LOAD_OPTIONS:
        message = re.sub(rf"--{option}\b", f"--{role}-{option}", message)
    return message


def load_inputs(
    reference: str | os.PathLike,
    moving: str | os.PathLike,
    *,
    reference_options: dict[str, Any] | None = None,
    moving_options: dict[str, Any] | None = None,
    accept_mismatch: bool = False,
    for_fusion: bool = True,
) -> tuple[Volume, Volume]:
    """Read the two inputs, decide their modalities and check they make a pair; nothing is registered yet.

    Args:
        reference, moving: paths (see :func:`medfuse.io.load_volume`).
        reference_options, moving_options: keyword options of :func:`~medfuse.io.load_volume` for
            each (``modality``, ``series``, ``frame``, ``xform``, ``assume_orientation``).
        accept_mismatch: go on (with a warning) when the pair check fails (:mod:`medfuse.pair_check`).
        for_fusion: the pair is to be fused (a PET/SPECT reference with an MRI/CT moving scan is refused as
            swapped); False for registration only.

    Returns:
        ``(reference, moving)``, each with a known modality (:mod:`medfuse.modality`);
        ``moving.meta["pair_check"]`` holds the pair check's record for the sidecar.

    Raises:
        UnknownModalityError: nothing tells an input's modality (the message names
            ``--reference-modality``/``--moving-modality``); any error of the readers, with the
            per-input flag names of the command line.
        SpaceMismatchError: a 2D and a 3D input.
        PairMismatchError: wrong roles or different patients (:func:`medfuse.pair_check.check_pair`).
    """
    from medfuse.io import load_volume
    from medfuse.io.naming import input_label, redact
    from medfuse.modality import require_modality

    volumes = []
    for role, path, options in (("reference", reference, reference_options), ("moving", moving, moving_options)):
        label = role_label(role)
        with input_label(path, label):  # messages and logs name the input by its role, never by its path
            try:
                volume = load_volume(path, **{k: v for k, v in (options or {}).items() if v is not None})
                volume.source = label
                require_modality(volume, f"--{role}-modality")
            except (MedfuseError, FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError) as err:
                text = redact(_role_flags(str(err), role))
                if text == str(err):
                    raise
                raise type(err)(text) from None  # the original text may name the path
        volumes.append(volume)
    ref, mov = volumes
    if ref.ndim != mov.ndim:
        raise SpaceMismatchError(
            f"{role_label('moving')} is {mov.ndim}D and {role_label('reference')} is {ref.ndim}D; give two "
            "volumes or two slices"
        )
    from medfuse.pair_check import check_pair

    mov.meta["pair_check"] = check_pair(ref, mov, accept_mismatch=accept_mismatch, paths=(reference, moving),
                                        names=(role_label("reference"), role_label("moving")),
                                        swapped_roles=for_fusion)
    return ref, mov


def role_label(role: str) -> str:
    """How messages name an input read through the pipeline: by its role and flag, never by its path
    (folder and file names may be identifiers; see :mod:`medfuse.io.naming`)."""
    return f"the {role} scan (--{role})"


# ----------------------------------------------------------------------------------------------
# the steps on volumes


def prepare_pair(
    reference: Volume,
    moving: Volume,
    *,
    register: bool | None = None,
    registration_type: str = "rigid",
    window=None,
    accept_registration: bool = False,
) -> tuple[Volume, Volume, object | None, dict[str, float]]:
    """Register (or resample) ``moving`` onto ``reference`` and normalize both to [0, 1].

    Args:
        register: True: register; False: only resample through the scanner coordinates (inputs
            already aligned); None (default): register 3D pairs unless they already share one grid
            or one DICOM frame of reference; never for 2D slices.
        registration_type: ``rigid`` (default: scans of one head differ by a rigid motion), ``affine``
            or ``bspline``.
        window: CT window preset name or ``(level, width)``.
        accept_registration: keep a registration whose self-checks failed (a warning, recorded in
            ``moving.meta["alignment"]``) instead of raising :class:`~medfuse.errors.RegistrationError`.

    Returns:
        ``(reference_normalized, moving_normalized_on_reference_grid, registration_or_None, timings)``;
        ``moving_normalized.meta["alignment"]`` says whether and how it was registered.
    """
    return _prepare_pair(reference, moving, register=register, registration_type=registration_type, window=window,
                         accept_registration=accept_registration)[:4]


def _prepare_pair(
    reference: Volume,
    moving: Volume,
    *,
    register: bool | None = None,
    registration_type: str = "rigid",
    window=None,
    accept_registration: bool = False,
    progress: Progress | None = None,
) -> tuple[Volume, Volume, object | None, dict[str, float], Volume]:
    """:func:`prepare_pair`, plus the moving scan on the reference grid before normalization (its own units)."""
    from medfuse.modality import require_modality

    require_modality(reference, "--reference-modality")
    require_modality(moving, "--moving-modality")
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    result = None
    if reference.ndim == 2 or moving.ndim == 2:
        if reference.shape != moving.shape:
            raise SpaceMismatchError(
                f"{moving.name}: a slice of shape {moving.shape} does not match the shape {reference.shape} of "
                f"{reference.name}; 2D pairs must be pre-aligned slices of one size"
            )
        aligned = moving
        alignment = {"registered": False, "reason": "2D slices are taken as pre-aligned"}
    else:
        from medfuse import registration as reg

        if register is None and reg.same_voxel_centres(reference, moving):  # in any storage order
            aligned = reg.resample_to_reference(moving, reference)  # exact: axes permuted/flipped, not interpolated
            order = "" if reference.same_grid(moving) else ", stored in another axis order: reordered exactly"
            alignment = {"registered": False, "reason": f"the inputs share one grid (the same voxel centres in world "
                                                        f"space{order}): taken as aligned; pass --register to "
                                                        "register them anyway"}
            log.info("%s and %s share one grid: not registered (--register to register anyway)",
                     moving.name, reference.name)
        elif register is False:
            aligned = reg.resample_to_reference(moving, reference)
            alignment = {"registered": False, "reason": "registration turned off (--no-register): resampled "
                                                        "through the scanner coordinates"}
        else:  # register() itself skips scans that share one DICOM frame of reference (hybrid PET/CT)
            _step(progress, 20, "registering")
            result = reg.register(reference, moving, transform=registration_type, checks=not accept_registration,
                                  skip_same_frame=register is None)  # --register means register
            aligned = result.resampled
            summary = result.summary()
            alignment = {"registered": not result.skipped, **summary}
            if result.skipped:
                alignment["reason"] = "the inputs share one DICOM frame of reference: resampled in world coordinates"
            failures = getattr(result, "check_failures", None) or [
                m[len("CHECK FAILED: "):] for m in result.messages if m.startswith("CHECK FAILED: ")]
            if failures:
                alignment["overridden_check_failures"] = failures
    timings["register"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    from medfuse.intensity import normalize

    _step(progress, 60, "normalizing")
    ref_n = normalize(reference)
    mov_n = normalize(aligned, window=window)
    mov_n.meta["alignment"] = alignment
    timings["normalize"] = time.perf_counter() - t0
    return ref_n, mov_n, result, timings, aligned


def fuse_volumes(
    reference: Volume,
    moving: Volume,
    method: str | None = None,
    *,
    register: bool | None = None,
    registration_type: str = "rigid",
    weights: str | os.PathLike | None = None,
    window=None,
    device: str = "cpu",
    accept_registration: bool = False,
    colormap: str | None = None,
    progress: Progress | None = None,
    accept_mismatch: bool = False,
    rgb_dtype: type = np.float32,
) -> FusionResult:
    """Fuse ``moving`` into ``reference``'s geometry.

    Args:
        reference: the anatomical scan (MRI, or CT) whose grid the output keeps; its modality must be
            known (``reference.modality``, see :mod:`medfuse.modality`).
        moving: CT, PET, SPECT or another MRI (3D), or a pre-aligned 2D slice (gray or colour).
        method: a classical method or a network name; default :func:`default_method`.
        register, registration_type, window, accept_registration: see :func:`prepare_pair`.
        weights: network checkpoint (default: the shipped weights of the pair).
        device: torch device for networks.
        colormap: 3D PET/SPECT: the colour map the normalized moving scan goes through before its
            luminance is fused (:data:`medfuse.color.COLORMAPS`; default ``aanlib_pet`` for PET,
            ``aanlib_spect`` for SPECT, the tables the networks were trained with); ``"gray"`` fuses
            in grey. Ignored for CT and MR (always grey) and for 2D colour slices (their own colours).
        progress: called as ``progress(percent, step)`` at each step (the CLI's ``--progress``).
        accept_mismatch: fuse (with a warning) a pair that fails :func:`medfuse.pair_check.check_pair`
            (a role that contradicts a DICOM Modality, swapped roles, different DICOM PatientIDs).
        rgb_dtype: ``np.uint8`` keeps a 3D colour result's ``fused.rgb`` as uint8 (a quarter of the memory of
            float32; :func:`fuse_files` asks for it); values are the same.

    Returns:
        A :class:`FusionResult`; ``result.fused.affine`` equals ``reference.affine``. For colour
        fusion ``result.fused.rgb`` holds the RGB volume (0..255) and ``result.fused.array`` its
        luminance in [0, 1]; ``result.quantitative`` is the moving scan on the reference grid in its units.

    Raises:
        UnknownModalityError: an input's modality is unknown.
        OptionError: an unknown colour map.
        PairMismatchError: the pair check fails and ``accept_mismatch`` is false.
    """
    from medfuse.color import fuse_colormapped, fuse_in_colour
    from medfuse.fusion import available_methods, fuse_arrays, pair_for_modality, voxelwise_fusion
    from medfuse.modality import require_modality
    from medfuse.pair_check import check_pair

    require_modality(moving, "--moving-modality")
    if "pair_check" not in moving.meta:  # load_inputs checked the pair already
        check_pair(reference, moving, accept_mismatch=accept_mismatch)
    method = method or default_method(moving)
    if weights is not None and available_methods().get(method) != "network":
        from medfuse.errors import OptionError

        raise OptionError(f"--weights is for networks, and '{method}' is a classical method; drop --weights or "
                          "choose a network with --method")
    colour_map = _colormap_for(moving, colormap) if moving.ndim == 3 and moving.rgb is None else None
    ref_n, mov_n, reg_result, timings, aligned = _prepare_pair(
        reference, moving, register=register, registration_type=registration_type, window=window,
        accept_registration=accept_registration, progress=progress,
    )
    _step(progress, 70, f"fusing with {method}")
    pair = pair_for_modality(moving.modality)
    weights_used = None
    ignored = _ignored_options(moving, mov_n, registration_type, window, colormap, colour_map)
    if available_methods().get(method) == "network":
        from medfuse.inference import shipped_weights_path

        weights_used = Path(weights) if weights is not None else shipped_weights_path(method, pair)

    def fuse(moving01: np.ndarray) -> np.ndarray:
        return fuse_arrays(ref_n.array, moving01, method, weights=None if weights is None else str(weights),
                           pair=pair, device=device, affine=reference.affine)

    t0 = time.perf_counter()
    rgb = colour = None
    if mov_n.rgb is not None:  # a colour input (AANLIB slice): fused luminance with its own chroma
        fused, rgb = fuse_in_colour(mov_n.rgb, fuse)
    elif colour_map is not None:  # PET/SPECT volume: through the colour map, then the same path
        colour = _colour_record(mov_n, colour_map)
        # colour lookup, luminance split, fusion (in the same pass when voxelwise) and merge, uint8 RGB out
        fused, rgb = fuse_colormapped(mov_n.array, colour_map, fuse, voxelwise=voxelwise_fusion(method, ref_n.array))
    else:
        fused = fuse(mov_n.array)
    if reference.ndim == 3:  # where the moving scan ends, the fused image turns into the reference, without an edge
        from medfuse.coverage import feather_uncovered, field_of_view

        fov = field_of_view(reference, moving, None if reg_result is None else reg_result.transform)
        fused, rgb = feather_uncovered(fused, ref_n.array, fov.weight, rgb)
        mov_n.meta["alignment"]["field_of_view"] = fov.record
        if fov.warning(moving.name):
            log.warning("%s", fov.warning(moving.name))
    timings["fuse"] = time.perf_counter() - t0
    from medfuse import __version__

    meta = {"fusion_method": method, "format": reference.meta.get("format"),
            "medfuse_description": f"medfuse {__version__} fused {method}" + (f" {colour_map}" if colour else "")}
    if colour is not None:
        meta["colour"] = colour
    if reference.ndim == 2:
        out = Volume(255.0 * fused, reference.affine, modality=reference.modality, meta=meta, rgb=rgb)
    else:
        keep_uint8 = rgb is not None and rgb.dtype == np.uint8 and np.dtype(rgb_dtype) == np.uint8
        out = Volume(fused, reference.affine, modality=reference.modality, meta=meta, rgb=None if keep_uint8 else rgb)
        if keep_uint8:
            out.rgb = rgb  # Volume would store float32
    quantitative = _quantitative(aligned, mov_n, reference) if reference.ndim == 3 else None
    log.debug("fused with %s in %.2f s (register %.2f s)", method, sum(timings.values()), timings["register"])
    return FusionResult(out, ref_n, mov_n, method, reg_result, timings, dict(mov_n.meta.get("alignment", {})),
                        weights_used, quantitative, colour, ignored)


def _ignored_options(moving: Volume, mov_n: Volume, registration_type: str, window, colormap, colour_map) -> list[str]:
    """The options that had no effect on this pair, each with why (logged as warnings; the sidecar lists them)."""
    notes = []
    alignment = mov_n.meta.get("alignment") or {}
    if str(registration_type).lower() != "rigid" and not alignment.get("registered"):
        notes.append(f"--registration {registration_type}: not registered ({alignment.get('reason', 'aligned')})")
    method = (mov_n.meta.get("normalization") or {}).get("method")
    if window is not None and method not in ("ct_window", "suv"):
        notes.append(f"--window: the moving scan was normalized by '{method}', not through a window")
    if colormap is not None and colour_map is None and str(colormap).strip().lower() not in _GRAY:
        notes.append(f"--colormap {colormap}: only PET/SPECT volumes are fused in colour; this "
                     f"{moving.modality or 'moving'} {'slice keeps its own colours' if moving.ndim == 2 else 'is grey'}")
    for note in notes:
        log.warning("option without effect: %s", note)
    return notes


#: names that ask for grey fusion of a PET/SPECT volume
_GRAY = ("gray", "grey", "none", "off")


def _colormap_for(moving: Volume, colormap: str | None) -> str | None:
    """The colour map a 3D moving scan is shown in: None for CT/MR or when grey is asked for."""
    from medfuse.color import colormap_name, default_colormap

    default = default_colormap(moving.modality)
    if colormap is not None and str(colormap).strip().lower() in _GRAY:
        return None
    if colormap is not None:
        name = colormap_name(colormap)  # checked even when unused, so a typo is never silent
        return name if default is not None else None
    return default


def quantity_units(moving: Volume, normalized: Volume | None = None) -> str:
    """The units of a moving scan's values (``SUVbw`` when SUV is computed, else what is known)."""
    record = (normalized.meta.get("normalization") or {}) if normalized is not None else {}
    if record.get("method") == "suv":
        return "SUVbw"
    code = str(moving.modality or "").upper()
    stored = str(moving.meta.get("units") or (moving.meta.get("pet") or {}).get("units") or "").strip()
    known = {"BQML": "Bq/mL", "CNTS": "counts", "GML": "SUVbw", "HU": "HU", "SUVBW": "SUVbw"}
    if stored.upper() in known:
        return known[stored.upper()]
    if code == "CT" and record.get("method") == "ct_window":
        return "HU"
    if code == "MR":
        return "MR signal (arbitrary units, as stored)"
    return stored or "as stored in the input (units not recorded in the file)"


def _quantitative(aligned: Volume, mov_n: Volume, reference: Volume) -> Volume:
    """The moving scan on the reference grid in its own units (SUV when the normalization computed it)."""
    record = mov_n.meta.get("normalization") or {}
    values = np.asarray(aligned.array, dtype=np.float32)
    if record.get("method") == "suv":
        values = (values.astype(np.float64) * float(record["suv_factor"])).astype(np.float32)
    units = quantity_units(aligned, mov_n)
    from medfuse import __version__

    meta = {"units": units, "medfuse_description": f"medfuse {__version__} {aligned.modality} on reference grid, {units}"}
    return Volume(values, reference.affine, modality=aligned.modality, meta=meta)


def _colour_record(mov_n: Volume, colour_map: str) -> dict[str, Any]:
    """Which colour map and which values of the moving scan map to its two ends (for the sidecar)."""
    record = mov_n.meta.get("normalization") or {}
    if record.get("method") == "suv":
        lo, hi = record["suv_window"]
        units, rule = "SUVbw", "SUV 0 to the 99.5th percentile of SUV inside the head mask (or the --window given)"
    else:
        lo, hi = record.get("lo"), record.get("hi")
        units = quantity_units(mov_n, mov_n)
        pct = record.get("percentiles")
        rule = (f"percentiles {pct[0]:g} to {pct[1]:g} of the voxels inside the head mask" if pct else
                f"normalization '{record.get('method')}'")
        if "suv_unavailable" in record:
            rule += f" (no SUV: {record['suv_unavailable']})"
    return {"colormap": colour_map, "range": [float(lo), float(hi)], "units": units, "rule": rule}


# ----------------------------------------------------------------------------------------------
# files in, files out (the CLI, the demo and the batch runner call these)


def _slice_plane(reference: Volume) -> dict[str, Any]:
    if reference.ndim != 3:
        return {"slice_axis": None, "note": "2D input: one slice"}
    import nibabel.orientations as nio

    from medfuse.volume import slice_axis

    return {"slice_axis": int(slice_axis(reference.affine)), "reference_orientation": "".join(nio.aff2axcodes(reference.affine))}


def _provenance(command: str, **parts: Any) -> dict[str, Any]:
    import platform

    from medfuse import __version__

    return {"medfuse_version": __version__, "command": command, "python": platform.python_version(), **parts}


def quantitative_path(out: str | os.PathLike) -> Path:
    """Where :func:`fuse_files` writes the moving scan in its units: ``<out stem>_moving<same extension>``."""
    from medfuse.io.atomic import full_suffix

    out = Path(out)
    suffix = full_suffix(out)
    return out.with_name(out.name[: -len(suffix)] + "_moving" + suffix)


def fuse_files(
    reference: str | os.PathLike,
    moving: str | os.PathLike,
    out: str | os.PathLike,
    method: str | None = None,
    *,
    force: bool = False,
    qc: str | os.PathLike | None | bool = True,
    register: bool | None = None,
    registration_type: str = "rigid",
    transform_out: str | os.PathLike | None = None,
    weights: str | os.PathLike | None = None,
    window=None,
    device: str = "cpu",
    reference_modality: str | None = None,
    moving_modality: str | None = None,
    reference_options: dict[str, Any] | None = None,
    moving_options: dict[str, Any] | None = None,
    accept_registration: bool = False,
    sidecar: bool = True,
    colormap: str | None = None,
    quantitative: str | os.PathLike | bool | None = True,
    progress: Progress | None = None,
    out_format: str | None = None,
    accept_mismatch: bool = False,
    compress_level: int | None = None,
) -> dict[str, Path]:
    """Read two scans, fuse them and write the result, its sidecar and a QC picture.

    Every option and output path is checked before anything is read (no overwrite without
    ``force``); outputs are written atomically.

    Args:
        reference, moving: input paths (see :func:`medfuse.io.load_volume`).
        out: the fused output; its extension picks the format (``.nii.gz``, ``.nrrd``, ``.png``...).
        qc: True: write ``<out stem>_qc.png`` beside ``out``; a path: write it there; False/None: none.
        transform_out: where to save the registration transform (``.tfm``); the identity when the inputs
            were not registered (same grid, ``--no-register``, 2D slices), as the sidecar notes.
        reference_modality, moving_modality: ``MR``, ``CT``, ``PT``, ``NM`` when DICOM and the file
            name do not tell (:mod:`medfuse.modality`).
        reference_options, moving_options: more :func:`~medfuse.io.load_volume` options per input
            (``series``, ``frame``, ``xform``, ``assume_orientation``).
        sidecar: write ``<out stem>.json`` (:mod:`medfuse.report.sidecar`).
        colormap: colour map of PET/SPECT volumes (see :func:`fuse_volumes`); the fused PET/SPECT
            volume is then an RGB image (NIfTI RGB24, NRRD/MHA 3-component vector).
        quantitative: 3D: True (default) writes the moving scan on the reference grid in its own
            units (SUV, Bq/mL, HU...; float32, reference affine) as :func:`quantitative_path`; a path
            writes it there; False/None: not written. Its units are in the sidecar.
        progress: called as ``progress(percent, step)`` at each step (``medfuse fuse --progress``).
        out_format: None (the extension of ``out`` decides), ``"nifti"`` / ``"nrrd"`` (``out`` must end in
            that format's extension), or ``"dicom"``: ``out`` is a folder that receives the fused volume as a
            derived DICOM series (:func:`medfuse.io.dicom.writer.write_dicom_series`: RGB for colour fusion,
            else grey), and ``<out>_moving/`` the quantitative moving scan as a second series; the QC picture
            is ``<out>_qc.png`` and the sidecar ``<out>.json``. 3D only.
        accept_mismatch: fuse a pair that fails :func:`medfuse.pair_check.check_pair` (wrong roles, different
            patients) with a warning, recorded in the sidecar (``--accept-mismatch``).
        compress_level: gzip level (0..9) of ``.nii.gz`` outputs (``--compress-level``; default
            :data:`medfuse.io.atomic.DEFAULT_COMPRESS_LEVEL`); ``.nii`` is never compressed.
        The rest as in :func:`fuse_volumes`.

    Returns:
        ``{"fused", "quantitative", "transform", "qc", "sidecar"}`` -> paths, for what was written.
    """
    if out_format is not None:
        from medfuse.errors import look_up

        out_format = look_up(str(out_format).lower(), OUT_FORMATS, "output format")
        if out_format == "dicom":
            return _fuse_to_dicom(
                reference, moving, out, method, force=force, qc=qc, register=register,
                registration_type=registration_type, transform_out=transform_out, weights=weights, window=window,
                device=device, reference_modality=reference_modality, moving_modality=moving_modality,
                reference_options=reference_options, moving_options=moving_options,
                accept_registration=accept_registration, sidecar=sidecar, colormap=colormap,
                quantitative=quantitative, progress=progress, accept_mismatch=accept_mismatch,
            )
        from medfuse.io.atomic import full_suffix as _suffix

        wanted = {"nifti": (".nii.gz", ".nii"), "nrrd": (".nrrd", ".nhdr")}[out_format]
        if _suffix(out) not in wanted:
            raise UnsupportedInputError(
                f"{out}: the {out_format} output format writes {' or '.join(wanted)} files; give --out such a name"
            )
    from medfuse.io import save_volume
    from medfuse.io.atomic import check_compress_level, full_suffix
    from medfuse.report.sidecar import quantitative_record, sidecar_path, write_sidecar

    if compress_level is not None:
        compress_level = check_compress_level(compress_level)
    out = Path(out)
    qc_path = None
    if qc is True:
        qc_path = out.with_name(out.name[: -len(full_suffix(out))] + "_qc.png")
    elif qc:
        qc_path = Path(qc)
    quant_path = None
    if quantitative is True and full_suffix(out) not in SLICE_SUFFIXES:
        quant_path = quantitative_path(out)
    elif quantitative and quantitative is not True:
        quant_path = Path(quantitative)
        from medfuse.io import VOLUME_SUFFIXES

        if full_suffix(quant_path) not in VOLUME_SUFFIXES:
            raise UnsupportedInputError(f"{quant_path}: the quantitative volume is written as "
                                        f"{', '.join(VOLUME_SUFFIXES)}; give it such a name")
    if colormap is not None and str(colormap).strip().lower() not in _GRAY:
        from medfuse.color import colormap_name

        colormap = colormap_name(colormap)
    checked = check_fusion_options(
        out=out, method=method, weights=weights, window=window, device=device, registration_type=registration_type,
        transform_out=transform_out, extra_outputs=(qc_path, sidecar_path(out) if sidecar else None, quant_path),
        force=force,
    )
    _step(progress, 5, "loading")
    ref, mov = load_inputs(
        reference, moving,
        reference_options={**(reference_options or {}), "modality": reference_modality},
        moving_options={**(moving_options or {}), "modality": moving_modality},
        accept_mismatch=accept_mismatch,
    )
    _check_output_dims(ref, out)
    _step(progress, 15, "loaded")
    if ref.ndim == 2 and full_suffix(out) not in SLICE_SUFFIXES:
        log.info("2D slices written to %s as a one-slice volume (values 0..255)", out.name)
    result = fuse_volumes(
        ref, mov, checked["method"], register=register, registration_type=registration_type, weights=weights,
        window=window, device=device, accept_registration=accept_registration, colormap=colormap, progress=progress,
        rgb_dtype=np.uint8,
    )
    _step(progress, 90, "writing")
    jobs = {"fused": lambda: {"fused": save_volume(result.fused, out, force=force, compress_level=compress_level)}}
    if quant_path is not None and result.quantitative is not None:
        jobs["quantitative"] = lambda: {"quantitative": save_volume(result.quantitative, quant_path, force=force,
                                                                    compress_level=compress_level)}
    jobs["extras"] = lambda: _write_transform_and_qc(result, transform_out, qc_path, force)
    written = _run_concurrently(jobs)
    if sidecar:
        alignment = dict(result.alignment)
        _record_transform(alignment, written)
        record = _fusion_record(result, ref, mov, out, written, alignment,
                                _overrides(register, accept_registration, alignment, reference_modality, moving_modality))
        if "quantitative" in written:
            record["quantitative"] = quantitative_record(result.quantitative, written["quantitative"])
        written["sidecar"] = write_sidecar(out, record, force=force)
    _step(progress, 100, "done")
    return written


def _fuse_to_dicom(reference, moving, out, method, *, force, qc, register, registration_type, transform_out,
                   weights, window, device, reference_modality, moving_modality, reference_options, moving_options,
                   accept_registration, sidecar, colormap, quantitative, progress,
                   accept_mismatch=False) -> dict[str, Path]:
    """:func:`fuse_files` with ``out_format="dicom"``: ``out`` (and ``<out>_moving``) are derived DICOM series."""
    from medfuse.io.dicom.writer import check_dicom_output, new_uid, write_dicom_series
    from medfuse.report.sidecar import sidecar_path, write_sidecar

    out = Path(out)
    qc_path = out.with_name(out.name + "_qc.png") if qc is True else (Path(qc) if qc else None)
    quant_dir = None
    if quantitative is True:
        quant_dir = out.with_name(out.name + "_moving")
    elif quantitative:
        quant_dir = Path(quantitative)
    if colormap is not None and str(colormap).strip().lower() not in _GRAY:
        from medfuse.color import colormap_name

        colormap = colormap_name(colormap)
    checked = check_fusion_options(
        method=method, weights=weights, window=window, device=device, registration_type=registration_type,
        transform_out=transform_out, extra_outputs=(qc_path, sidecar_path(out) if sidecar else None), force=force,
    )
    for folder in (out, quant_dir):
        if folder is not None:
            check_dicom_output(folder, force)
    _step(progress, 5, "loading")
    ref, mov = load_inputs(
        reference, moving,
        reference_options={**(reference_options or {}), "modality": reference_modality},
        moving_options={**(moving_options or {}), "modality": moving_modality},
        accept_mismatch=accept_mismatch,
    )
    if ref.ndim != 3:
        raise UnsupportedInputError(f"{out}: DICOM output holds 3D volumes; write fused 2D slices as .png")
    _step(progress, 15, "loaded")
    result = fuse_volumes(
        ref, mov, checked["method"], register=register, registration_type=registration_type, weights=weights,
        window=window, device=device, accept_registration=accept_registration, colormap=colormap, progress=progress,
    )
    _step(progress, 90, "writing")
    from medfuse import __version__

    alignment = dict(result.alignment)
    how = ("registered (" + str(alignment.get("transform", registration_type)) + ", mutual information)"
           if alignment.get("registered") else "resampled in world coordinates (not registered)")
    derivation = (f"medfuse {__version__}: {mov.modality} {how} onto the {ref.modality} reference grid, fused "
                  f"with method '{result.method}'" + (f", colour map {result.colour['colormap']}"
                                                       if result.colour else ""))
    study = None if ref.meta.get("dicom_uids") is not None else new_uid()  # one study for both series
    sources = (ref.meta, mov.meta)
    fused_info = write_dicom_series(
        result.fused, out, reference_meta=ref.meta, sources=sources, kind="FUSION", modality="OT",
        description=f"medfuse fused {result.method}", derivation=derivation, series_number=9001, study_uid=study,
        force=force,
    )
    written = {"fused": fused_info["folder"]}
    quant_info = None
    if quant_dir is not None and result.quantitative is not None:
        units = result.quantitative.meta.get("units")
        quant_info = write_dicom_series(
            result.quantitative, quant_dir, reference_meta=ref.meta, sources=sources, kind="QUANTITATIVE",
            modality=mov.modality or "OT", description=f"medfuse {mov.modality} on reference grid ({units})"[:64],
            derivation=f"medfuse {__version__}: {mov.modality} {how} onto the {ref.modality} reference grid, in "
                       f"its own units ({units})",
            series_number=9002, units=units, study_uid=fused_info["study_uid"],
            frame_of_reference_uid=fused_info["frame_of_reference_uid"], force=force,
        )
        written["quantitative"] = quant_info["folder"]
    written.update(_write_transform_and_qc(result, transform_out, qc_path, force))
    if sidecar:
        _record_transform(alignment, written)
        placeholders = fused_info["placeholders"]
        dicom_record = {
            "sop_class": "Secondary Capture Image Storage (1.2.840.10008.5.1.4.1.1.7)",
            "image_type": "DERIVED\\SECONDARY",
            "series": {"fused": {"folder": out.name, "files": fused_info["n_files"],
                                 "storage": "RGB 8-bit" if result.fused.rgb is not None else "uint16 with rescale"}},
            "patient_and_study": (
                "anonymous placeholders (PatientName/PatientID ANONYMOUS, a new StudyInstanceUID and "
                "FrameOfReferenceUID): the reference is not DICOM" if placeholders else
                "the reference series' patient and study modules, StudyInstanceUID and FrameOfReferenceUID"),
            "source_image_sequence": "every instance of both inputs" if any(
                m.get("dicom_uids") is not None for m in sources) else "none (no input is DICOM)",
            "uids": "new SOPInstanceUIDs and SeriesInstanceUIDs of the form 2.25.<uuid4>",
        }
        if quant_info is not None:
            dicom_record["series"]["quantitative"] = {
                "folder": quant_dir.name, "files": quant_info["n_files"], "storage": "uint16 with rescale",
                "rescale": quant_info["rescale"], "units": result.quantitative.meta.get("units")}
        record = _fusion_record(result, ref, mov, out, written, alignment,
                                _overrides(register, accept_registration, alignment, reference_modality, moving_modality),
                                output_format="dicom", dicom=dicom_record)
        written["sidecar"] = write_sidecar(out, record, force=force)
    _step(progress, 100, "done")
    return written


def _run_concurrently(jobs: dict[str, Any]) -> dict[str, Path]:
    """Run independent output writers (each atomic) on threads and merge their ``{name: path}`` results.

    A 3D fusion writes two ~50 MB volumes and a QC picture; gzip compression releases the GIL, so on
    two cores the writes overlap (``benchmarks/startup.py``). The first error is raised after every
    writer has finished (none is left half-way: each writes a temporary file and renames it).
    """
    from concurrent.futures import ThreadPoolExecutor

    if len(jobs) == 1:
        return dict(next(iter(jobs.values()))())
    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        futures = {name: pool.submit(job) for name, job in jobs.items()}
    written: dict[str, Path] = {}
    for future in futures.values():
        written.update(future.result())
    return written


def _write_transform_and_qc(result: FusionResult, transform_out, qc_path, force: bool) -> dict[str, Path]:
    """Write the registration transform (the identity when not registered: the moving scan was put on the
    reference grid through the world coordinates as they are) and the QC picture, if asked for."""
    written = {}
    if transform_out is not None:
        import SimpleITK as sitk

        from medfuse.registration import save_transform

        transform = (result.registration.transform if result.registration is not None
                     else sitk.Transform(result.reference.ndim, sitk.sitkIdentity))
        written["transform"] = save_transform(transform, transform_out, force=force)
    if qc_path is not None:
        from medfuse.report.qc import save_qc_figure

        written["qc"] = save_qc_figure(result, qc_path, force=force)
    return written


def _record_transform(alignment: dict, written: dict) -> None:
    """The sidecar's note of the transform file: its name, and that it is the identity when not registered."""
    if "transform" not in written:
        return
    alignment["transform_file"] = written["transform"].name
    if not alignment.get("registered"):
        alignment["transform_note"] = ("identity (ITK, reference LPS -> moving LPS): the inputs were not registered: "
                                       + str(alignment.get("reason", "")))


def _fusion_record(result: FusionResult, ref: Volume, mov: Volume, out: Path, written: dict, alignment: dict,
                   overrides: list[str], **extra: Any) -> dict[str, Any]:
    """The sidecar of a fusion: provenance, method and weights, inputs, registration, slice plane, outputs."""
    from medfuse.report.sidecar import file_sha256, fused_image_record, volume_record

    record = _provenance(
        "fuse",
        output=out.name,
        method=result.method,
        weights=None if result.weights is None else {"file": result.weights.name, "sha256": file_sha256(result.weights)},
        inputs={"reference": volume_record(ref, result.reference), "moving": volume_record(mov, result.moving)},
        registration=alignment,
        pair_check=mov.meta.get("pair_check"),
        slice_plane=_slice_plane(ref),
        overrides=[*overrides, *_mismatch_overrides(mov)],
        ignored_options=list(result.ignored_options),
        timings_s={k: round(v, 3) for k, v in result.timings.items()},
        outputs={k: Path(v).name for k, v in written.items()},
        **extra,
    )
    record.update(fused_image_record(result.fused, result.colour))
    return record


def _mismatch_overrides(mov: Volume) -> list[str]:
    """``--accept-mismatch: <problem>`` for each pair-check problem that was overridden."""
    return [f"--accept-mismatch: {p}" for p in (mov.meta.get("pair_check") or {}).get("mismatches_accepted", [])]


def _overrides(register, accept_registration, alignment, reference_modality, moving_modality) -> list[str]:
    out = []
    if register is True:
        out.append("--register: registered although the inputs may share a grid")
    if register is False:
        out.append("--no-register: not registered")
    if accept_registration:
        failures = alignment.get("overridden_check_failures") or alignment.get("check_failures") or []
        out.append("--accept-registration: " + ("; ".join(failures) if failures else "no check failed"))
    for role, given in (("reference", reference_modality), ("moving", moving_modality)):
        if given is not None:
            out.append(f"--{role}-modality {given}")
    return out


def register_files(
    reference: str | os.PathLike,
    moving: str | os.PathLike,
    out: str | os.PathLike,
    *,
    transform_out: str | os.PathLike | None = None,
    registration_type: str = "rigid",
    label_map: bool = False,
    force: bool = False,
    reference_modality: str | None = None,
    moving_modality: str | None = None,
    reference_options: dict[str, Any] | None = None,
    moving_options: dict[str, Any] | None = None,
    accept_registration: bool = False,
    sidecar: bool = True,
    accept_mismatch: bool = False,
):
    """Register ``moving`` onto ``reference``; write it on the reference grid (in its own units),
    the transform and a sidecar. Options are checked before anything is read; the pair is checked
    (:func:`medfuse.pair_check.check_pair`; ``accept_mismatch`` as in :func:`fuse_files`) before registering.

    Returns:
        ``(written, result)``: ``{"resampled", "transform", "sidecar"}`` -> paths, and the
        :class:`~medfuse.registration.RegistrationResult`.
    """
    from medfuse.io import VOLUME_SUFFIXES, save_volume
    from medfuse.io.atomic import full_suffix
    from medfuse.registration import register, save_transform
    from medfuse.report.sidecar import sidecar_path, volume_record, write_sidecar

    check_fusion_options(out=out, registration_type=registration_type, transform_out=transform_out,
                         extra_outputs=(sidecar_path(out) if sidecar else None,), force=force)
    if full_suffix(out) not in VOLUME_SUFFIXES:
        raise UnsupportedInputError(f"{out}: a registered volume is written as {', '.join(VOLUME_SUFFIXES)}; "
                                    "give --out such a name")
    ref, mov = load_inputs(
        reference, moving,
        reference_options={**(reference_options or {}), "modality": reference_modality},
        moving_options={**(moving_options or {}), "modality": moving_modality},
        accept_mismatch=accept_mismatch, for_fusion=False,
    )
    result = register(ref, mov, transform=registration_type, label_map=label_map, checks=not accept_registration)
    written = {"resampled": save_volume(result.resampled, out, force=force)}
    if transform_out is not None:
        written["transform"] = save_transform(result.transform, transform_out, force=force)
    if sidecar:
        summary = result.summary()
        failures = getattr(result, "check_failures", None) or [
            m[len("CHECK FAILED: "):] for m in result.messages if m.startswith("CHECK FAILED: ")]
        if failures:
            summary["overridden_check_failures"] = failures
        if "transform" in written:
            summary["transform_file"] = written["transform"].name
        record = _provenance(
            "register",
            output=Path(out).name,
            inputs={"reference": volume_record(ref), "moving": volume_record(mov)},
            registration={"registered": not result.skipped, **summary},
            interpolation="nearest" if label_map else "linear",
            pair_check=mov.meta.get("pair_check"),
            overrides=_overrides(None, accept_registration, summary, reference_modality, moving_modality)
            + _mismatch_overrides(mov),
            outputs={k: Path(v).name for k, v in written.items()},
        )
        written["sidecar"] = write_sidecar(out, record, force=force)
    return written, result
