"""MONAI array transforms of medfuse: each wraps one plain function and keeps MetaTensor geometry.

Inputs and outputs are channel-first ``(C, H, W[, D])`` images: MONAI ``MetaTensor`` (whose
``affine`` maps voxel indices to world millimetres, RAS unless ``meta["space"]`` says LPS),
torch tensors or numpy arrays (identity affine). Outputs are ``MetaTensor``; each class states
which affine its output carries.

:func:`to_volume` and :func:`to_metatensor` convert between a channel of a ``MetaTensor`` and a
:class:`~medfuse.volume.Volume` (the container of the plain functions); every transform here uses
them, so geometry is converted in one place.

- :class:`LoadVolume`: :func:`medfuse.io.load_volume` (a path to a ``MetaTensor``).
- :class:`RegisterToReference`: :func:`medfuse.registration.register` (output on the reference grid).
- :class:`NormalizeModality`: :func:`medfuse.intensity.normalize` (same grid, values in [0, 1]).
- :class:`FuseImages`: :func:`medfuse.fusion.fuse_arrays` (inputs on one grid; two or more), with the hot-region
  floor of :mod:`medfuse.hotspots` for PET/SPECT.

The colour transforms (``SplitLuminance``, ``MergeLuminance``, ``ApplyColormap``, ``KeepHotRegions``) are in
:mod:`medfuse.transforms.colour`, ``WriteSidecar`` in :mod:`medfuse.transforms.sidecar`.

Transforms whose plain function works on arrays (colour split/merge, fusion) keep the input
``MetaTensor`` itself (``convert_to_dst_type``: the same meta, affine and applied operations);
those whose plain function needs geometry (load, register, normalize) convert at that boundary.
All return plain tensors when MONAI's ``get_track_meta()`` is False.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from medfuse.volume import LPS_RAS_FLIP, Volume

__all__ = [
    "to_volume",
    "to_metatensor",
    "ras_affine",
    "collate_safe",
    "FUSION_STRATEGIES",
    "CHROMA_META_KEY",
    "SOURCE_LABEL_KEY",
    "LoadVolume",
    "RegisterToReference",
    "NormalizeModality",
    "UPTAKE_META_KEY",
    "FuseImages",
]

log = logging.getLogger(__name__)

from monai.data import get_track_meta  # noqa: E402  (MONAI and torch: importing this package needs them)
from monai.transforms import Transform  # noqa: E402
from monai.utils import TransformBackends, convert_to_dst_type  # noqa: E402

#: meta key where :class:`SplitLuminance` keeps the chroma planes ``(2, H, W)`` (Cb, Cr on 0..255)
CHROMA_META_KEY = "medfuse_chroma"
#: meta key where :class:`~medfuse.transforms.colour.ApplyColormap` and
#: :class:`~medfuse.transforms.colour.SplitLuminance` keep a PET/SPECT's uptake ``(*spatial)`` float32 (the normalized
#: values before the colour map, or a colour slice's colours read back through theirs): what the hot-region floor of
#: :mod:`medfuse.hotspots` takes as hot, since a colour map's luminance is not the uptake
UPTAKE_META_KEY = "medfuse_uptake"
#: meta key holding how messages and logs name an input (its role, e.g. "the moving scan (--moving)"), set by
#: :class:`LoadVolume`; :func:`to_volume` makes it the Volume's ``source``, so no later step names the path
SOURCE_LABEL_KEY = "medfuse_source_label"
#: Volume meta entries carried through MetaTensor meta (non-identifying; used by the plain functions)
_CARRIED_META = ("pet", "frame_of_reference", "units", "value_max", "suv_factor", "modality_source", "format")
#: how :class:`FuseImages` fuses more than two images (see its docstring)
FUSION_STRATEGIES = ("mean_of_pairs", "sequential")


def _is_lps(meta: Mapping) -> bool:
    space = meta.get("space", "RAS")
    if isinstance(space, (list, tuple)) and space:  # collated batch meta: one entry per sample
        space = space[0]
    return str(space).upper().endswith("LPS")


def _track(out: Any) -> Any:
    """``out`` as it is while MONAI tracks metadata (``get_track_meta()``), else its plain tensor."""
    return out if get_track_meta() or not _has_meta(out) else out.as_tensor()


def collate_safe(value: Any) -> Any:
    """``value`` in the types MONAI's collate takes (``default_collate``, ``list_data_collate``).

    Every meta entry a medfuse transform puts on a ``MetaTensor`` goes through here, so a
    ``DataLoader`` (the bundles') can batch it whatever the input carried. ``None`` (a DICOM
    attribute a vendor does not write, such as the GE or Philips SUV extras of ``meta["pet"]``)
    is left out of a dict (readers of the meta use ``.get``) and becomes NaN inside a list; tuples
    and sets become lists, ``os.PathLike`` a string, numpy scalars Python numbers, and numpy arrays
    that are not numbers (strings, objects) lists. Numbers, strings, tensors and numeric arrays are
    kept as they are.
    """
    if isinstance(value, Mapping):
        return {k: collate_safe(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=str) if isinstance(value, (set, frozenset)) else value
        return [float("nan") if v is None else collate_safe(v) for v in items]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray) and value.dtype.kind not in "biufc":
        return collate_safe(value.tolist())
    return value


def _like(array: np.ndarray, img: Any, extra_meta: Mapping | None = None, drop: Sequence[str] = ()):
    """``array`` (channel-first) as the type of ``img``; a ``MetaTensor`` keeps a copy of ``img``'s meta,
    affine and applied operations, plus ``extra_meta``, minus ``drop``."""
    out = convert_to_dst_type(np.ascontiguousarray(array, dtype=np.float32), img, dtype=np.float32)[0]
    if _has_meta(out):
        meta = {k: v for k, v in img.meta.items() if k not in drop}
        meta.update(extra_meta or {})
        out.meta = collate_safe(meta)
    return _track(out)


def ras_affine(img: Any) -> np.ndarray | None:
    """The voxel-to-RAS affine of a ``MetaTensor`` (``(4, 4)``, or ``(B, 4, 4)`` for a batch), converted
    from LPS when ``meta["space"]`` says so; None for inputs without metadata."""
    from monai.utils import convert_data_type

    if not _has_meta(img):
        return None
    affine = np.asarray(convert_data_type(img.affine, np.ndarray)[0], dtype=np.float64)
    if _is_lps(img.meta):
        affine = LPS_RAS_FLIP @ affine
    return affine


def _affine_4x4(affine: np.ndarray) -> np.ndarray:
    a = np.asarray(affine, dtype=np.float64)
    if a.shape == (4, 4):
        return a
    if a.shape == (3, 3):  # a 2D affine acting on (row, col, 1): embed into 3D
        out = np.eye(4)
        out[:2, :2] = a[:2, :2]
        out[:2, 3] = a[:2, 2]
        return out
    raise ValueError(f"affine must be 3x3 (2D) or 4x4, got shape {a.shape}")


def _modality_from_meta(meta: Mapping) -> str | None:
    value = meta.get("modality")
    if value is None:  # MONAI's PydicomReader keeps DICOM tags as "GGGGEEEE": {"Value": [...]}
        tag = meta.get("00080060")
        if isinstance(tag, Mapping) and tag.get("Value"):
            value = tag["Value"][0]
    return str(value) if value else None


def _has_meta(img: Any) -> bool:
    from monai.data import MetaTensor

    return isinstance(img, MetaTensor)


def to_volume(img: Any, channel: int = 0, modality: str | None = None) -> Volume:
    """One channel of a channel-first image as a :class:`~medfuse.volume.Volume` (RAS affine).

    Args:
        img: ``(C, H, W[, D])`` ``MetaTensor``, torch tensor or numpy array.
        channel: which channel.
        modality: the modality code; default ``meta["modality"]`` (or the DICOM Modality tag).

    Returns:
        A Volume with ``array`` float32 ``(H, W[, D])``, the image's affine in RAS (converted from
        LPS when ``meta["space"]`` says so; identity without meta), and the medfuse entries of the
        meta (``pet``, ``frame_of_reference``, ``units``, ``value_max``). Its ``source`` (what messages
        and log lines name it by) is the role :class:`LoadVolume` recorded, else an opaque id of
        ``meta["filename_or_obj"]``: never a path (:mod:`medfuse.io.naming`).
    """
    from monai.utils import convert_data_type

    meta: Mapping = img.meta if _has_meta(img) else {}
    array = np.asarray(convert_data_type(img, np.ndarray)[0])
    if array.ndim not in (3, 4):
        raise ValueError(f"expected a channel-first (C, H, W[, D]) image, got shape {array.shape}")
    affine = np.eye(4)
    if _has_meta(img):
        affine = _affine_4x4(convert_data_type(img.affine, np.ndarray)[0])
        if _is_lps(meta):
            affine = LPS_RAS_FLIP @ affine
    kept = {k: meta[k] for k in _CARRIED_META if k in meta}
    source = meta.get(SOURCE_LABEL_KEY) or ""
    if not source:  # never the path: log lines and messages of the later steps name the volume by its source
        from medfuse.io.naming import source_name

        path = meta.get("filename_or_obj", "")
        source = source_name(path) if isinstance(path, (str, os.PathLike)) and path else ""
    return Volume(
        np.asarray(array[channel], dtype=np.float32),
        affine,
        modality=modality or _modality_from_meta(meta),
        meta=kept,
        source=str(source),
    )


def to_metatensor(volumes: Volume | Sequence[Volume], like: Any = None, extra_meta: Mapping | None = None):
    """Stack Volumes (one per channel, same grid) into a channel-first ``MetaTensor``.

    Args:
        volumes: one Volume or a sequence of Volumes on one grid.
        like: an input ``MetaTensor`` whose meta and applied operations are copied (affine and
            spatial shape replaced by the volumes'; its ``space`` is kept: the affine is written
            in LPS if it says LPS).
        extra_meta: entries added to the output meta.

    Returns:
        A float32 ``MetaTensor`` ``(C, H, W[, D])`` with the volumes' affine, ``meta["modality"]``
        and the medfuse meta entries of the first volume.
    """
    import torch
    from monai.data import MetaTensor

    vols = [volumes] if isinstance(volumes, Volume) else list(volumes)
    data = torch.as_tensor(np.stack([v.array for v in vols]).astype(np.float32, copy=False))
    meta = dict(like.meta) if _has_meta(like) else {}
    meta.pop("affine", None)
    affine = vols[0].affine
    if _is_lps(meta):
        affine = LPS_RAS_FLIP @ affine
    else:
        meta["space"] = "RAS"  # MONAI's writers then keep the affine as it is
    meta["spatial_shape"] = np.asarray(vols[0].shape)
    if vols[0].modality is not None:
        meta["modality"] = vols[0].modality
    for key in _CARRIED_META:
        if key in vols[0].meta:
            meta[key] = vols[0].meta[key]
    if vols[0].source and "filename_or_obj" not in meta:
        meta["filename_or_obj"] = vols[0].source
    if extra_meta:
        meta.update(extra_meta)
    out = MetaTensor(data, affine=torch.as_tensor(affine, dtype=torch.float64), meta=collate_safe(meta))
    if _has_meta(like):
        out.applied_operations = list(like.applied_operations)
    return out


class LoadVolume(Transform):
    """Load a scan or slice with :func:`medfuse.io.load_volume` as a channel-first ``MetaTensor``.

    Args:
        modality: force the modality code (default: from DICOM or the file name).
        keep_color: colour slices become 3 RGB channels (0..255) instead of their luminance Y.
        label: how messages and log lines name this input, e.g. ``"the moving scan (--moving)"`` (a bundle's
            flag): the file is read inside :func:`medfuse.io.naming.read_as` (errors name the label, not the
            path) and the label goes to ``meta[SOURCE_LABEL_KEY]`` for the later steps. ``None``: errors name
            the path as the Python API does; log lines name an opaque id.

    Returns (``__call__(path)``):
        ``(1, *spatial)`` float32 (``(3, H, W)`` for colour with ``keep_color``), the file's RAS
        affine, ``meta["modality"]`` and ``meta["filename_or_obj"]`` (for ``SaveImage``'s output name).
    """

    backend = [TransformBackends.NUMPY]

    def __init__(self, modality: str | None = None, keep_color: bool = False, label: str | None = None) -> None:
        self.modality = modality
        self.keep_color = bool(keep_color)
        self.label = label

    def __call__(self, path: str | os.PathLike):  # type: ignore[override]
        import contextlib

        from medfuse.io import load_volume
        from medfuse.io.naming import read_as, source_name

        with read_as(path, self.label) if self.label else contextlib.nullcontext():
            volume = load_volume(path, modality=self.modality)
        extra = {"filename_or_obj": str(path), SOURCE_LABEL_KEY: self.label or source_name(path)}
        if self.keep_color and volume.rgb is not None:
            channels = [volume.with_array(volume.rgb[..., c], rgb=None) for c in range(3)]
            return _track(to_metatensor(channels, extra_meta=extra))
        return _track(to_metatensor(volume, extra_meta=extra))


class RegisterToReference(Transform):
    """Register a moving image onto a reference image and resample it onto the reference grid.

    Wraps :func:`medfuse.registration.register` (3D; SimpleITK does the work, so torch inputs
    are converted to numpy and back). Channel 0 of both images drives the registration; every
    channel of the moving image is resampled with the transform found. With ``register=False``
    the moving image (and always a 2D slice, which is taken as pre-aligned) is only resampled through world coordinates
    (:func:`medfuse.registration.resample_to_reference`, 2D or 3D; for pre-aligned data).

    Args:
        transform: ``"rigid"`` (default), ``"affine"`` or ``"bspline"``.
        label_map: the moving image is a label map (nearest-neighbour resampling).
        register: False: resample only (no registration).
        modality: the moving image's modality (``"CT"``, ``"PT"``, ...); default from its meta.
        reference_modality: the reference's modality; default from its meta, else ``"MR"``.
        settings: keyword arguments of :class:`~medfuse.registration.RegistrationSettings`
            (JSON-serializable, for bundle configs).
        skip_same_frame: skip registration for scans sharing a DICOM frame of reference.

    Returns (``__call__(img, reference)``):
        A ``MetaTensor`` ``(C, *reference_spatial_shape)`` with the **reference's affine**, the
        moving image's other meta and, when registered, ``meta["registration"]`` (a JSON-safe
        summary with the 4x4 ``reference_to_moving_ras`` matrix). Not invertible through
        MONAI's ``Invertd``.

    Raises:
        RegistrationError: as :func:`~medfuse.registration.register`.

    Example:
        >>> reg = RegisterToReference(transform="rigid", modality="PT")  # doctest: +SKIP
        >>> pet_on_mri = reg(pet, mri)  # doctest: +SKIP
        >>> torch.allclose(pet_on_mri.affine, mri.affine)  # doctest: +SKIP
        True
    """

    backend = [TransformBackends.NUMPY]

    def __init__(
        self,
        transform: str = "rigid",
        label_map: bool = False,
        register: bool = True,
        modality: str | None = None,
        reference_modality: str | None = None,
        settings: Mapping[str, Any] | None = None,
        skip_same_frame: bool = True,
    ) -> None:
        from medfuse.registration import RegistrationSettings, TransformType

        try:
            TransformType(str(transform).strip().lower())
        except ValueError:
            from medfuse.errors import look_up

            look_up(transform, [t.value for t in TransformType], "registration transform")  # "did you mean ..."
        self.transform = str(transform).strip().lower()
        self.label_map = bool(label_map)
        self.register = bool(register)
        self.modality = modality
        self.reference_modality = reference_modality
        self.settings = RegistrationSettings(
            **{k: tuple(v) if isinstance(v, list) else v for k, v in dict(settings or {}).items()}
        )
        self.skip_same_frame = bool(skip_same_frame)

    def __call__(self, img: Any, reference: Any, label_map: bool | None = None):  # type: ignore[override]
        """Register ``img`` onto ``reference``; ``label_map`` overrides the constructor's flag."""
        from medfuse.registration import register, resample_to_reference

        label = self.label_map if label_map is None else bool(label_map)
        interpolation = "nearest" if label else "linear"
        ref = to_volume(reference, 0, self.reference_modality)
        if ref.modality is None:
            ref.modality = "MR"
        moving = to_volume(img, 0, self.modality)
        extra: dict[str, Any] = {}
        if self.register and ref.ndim == 3:  # 2D slices (AANLIB pairs) are pre-aligned: resample only
            result = register(ref, moving, transform=self.transform, label_map=label, settings=self.settings,
                              skip_same_frame=self.skip_same_frame)
            out, tx = [result.resampled], result.transform
            extra["registration"] = result.summary()
        else:
            out, tx = [resample_to_reference(moving, ref, None, interpolation)], None
        for c in range(1, int(img.shape[0])):
            out.append(resample_to_reference(to_volume(img, c, moving.modality), ref, tx, interpolation))
        like = img if _has_meta(img) else None
        if _has_meta(reference) and "space" in reference.meta:
            extra["space"] = reference.meta["space"]
        return _track(to_metatensor(out, like=like, extra_meta=extra))


class NormalizeModality(Transform):
    """Normalize each channel to [0, 1] by its modality's rule (CT window, MR/SPECT percentiles, PET SUV).

    Wraps :func:`medfuse.intensity.normalize`: statistics per volume (never per slice) inside a
    head mask. Works on 2D ``(C, H, W)`` and 3D ``(C, H, W, D)`` images.

    Args:
        modality: ``"MR"``, ``"CT"``, ``"PT"``, ``"NM"``; default from the image's meta (``modality``
            or the DICOM Modality tag); unknown uses the MR rule.
        window: CT window preset (``"brain"``, ``"subdural"``, ``"bone"``, ``"soft_tissue"``) or
            ``(level, width)`` HU; PET ``(lo, hi)`` SUV.
        percentiles: ``(lo, hi)`` of the percentile rule.

    Returns (``__call__(img, mask=None)``):
        A float32 ``MetaTensor`` of the same shape with **the same affine** and meta, values in
        [0, 1], and ``meta["normalization"]`` (one record, or a list with one per channel).
    """

    backend = [TransformBackends.NUMPY]

    def __init__(
        self,
        modality: str | None = None,
        window: str | Sequence[float] | None = None,
        percentiles: Sequence[float] = (0.5, 99.5),
    ) -> None:
        from medfuse.intensity import canonical_modality

        self.modality = canonical_modality(modality)
        self.window = tuple(window) if isinstance(window, (list, tuple)) else window
        self.percentiles = tuple(float(p) for p in percentiles)

    def __call__(self, img: Any, mask: Any = None):  # type: ignore[override]
        """Normalize ``img``; ``mask`` (spatial shape, or with a channel axis) fixes where statistics come from."""
        from monai.utils import convert_data_type

        from medfuse.intensity import normalize

        m = None
        if mask is not None:
            m = np.asarray(convert_data_type(mask, np.ndarray)[0]).astype(bool)
            if m.ndim == len(img.shape):
                m = m[0]
        out, records = [], []
        for c in range(int(img.shape[0])):
            vol = to_volume(img, c, self.modality)
            result = normalize(vol, vol.modality, window=self.window, mask=m, percentiles=self.percentiles)
            out.append(result)
            records.append(result.meta["normalization"])
        return _track(to_metatensor(out, like=img if _has_meta(img) else None,
                                    extra_meta={"normalization": records[0] if len(records) == 1 else records}))


class FuseImages(Transform):
    """Fuse a reference image with one or more images on its grid (:func:`medfuse.fusion.fuse_arrays`).

    Args:
        method: a classical method (``mean``, ``max``, ``laplacian``, ``wavelet``, ``guided``) or a
            network (``fmmf``, ``mdgan``, ``msra``, ``light``).
        weights: network checkpoint; default the shipped weights for ``pair``.
        pair: ``ct_mri``, ``pet_mri`` or ``spect_mri``; default from each other image's modality.
        device: torch device for networks.
        axis: stored slice axis for 2D methods on volumes **without geometry** (plain tensors or
            arrays). A ``MetaTensor`` reference is fused in axial slices oriented like the 2D
            training slices, whatever its storage order (its affine goes to
            :func:`medfuse.fusion.fuse_arrays`).
        keep_hot: PET/SPECT: lift the hottest uptake to at least the functional image's own value, as ``medfuse
            fuse`` does (:func:`medfuse.hotspots.floor_hot_regions`; the uptake from the image's
            ``meta[UPTAKE_META_KEY]`` when a colour transform put it there, else its values).
        strategy: how more than two images are fused (two images: both give ``fuse(reference, other)``).
            ``"mean_of_pairs"`` (default): the reference is fused with each other image, and the
            fusions are averaged voxel by voxel; every fusion is the two-input case the methods and
            networks are made for, each other image weighs the same and the order does not matter
            (BraTS: T1 with T1ce, T2 and FLAIR). ``"sequential"``: ``fuse(fuse(fuse(reference, o1), o2), ...)``,
            each result the reference of the next fusion; later images weigh more.

    Returns (``__call__(reference, *others)``):
        ``(1, *spatial)`` float32 in [0, 1] with **the reference's affine** and meta (the
        reference ``MetaTensor`` itself, values replaced).

    Raises:
        SpaceMismatchError: the inputs' shapes or affines differ (register them first).
        ValueError: no image to fuse with, or an unknown ``strategy``.
    """

    backend = [TransformBackends.NUMPY]

    def __init__(self, method: str = "mean", weights: str | None = None, pair: str | None = None,
                 device: str = "cpu", axis: int = -1, strategy: str = "mean_of_pairs", keep_hot: bool = True) -> None:
        from medfuse.errors import look_up

        self.method = method
        self.weights = weights
        self.pair = pair
        self.device = device
        self.axis = int(axis)
        self.keep_hot = bool(keep_hot)
        self.strategy = look_up(strategy, FUSION_STRATEGIES, "multi-input fusion strategy")

    def __call__(self, reference: Any, *others: Any):  # type: ignore[override]
        from medfuse.errors import SpaceMismatchError
        from medfuse.fusion import fuse_arrays, pair_for_modality
        from medfuse.hotspots import floor_hot_regions

        if not others:
            raise ValueError("FuseImages needs the reference and at least one other image on its grid")
        ref = to_volume(reference, 0)
        movs = [to_volume(m, 0) for m in others]
        for mov in movs:
            if not ref.same_grid(mov):
                raise SpaceMismatchError(
                    f"cannot fuse images on different grids (shapes {ref.shape} and {mov.shape}, affines differ by up "
                    f"to {float(np.abs(ref.affine - mov.affine).max()):.3g} mm); put the other image on the reference "
                    "grid first with RegisterToReference (register=False for pre-aligned scans)"
                )
        affine = ref.affine if _has_meta(reference) and ref.ndim == 3 else None  # RAS, from to_volume

        def fuse(a: np.ndarray, mov, uptake) -> np.ndarray:
            pair = self.pair or pair_for_modality(mov.modality)
            fused = fuse_arrays(a, mov.array, self.method, weights=self.weights, pair=pair, device=self.device,
                                axis=self.axis, affine=affine)
            return floor_hot_regions(fused, mov.array, uptake, pair, self.method) if self.keep_hot else fused

        uptakes = [m.meta.get(UPTAKE_META_KEY) if _has_meta(m) else None for m in others]
        if self.strategy == "sequential":
            fused = ref.array
            for mov, uptake in zip(movs, uptakes):
                fused = fuse(fused, mov, uptake)
        else:
            fused = np.mean([fuse(ref.array, mov, uptake) for mov, uptake in zip(movs, uptakes)], axis=0)
        return _like(np.asarray(fused, dtype=np.float32)[None], reference)
