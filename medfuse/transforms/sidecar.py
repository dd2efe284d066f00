"""MONAI transform writing medfuse's sidecar beside a fused image (:mod:`medfuse.report.sidecar`)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from monai.transforms import Transform
from monai.utils import TransformBackends

from medfuse.transforms.array import _has_meta, to_volume

__all__ = ["WriteSidecar"]


class WriteSidecar(Transform):
    """Write medfuse's JSON sidecar (:mod:`medfuse.report.sidecar`) beside a fused image already saved.

    Args:
        method: the fusion method or network name.
        weights: the network checkpoint used (its file name and SHA-256 go in the record).
        command: what made the output (``"python -m monai.bundle run"``).

    ``__call__(img, reference=None, moving=None)``: ``img`` is the fused ``MetaTensor`` after
    ``SaveImage(savepath_in_metadict=True)`` (its ``meta["saved_to"]`` names the output);
    ``reference``/``moving`` are the normalized inputs, whose metadata (modality and its source,
    format, normalization, registration summary) the record reports; for a colour output (3 channels) it
    also says what the file holds and which colour map ``moving`` went through (``meta["colour"]``, set
    by :class:`ApplyColormap`), as the CLI's sidecar does. Returns ``img`` unchanged.
    No patient identifiers: no input paths, only what medfuse computed.
    """

    backend = [TransformBackends.NUMPY]

    def __init__(self, method: str | None = None, weights: str | os.PathLike | None = None,
                 command: str = "medfuse transforms") -> None:
        self.method, self.weights, self.command = method, weights, command

    def __call__(self, img: Any, reference: Any = None, moving: Any = None):  # type: ignore[override]
        from pathlib import Path

        from medfuse.pipeline.provenance import Provenance
        from medfuse.report.sidecar import file_sha256, fused_image_record, volume_record, write_sidecar

        saved = img.meta.get("saved_to") if _has_meta(img) else None
        if not saved:
            raise ValueError("WriteSidecar needs the output's path in meta['saved_to']: run "
                             "SaveImage(savepath_in_metadict=True) before it")
        inputs = {}
        for role, x in (("reference", reference), ("moving", moving)):
            if x is not None:
                vol = to_volume(x, 0)
                vol.meta.update({k: x.meta[k] for k in ("normalization",) if _has_meta(x) and k in x.meta})
                record = volume_record(vol, vol)
                record.pop("sha256_of_values", None)  # these are the normalized values, not the input's
                inputs[role] = record
        registration = moving.meta.get("registration") if _has_meta(moving) else None
        if isinstance(registration, Mapping) and registration.get("check_failures", []) is None:
            # MONAI's collate/decollate (the bundles' DataLoader) turns an empty list into None: the record says []
            registration = {**registration, "check_failures": []}
        registration = registration if registration is not None else {"registered": False}
        provenance = Provenance(self.command)
        provenance.add("align", **registration)
        provenance.add("fuse", method=self.method, weights=None if self.weights is None else Path(self.weights).name)
        record = provenance.record(
            output=Path(saved).name, method=self.method,
            weights=None if self.weights is None else {"file": Path(self.weights).name,
                                                       "sha256": file_sha256(self.weights)},
            inputs=inputs, registration=registration,
        )
        colour = moving.meta.get("colour") if _has_meta(moving) else None
        colour = colour if isinstance(colour, Mapping) and "range" in colour else None
        # a 3-channel image is MergeLuminance's colour: what the file holds, and the colour map used
        record.update(fused_image_record(int(img.shape[0]) == 3, len(img.shape) - 1, colour))
        write_sidecar(saved, record, force=True)
        return img
