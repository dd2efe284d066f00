"""The reader: :func:`read_dicom_series` composes discovery, geometry, pixel data and PET tags into a Volume."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from medfuse.errors import CorruptFileError, MissingSlicesError, TooLargeError
from medfuse.io.dicom.files import _as_floats, _as_int, _file_label, _opaque, _quiet_pydicom, _read, _sanitize, _text
from medfuse.io.dicom.enhanced import _expand_enhanced
from medfuse.io.dicom.identity import DicomIdentity
from medfuse.io.dicom.geometry import _geometry, _resample_uniform
from medfuse.io.dicom.pet import _pet_meta
from medfuse.io.dicom.pixels import _LOSSY_TRANSFER_SYNTAXES, _pixels, _real_world, _value_transform
from medfuse.io.dicom.series import _check_single_frame_stack, _scan, _select
from medfuse.io.naming import log_name
from medfuse.modality import MODALITIES
from medfuse.volume import Volume, lps_to_ras

__all__ = ["DEFAULT_MAX_BYTES", "read_dicom_series"]

logger = logging.getLogger(__name__)


#: Largest float32 output (bytes) read without ``max_bytes=``; checked before any pixel is read.
DEFAULT_MAX_BYTES = 2 * 1024**3


#: Modalities :class:`Volume` knows; other DICOM modalities are kept in ``meta["modality"]`` only.
_VOLUME_MODALITIES = frozenset(MODALITIES)


def read_dicom_series(
    path: str | Path,
    series: str | None = None,
    *,
    strict: bool = False,
    max_bytes: int | None = DEFAULT_MAX_BYTES,
) -> Volume:
    """Read one DICOM series into a float32 :class:`Volume` with an RAS affine.

    Args:
        path: a folder (scanned recursively; clutter skipped and counted) or one DICOM file (only
            that file is read).
        series: the series to read when the folder holds several: its opaque id (as listed by
            :func:`list_series` and by the :class:`MultipleSeriesError` message) or its full
            SeriesInstanceUID.
        strict: raise :class:`MissingSlicesError` for slightly non-uniform slice spacing instead
            of resampling it linearly onto equidistant slices.
        max_bytes: refuse (:class:`TooLargeError`) a series whose float32 array would exceed this
            many bytes, before reading any pixel; ``None`` for no limit.

    Returns:
        A :class:`Volume`: ``array`` float32 ``(X, Y, Z)`` = (column, row, slice) in real-world
        units (modality LUT / rescale applied per slice: HU for CT, the PET Units for PT);
        ``affine`` voxel-to-**RAS** (from LPS DICOM geometry); ``modality`` the DICOM Modality
        when it is MR, CT, PT or NM, else ``None``; ``meta`` with ``format`` ("dicom"),
        ``series_id`` (opaque), ``frame_of_reference`` (SHA-256[:16] of FrameOfReferenceUID or
        None; equal for a PET/CT pair acquired in one frame of reference), ``modality`` (the
        DICOM value), ``lossy`` (LossyImageCompression "01" or a lossy transfer syntax in any
        slice), ``n_slices`` (files read), ``slice_resampling`` (only when resampled) and, for
        PT, ``pet``: a dict of SUV inputs, ``None`` where absent: ``units``,
        ``decay_correction``, ``corrected_image`` (list of str), ``series_datetime``,
        ``acquisition_datetime`` (earliest over slices), ``radiopharmaceutical_start_datetime``
        (ISO ``YYYY-MM-DDTHH:MM:SS.ffffff`` strings, time zone dropped),
        ``radiopharmaceutical_start_time`` (the DICOM TM string), ``total_dose_bq``,
        ``half_life_s``, ``patient_weight_kg`` (floats), plus the vendor extras
        ``ge_private_scan_datetime`` (ISO), ``philips_suv_factor`` and
        ``philips_activity_concentration_factor`` (floats). A single file without patient
        geometry gives a 2D ``(rows, cols)`` slice with ``meta["geometry"] == "none"``. ``value_transform``
        says how stored values became real-world values (the rule, what was applied, slope/intercept ranges,
        and vendor scalings present but not applied; see :data:`~medfuse.io.dicom.pixels.VALUE_TRANSFORM_RULE`).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        CorruptFileError: no DICOM image found; truncated or undecodable pixel data; malformed
            geometry values.
        MultipleSeriesError: several series and ``series`` is None.
        SeriesNotFoundError: ``series`` matches none of the series found.
        MissingSlicesError: duplicate positions, a gap > 1.5x the median spacing, or (strict)
            non-uniform spacing.
        UnsupportedInputError: multi-frame/enhanced objects, mosaics, colour images, RT Dose and
            SEG objects, mixed orientations or matrix sizes, gantry tilt, compressed data without
            a working decoder.
        AmbiguousGeometryError: missing or invalid ImagePositionPatient/ImageOrientationPatient/
            PixelSpacing in a multi-slice series.
        TooLargeError: the output would exceed ``max_bytes``.

    Example:
        >>> vol = read_dicom_series("study/ct")  # doctest: +SKIP
        >>> vol.array.shape, vol.modality, vol.meta["series_id"]  # doctest: +SKIP
        ((512, 512, 120), 'CT', '3fa1c2d4')
    """
    with _quiet_pydicom():  # header values are converted lazily: keep pydicom quiet throughout
        return _read_series(Path(path), series, strict=strict, max_bytes=max_bytes)


def _read_series(root: Path, series: str | None, *, strict: bool, max_bytes: int | None) -> Volume:
    scan = _scan(root)
    if not scan.series:
        raise CorruptFileError(
            f"{root}: no DICOM image found ({scan.n_files} file(s) looked at: {scan.n_skipped} not "
            f"DICOM images, {scan.n_unreadable} unreadable). Expected a folder of DICOM slices or a "
            "DICOM image file"
        )
    info = _select(scan, series)
    headers = scan.headers[info.uid]
    label = f"{root} (series {info.opaque_id})" if root.is_dir() else str(root)
    stored_first = headers[0].ds  # as stored (enhanced: with its functional groups), for meta["value_transform"]
    headers = _expand_enhanced(headers, label)  # enhanced multi-frame: one pseudo-header per frame
    _check_single_frame_stack(headers, label)
    first = headers[0].ds
    samples = _as_int(first, "SamplesPerPixel", label, default=1)

    rows, cols = _as_int(first, "Rows", label), _as_int(first, "Columns", label)
    if not rows or not cols or rows <= 0 or cols <= 0:
        raise CorruptFileError(f"{label}: Rows/Columns must be positive, found {rows}x{cols}")
    n = len(headers)
    if max_bytes is not None and rows * cols * n * 4 * samples > max_bytes:
        raise TooLargeError(
            f"{label}: {cols}x{rows}x{n} voxels need {rows * cols * n * 4 * samples / 2**30:.2f} GiB as float32, "
            f"above the limit of {max_bytes / 2**30:.2f} GiB; raise max_bytes if this is intended"
        )

    if scan.n_unreadable:
        logger.warning(
            "%s: %d file(s) in the folder could not be parsed as DICOM and were skipped",
            log_name(root),
            scan.n_unreadable,
        )
    no_geometry = n == 1 and "ImagePositionPatient" not in first and "ImageOrientationPatient" not in first
    try:
        geom = None if no_geometry else _geometry(headers, label, strict)
    except MissingSlicesError as err:
        if not scan.n_unreadable:
            raise
        raise MissingSlicesError(
            f"{err} ({scan.n_unreadable} file(s) in the folder could not be parsed as DICOM: damaged "
            "slices of this series?)"
        ) from None
    order = np.arange(1) if geom is None else geom.order

    datasets = [headers[int(i)].ds for i in order]  # headers (no pixel data), in slice order
    # slice-major: DICOM's own layout; colour slices keep their 3 samples last
    buffer = np.empty((len(order), rows, cols) + ((3,) if samples == 3 else ()), dtype=np.float32)
    frames_cache: dict[Path, np.ndarray] = {}  # enhanced multi-frame: the decoded frames of one file
    for out_k, idx in enumerate(order):
        h = headers[int(idx)]
        flabel = _file_label(h.path, root) if root.is_dir() else str(root)
        if h.frame is not None and h.path in frames_cache:
            arr, ds = frames_cache[h.path][h.frame], h.ds
        else:
            try:
                ds = _read(h.path, pixels=True)
            except Exception as err:  # noqa: BLE001 - wrapped: pydicom's text may quote values
                raise CorruptFileError(
                    f"{flabel}: the file can no longer be read as DICOM (changed or damaged? {type(err).__name__})"
                ) from None
            if ds is None:
                raise CorruptFileError(f"{flabel}: the file changed while reading (no longer a DICOM image)")
            arr = _pixels(ds, flabel)
            if h.frame is not None:
                n_frames = _as_int(ds, "NumberOfFrames", flabel, default=1) or 1
                if n_frames == 1 and arr.ndim == (3 if samples == 3 else 2):
                    arr = arr[None]
                frames_cache[h.path] = arr
                arr, ds = arr[h.frame], h.ds
        expected = (rows, cols, 3) if samples == 3 else (rows, cols)
        if arr.shape != expected:
            raise CorruptFileError(
                f"{flabel}: decoded pixel data have shape {arr.shape}, expected Rows x Columns = {(rows, cols)}"
            )
        buffer[out_k] = arr if samples == 3 else _real_world(arr, ds, flabel)
        del ds, arr
    frames_cache.clear()
    lossy = any(
        _text(d, "LossyImageCompression") == "01"
        or str(d.file_meta.TransferSyntaxUID) in _LOSSY_TRANSFER_SYNTAXES
        for d in datasets
    )

    dicom_modality = _text(first, "Modality")
    dicom_modality = _sanitize(dicom_modality, 16) if dicom_modality else None
    for_uid = _text(first, "FrameOfReferenceUID")
    meta: dict[str, Any] = {
        "format": "dicom",
        "series_id": info.opaque_id,
        "frame_of_reference": _opaque(for_uid, 16) if for_uid else None,
        "modality": dicom_modality,
        "lossy": bool(lossy),
        "n_slices": n,
    }
    meta["dicom_uids"] = DicomIdentity.from_datasets(datasets, info.uid)  # repr withheld; see .identity
    meta["value_transform"] = (  # the same rule for every series, so for both members of a pair; in the sidecar
        {"rule": "RGB colour samples, no rescale", "applied": "none"} if samples == 3 else
        _value_transform(datasets, stored_first)
    )
    if any(h.frame is not None for h in headers):
        meta["enhanced"] = {"frames": n, "geometry": "per-frame and shared functional groups"}
    if dicom_modality == "PT":
        meta["pet"] = _pet_meta(datasets)
    modality = dicom_modality if dicom_modality in _VOLUME_MODALITIES else None

    rgb = None
    if samples == 3:  # a colour series (RGB, e.g. a fused PET/SPECT written by medfuse): Y in array, RGB kept
        from medfuse.color import split_luminance

        rgb = buffer
        buffer = split_luminance(buffer)[0] / np.float32(255.0)
        meta["colour"] = "RGB"
        meta["value_max"] = 1.0
    if geom is None:
        ps = _as_floats(first, "PixelSpacing", 2, label)
        ps = (1.0, 1.0) if ps is None else tuple(float(v) for v in ps)
        logger.warning(
            "%s: the image has no patient geometry; read as a 2D slice with an unoriented affine", log_name(root)
        )
        meta["geometry"] = "none"
        return Volume(
            buffer[0], np.diag([ps[0], ps[1], 1.0, 1.0]), modality=modality, meta=meta, source=str(root),
            rgb=None if rgb is None else rgb[0],
        )

    # (X, Y, Z) = (column, row, slice) as a view: Fortran-contiguous, like nibabel's arrays, and
    # exactly the memory SimpleITK wants (to_sitk's ``array.T`` is C-contiguous, no copy)
    stack = buffer.transpose(2, 1, 0)
    rgb_stack = None if rgb is None else rgb.transpose(2, 1, 0, 3)
    spacing = geom.slice_spacing
    if not geom.uniform:
        steps = np.diff(geom.positions)
        if rgb_stack is not None:
            raise MissingSlicesError(
                f"{label}: the colour series has non-uniform slice spacing; medfuse does not resample colour "
                "series. Re-export it with equidistant slices"
            )
        stack, spacing = _resample_uniform(stack, geom.positions, geom.slice_spacing)
        meta["slice_resampling"] = {
            "method": "linear",
            "n_original": n,
            "n_resampled": int(stack.shape[2]),
            "spacing_mm": float(spacing),
            "original_spacing_mm": [float(steps.min()), float(steps.max())],
        }
        logger.warning(
            "%s: slice spacing varies from %.3f to %.3f mm; resampled %d slices linearly onto %d "
            "equidistant slices of %.3f mm (strict=True refuses instead)",
            log_name(root),
            steps.min(),
            steps.max(),
            n,
            stack.shape[2],
            spacing,
        )
    affine = lps_to_ras(geom.affine_lps(spacing))
    logger.debug(
        "%s: read %d slice(s) of %dx%d, %s", log_name(root), n, cols, rows, dicom_modality or "unknown modality"
    )
    return Volume(stack, affine, modality=modality, meta=meta, source=str(root), rgb=rgb_stack)
