"""What a fusion or registration is asked to do: one frozen options object, checked once.

:class:`FusionOptions` holds every choice of a fusion (method, registration, normalization, colour, outputs)
and :class:`InputOptions` how each input is read. They are checked when made, before anything is read, so a
typo fails at once with "did you mean" (:func:`medfuse.errors.look_up`); the steps below only read them. Every
door builds one: the command line from its flags, the Slicer module from its panel, batch runs from their
settings, the MONAI transforms from their arguments. :meth:`FusionOptions.overrides` says, for the sidecar,
which safety decisions the user took over.

Messages name an option by its keyword here (``accept_registration``), as :data:`medfuse.errors.OPTION`, and
carry it as the error's ``option``; each door words it (the command line as its flag).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from medfuse.choices import OUT_FORMATS, REGISTRATION_TYPES
from medfuse.color import GRAY_COLORMAPS
from medfuse.errors import OPTION, OptionError, UnsupportedInputError, look_up

__all__ = [
    "InputOptions",
    "RegistrationOptions",
    "FusionOptions",
    "Progress",
    "report_progress",
    "REGISTRATION_TYPES",
    "OUT_FORMATS",
    "GRAY_COLORMAPS",
]

#: a progress callback: ``progress(percent, step)``, called at each step of the pipeline
Progress = Callable[[int, str], None]


def report_progress(progress: Progress | None, percent: int, step: str) -> None:
    """Tell ``progress`` (if any) that ``step`` starts at ``percent`` of the whole run."""
    if progress is not None:
        progress(int(percent), step)


@dataclass(frozen=True)
class InputOptions:
    """How one input is read (:func:`medfuse.io.load_volume`'s options) and what it is.

    Attributes:
        modality: ``MR``, ``CT``, ``PT``, ``NM`` (or MRI, PET, SPECT) when DICOM and the file name do not tell.
        series: the DICOM series id, for a folder holding several.
        frame: the time frame of a 4D file.
        xform: ``sform`` or ``qform``: which NIfTI transform to trust when the two disagree.
        assume_orientation: axis codes (``RAS``, ``LPS``) for a NIfTI file without orientation.
    """

    modality: str | None = None
    series: str | None = None
    frame: int | None = None
    xform: str | None = None
    assume_orientation: str | None = None

    def __post_init__(self):
        if self.xform is not None:
            object.__setattr__(self, "xform", look_up(str(self.xform).lower(), ("sform", "qform"), "NIfTI transform",
                                                      option="xform"))
        if self.modality is not None:
            from medfuse.modality import canonical_modality

            object.__setattr__(self, "modality", canonical_modality(self.modality))

    def load_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of :func:`~medfuse.io.load_volume` that were given."""
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


@dataclass(frozen=True)
class RegistrationOptions:
    """The options of a registration (``medfuse register``), and the part of a fusion's that registers and writes.

    Attributes:
        reference, moving: how each input is read (:class:`InputOptions`).
        registration_type: ``rigid`` (default: scans of one head differ by a rigid motion), ``affine``, ``bspline``.
        accept_registration: keep a registration whose self-checks failed (a warning, recorded in the sidecar)
            instead of raising :class:`~medfuse.errors.RegistrationError`.
        accept_mismatch: go on (a warning, recorded) when the pair check fails: wrong roles or different patients
            (:mod:`medfuse.pair_check`).
        transform_out: also write the transform here (an ITK transform file).
        force: overwrite existing outputs.
        sidecar: write ``<output stem>.json`` saying how the output was made.
        compress_level: gzip level (0..9) of ``.nii.gz`` outputs (None: :data:`medfuse.io.atomic.DEFAULT_COMPRESS_LEVEL`).
        label_map: registration only: the moving scan is a label map (nearest-neighbour resampling).
    """

    reference: InputOptions = field(default_factory=InputOptions)
    moving: InputOptions = field(default_factory=InputOptions)
    registration_type: str = "rigid"
    accept_registration: bool = False
    accept_mismatch: bool = False
    transform_out: Path | None = None
    force: bool = False
    sidecar: bool = True
    compress_level: int | None = None
    label_map: bool = False

    def __post_init__(self):
        for role in ("reference", "moving"):
            given = getattr(self, role)
            if isinstance(given, dict):
                object.__setattr__(self, role, InputOptions(**given))
            elif not isinstance(given, InputOptions):
                raise TypeError(f"{role} must be InputOptions or a dict of its fields; got {type(given).__name__}")
        object.__setattr__(self, "registration_type", look_up(
            str(self.registration_type).lower(), REGISTRATION_TYPES, "registration", option="registration_type"))
        if self.transform_out is not None:
            from medfuse.io.atomic import full_suffix
            from medfuse.registration.transform import TRANSFORM_SUFFIXES

            path = Path(self.transform_out)
            if full_suffix(path) not in TRANSFORM_SUFFIXES:
                raise UnsupportedInputError(
                    f"{path}: transforms are written as ITK transform files; give {OPTION} a name ending in "
                    f"{', '.join(TRANSFORM_SUFFIXES)}", option="transform_out")
            object.__setattr__(self, "transform_out", path)
        if self.compress_level is not None:
            from medfuse.io.atomic import check_compress_level

            object.__setattr__(self, "compress_level", check_compress_level(self.compress_level))

    def replace(self, **changes: Any):
        """A copy with ``changes`` (checked again)."""
        return dataclasses.replace(self, **changes)

    def input(self, role: str) -> InputOptions:
        """The :class:`InputOptions` of ``role`` (``"reference"`` or ``"moving"``)."""
        return getattr(self, look_up(role, ("reference", "moving"), "input role"))

    def overrides(self, alignment: dict[str, Any] | None = None, pair_check: dict[str, Any] | None = None) -> list[str]:
        """The safety decisions the user took over, one line each, for the sidecar's ``overrides``."""
        out = []
        register = getattr(self, "register", None)
        if register is True:
            out.append("register: registered although the inputs may share a grid")
        if register is False:
            out.append("no register: not registered")
        if self.accept_registration:
            failures = (alignment or {}).get("overridden_check_failures") or []
            out.append("accept_registration: " + ("; ".join(failures) if failures else "no check failed"))
        for role in ("reference", "moving"):
            if self.input(role).modality is not None:
                out.append(f"{role} modality given: {self.input(role).modality}")
        out += [f"accept_mismatch: {p}" for p in (pair_check or {}).get("mismatches_accepted", [])]
        return out

    def record(self) -> dict[str, Any]:
        """The options as JSON-ready values (the sidecar's ``options``)."""
        def plain(value):
            if isinstance(value, Path):
                return value.name
            if isinstance(value, tuple):
                return list(value)
            return value

        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, InputOptions):
                value = {k: plain(v) for k, v in dataclasses.asdict(value).items() if v is not None}
            out[f.name] = plain(value)
        return out


@dataclass(frozen=True)
class FusionOptions(RegistrationOptions):
    """Every choice of a fusion (:func:`medfuse.pipeline.fuse_volumes`, :func:`~medfuse.pipeline.fuse_files`).

    Attributes (beyond :class:`RegistrationOptions`'):
        method: a classical method or a network (:func:`medfuse.fusion.available_methods`); None: the pair's
            default (:func:`medfuse.pipeline.default_method`).
        weights: a network checkpoint (default: the weights shipped for the pair); refused with a classical method.
        device: the torch device of the networks (``cpu``, ``cuda``, ``cuda:1``).
        register: True: register even inputs that share a grid or a DICOM frame of reference; False: only resample
            through the scanner coordinates; None (default): register unless they share one.
        window: CT window: a preset name (:class:`~medfuse.intensity.normalize.CTWindow`) or ``(level, width)`` HU.
        colormap: the colour map of PET/SPECT volumes (:data:`medfuse.color.COLORMAPS`), or ``"gray"``; None: the
            modality's default (:func:`medfuse.color.default_colormap`).
        qc: True: the QC picture beside the output; a path: there; False: none.
        quantitative: 3D: True writes the moving scan on the reference grid in its own units beside the output;
            a path: there; False: not written.
        out_format: None (the output's extension decides), ``nifti``, ``nrrd``, or ``dicom`` (a derived series).
        keep_hot: PET/SPECT: the functional scan's hottest regions (by uptake) stay at least as bright as in the
            scan alone (:mod:`medfuse.hotspots`); False: as the method composed them.
    """

    method: str | None = None
    weights: Path | None = None
    device: str = "cpu"
    register: bool | None = None
    window: str | tuple[float, float] | None = None
    colormap: str | None = None
    qc: bool | Path = True
    quantitative: bool | Path = True
    out_format: str | None = None
    keep_hot: bool = True

    def __post_init__(self):
        super().__post_init__()
        from medfuse.fusion import available_methods

        methods = available_methods()
        if self.method is not None:
            object.__setattr__(self, "method", look_up(self.method, list(methods), "fusion method",
                                                       ignore_case=True, option="method"))
        if self.weights is not None:
            weights = Path(self.weights)
            if not weights.is_file():
                raise UnsupportedInputError(f"{weights}: weights file not found; give an existing checkpoint with "
                                            f"{OPTION}", option="weights")
            object.__setattr__(self, "weights", weights)
            if self.method is not None:
                self.check_weights_for(self.method)
        if str(self.device).startswith("cuda"):
            import torch

            if not torch.cuda.is_available():
                raise UnsupportedInputError(f"device {self.device!r} requested but no CUDA GPU is available; set "
                                            f"{OPTION} to cpu", option="device")
        object.__setattr__(self, "window", _checked_window(self.window))
        if self.colormap is not None:
            if str(self.colormap).strip().lower() in GRAY_COLORMAPS:
                object.__setattr__(self, "colormap", "gray")
            else:
                from medfuse.color import colormap_name

                object.__setattr__(self, "colormap", colormap_name(self.colormap))
        if self.out_format is not None:
            object.__setattr__(self, "out_format", look_up(str(self.out_format).lower(), OUT_FORMATS,
                                                           "output format", option="out_format"))
        for name in ("qc", "quantitative"):
            value = getattr(self, name)
            if value is None:
                object.__setattr__(self, name, False)
            elif not isinstance(value, bool):
                object.__setattr__(self, name, Path(value))

    def check_weights_for(self, method: str) -> None:
        """Refuse ``weights`` with a classical ``method`` (the given one, or the pair's default once known).

        Raises:
            OptionError: weights given and ``method`` is not a network (its ``option`` is ``weights``).
        """
        from medfuse.fusion import available_methods

        if self.weights is not None and available_methods()[method] != "network":
            raise OptionError(f"weights are for networks, and '{method}' is a classical method; drop {OPTION} or "
                              "choose a network as the method", option="weights")


def _checked_window(window):
    """A CT window preset's canonical name, or ``(level, width)`` as floats; None stays None."""
    if window is None:
        return None
    if isinstance(window, (tuple, list)):
        try:
            level, width = (float(v) for v in window)
        except (TypeError, ValueError):
            level = width = float("nan")
        if not (width > 0 and level == level):
            raise OptionError(f"CT window {tuple(window)!r}: expected (level, width) in HU with a positive width, "
                              f"e.g. (40, 80), given as {OPTION}", option="window")
        return (level, width)
    from medfuse.intensity.normalize import CTWindow

    return look_up(str(window).strip().lower().replace("-", "_"), [w.value for w in CTWindow], "CT window",
                   option="window")

