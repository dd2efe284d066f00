"""MONAI array transforms of medfuse: each wraps one plain function and keeps MetaTensor geometry.

Inputs and outputs are channel-first ``(C, H, W[, D])`` images: MONAI ``MetaTensor`` (whose
``affine`` maps voxel indices to world millimetres, RAS unless ``meta["space"]`` says LPS),
torch tensors or numpy arrays (identity affine). Outputs are ``MetaTensor``; each class states
which affine its output carries.

The helpers :func:`metatensor_to_volume` and :func:`volume_to_metatensor` convert one channel to
and from :class:`~medfuse.volume.Volume`, the container of the plain functions; every transform
here uses them, so geometry is converted in one place.

- :class:`RegisterToReference`: :func:`medfuse.registration.register` (output on the reference grid).
- :class:`NormalizeModality`: :func:`medfuse.intensity.normalize` (same grid, values in [0, 1]).
"""

from __future__ import annotations

import logging
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np

from medfuse.volume import LPS_RAS_FLIP, Volume

__all__ = [
    "metatensor_to_volume",
    "volume_to_metatensor",
    "RegisterToReference",
    "NormalizeModality",
]

log = logging.getLogger(__name__)

try:  # MONAI is a dependency; the import is here so that this module stays importable for docs
    from monai.transforms import Transform
    from monai.utils import TransformBackends
except ImportError:  # pragma: no cover
    Transform = object  # type: ignore[assignment,misc]
    TransformBackends = None  # type: ignore[assignment]


def _is_lps(meta: Mapping) -> bool:
    return str(meta.get("space", "RAS")).upper().endswith("LPS")


def _affine_4x4(affine: np.ndarray) -> np.ndarray:
    a = np.asarray(affine, dtype=np.float64)
    if a.shape == (4, 4):
        return a
    if a.shape == (3, 3):  # a 2D affine (row, col, 1) -> embed into 3D
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


def metatensor_to_volume(img: Any, channel: int = 0, modality: str | None = None) -> Volume:
    """One channel of a channel-first image as a :class:`~medfuse.volume.Volume` (RAS affine).

    Args:
        img: ``(C, H, W[, D])`` ``MetaTensor``, torch tensor or numpy array.
        channel: which channel.
        modality: the modality code; default ``meta["modality"]`` (or the DICOM Modality tag).

    Returns:
        A Volume with ``array`` float32 ``(H, W[, D])``, the image's affine in RAS, and
        ``meta`` holding the non-geometric entries of the MetaTensor meta that medfuse uses
        (``pet``, ``frame_of_reference``, ``units``, ``value_max``).
    """
    from monai.data import MetaTensor
    from monai.utils import convert_data_type

    meta: Mapping = img.meta if isinstance(img, MetaTensor) else {}
    array = convert_data_type(img, np.ndarray)[0]
    if array.ndim not in (3, 4):
        raise ValueError(f"expected a channel-first (C, H, W[, D]) image, got shape {array.shape}")
    affine = np.eye(4)
    if isinstance(img, MetaTensor):
        affine = _affine_4x4(convert_data_type(img.affine, np.ndarray)[0])
        if _is_lps(meta):
            affine = LPS_RAS_FLIP @ affine
    kept = {k: meta[k] for k in ("pet", "frame_of_reference", "units", "value_max") if k in meta}
    return Volume(
        np.asarray(array[channel], dtype=np.float32),
        affine,
        modality=modality or _modality_from_meta(meta),
        meta=kept,
        source=str(meta.get("filename_or_obj", "") or ""),
    )


def volume_to_metatensor(volumes: Volume | Sequence[Volume], like: Any = None, extra_meta: Mapping | None = None):
    """Stack Volumes (one per channel, same grid) into a channel-first ``MetaTensor``.

    Args:
        volumes: one Volume or a sequence of Volumes on one grid.
        like: an input ``MetaTensor`` whose meta is copied (affine and spatial shape replaced by
            the volumes'; its ``space`` is kept, the affine converted back to LPS if it says LPS).
        extra_meta: entries added to the output meta.

    Returns:
        A float32 ``MetaTensor`` ``(C, H, W[, D])`` with the volumes' affine.
    """
    import torch
    from monai.data import MetaTensor

    vols = [volumes] if isinstance(volumes, Volume) else list(volumes)
    data = torch.as_tensor(np.stack([v.array for v in vols]).astype(np.float32, copy=False))
    meta = dict(like.meta) if isinstance(like, MetaTensor) else {}
    affine = vols[0].affine
    if _is_lps(meta):
        affine = LPS_RAS_FLIP @ affine
    meta["spatial_shape"] = np.asarray(vols[0].shape)
    meta.pop("affine", None)
    if extra_meta:
        meta.update(extra_meta)
    out = MetaTensor(data, affine=torch.as_tensor(affine, dtype=torch.float64), meta=meta)
    if isinstance(like, MetaTensor):
        out.applied_operations = list(like.applied_operations)
    return out


class RegisterToReference(Transform):
    """Register a moving image onto a reference image and resample it onto the reference grid.

    Wraps :func:`medfuse.registration.register` (3D only; SimpleITK does the work, so torch inputs
    are converted to numpy and back). Channel 0 of both images drives the registration; every
    channel of the moving image is resampled with the transform found.

    Args:
        transform: ``"rigid"`` (default), ``"affine"`` or ``"bspline"``.
        label_map: the moving image is a label map (nearest-neighbour resampling).
        modality: the moving image's modality (``"CT"``, ``"PT"``, ...); default from its meta.
        reference_modality: the reference's modality; default from its meta, else ``"MR"``.
        settings: keyword arguments of :class:`~medfuse.registration.RegistrationSettings`
            (JSON-serializable, for bundle configs).
        skip_same_frame: skip registration for scans sharing a DICOM frame of reference.

    Returns (``__call__``):
        A ``MetaTensor`` ``(C, *reference_spatial_shape)`` with the **reference's affine**, the
        moving image's other meta, and ``meta["registration"]`` (a JSON-safe summary with the 4x4
        ``reference_to_moving_ras`` matrix). Not invertible through MONAI's ``Invertd``.

    Raises:
        RegistrationError: as :func:`~medfuse.registration.register`.

    Example:
        >>> reg = RegisterToReference(transform="rigid", modality="PT")  # doctest: +SKIP
        >>> pet_on_mri = reg(pet, reference=mri)  # doctest: +SKIP
        >>> torch.allclose(pet_on_mri.affine, mri.affine)  # doctest: +SKIP
        True
    """

    backend = [TransformBackends.NUMPY] if TransformBackends is not None else []

    def __init__(
        self,
        transform: str = "rigid",
        label_map: bool = False,
        modality: str | None = None,
        reference_modality: str | None = None,
        settings: Mapping[str, Any] | None = None,
        skip_same_frame: bool = True,
    ) -> None:
        from medfuse.registration import RegistrationSettings, TransformType

        try:
            TransformType(str(transform).strip().lower())
        except ValueError:
            from monai.utils import look_up_option

            look_up_option(transform, TransformType)
        self.transform = str(transform).strip().lower()
        self.label_map = bool(label_map)
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
        ref = metatensor_to_volume(reference, 0, self.reference_modality)
        if ref.modality is None:
            ref.modality = "MR"
        moving = metatensor_to_volume(img, 0, self.modality)
        result = register(ref, moving, transform=self.transform, label_map=label, settings=self.settings,
                          skip_same_frame=self.skip_same_frame)
        out = [result.resampled]
        n_channels = int(img.shape[0])
        for c in range(1, n_channels):
            out.append(resample_to_reference(metatensor_to_volume(img, c, moving.modality), ref, result.transform,
                                             "nearest" if label else "linear"))
        return volume_to_metatensor(out, like=img if _has_meta(img) else reference,
                                    extra_meta={"registration": result.summary(),
                                                **({"space": reference.meta.get("space")} if _has_meta(reference) and
                                                   "space" in reference.meta else {})})


def _has_meta(img: Any) -> bool:
    from monai.data import MetaTensor

    return isinstance(img, MetaTensor)


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

    Returns (``__call__``):
        A float32 ``MetaTensor`` of the same shape and **the same affine** and meta, values in
        [0, 1], with ``meta["normalization"]`` (one record per channel).
    """

    backend = [TransformBackends.NUMPY] if TransformBackends is not None else []

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
        """Normalize ``img``; ``mask`` (same spatial shape, optional channel axis) fixes where statistics come from."""
        from monai.utils import convert_data_type

        from medfuse.intensity import normalize

        m = None
        if mask is not None:
            m = np.asarray(convert_data_type(mask, np.ndarray)[0]).astype(bool)
            if m.ndim == np.ndim(img):
                m = m[0]
        out, records = [], []
        for c in range(int(img.shape[0])):
            vol = metatensor_to_volume(img, c, self.modality)
            result = normalize(vol, vol.modality, window=self.window, mask=m, percentiles=self.percentiles)
            out.append(result)
            records.append(result.meta["normalization"])
        return volume_to_metatensor(out, like=img, extra_meta={"normalization": records[0] if len(records) == 1
                                                               else records})


_ = (Hashable,)  # typing names kept for subclasses of these transforms
