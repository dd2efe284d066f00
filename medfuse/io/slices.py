"""2D slices: PNG, TIFF and BMP files such as the Harvard AANLIB fusion pairs.

A slice has no geometry of its own: its array is ``(H, W)`` = ``(rows, columns)`` exactly as
stored (never transposed, so both members of a pair line up whatever readers others use), with
an identity affine (1 mm pixels). Gray RGB files (R = G = B) load as gray; true colour (the
AANLIB PET/SPECT colour maps) keeps its RGB in :attr:`Volume.rgb` and its Pillow luminance Y in
:attr:`Volume.array`. 16-bit files keep their values.
"""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import numpy as np

from medfuse.color import is_gray_rgb, split_luminance
from medfuse.errors import CorruptFileError, UnsupportedInputError
from medfuse.io.atomic import atomic_output
from medfuse.io.formats import SLICE_SUFFIXES
from medfuse.volume import Volume

__all__ = ["read_slice", "write_slice", "encode_png", "SLICE_SUFFIXES"]


def read_slice(path: str | os.PathLike) -> Volume:
    """Read a 2D image file.

    Returns:
        A 2D :class:`Volume`: float32 ``(H, W)`` intensities (the Y channel for colour files),
        ``rgb`` ``(H, W, 3)`` for colour files, and ``meta["value_max"]``: the largest value the
        file's bit depth can hold (255 or 65535), used to scale to [0, 1].
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    try:
        with Image.open(path) as img:
            img.load()
            mode = img.mode
            if mode in ("P", "PA", "LA", "RGBA", "CMYK", "YCbCr"):
                img = img.convert("RGB")
                mode = "RGB"
            arr = np.asarray(img)
    except FileNotFoundError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise CorruptFileError(f"{path}: not a readable image ({err.__class__.__name__}); check the file") from err
    meta = {"format": path.suffix.lower().lstrip("."), "value_max": 255.0}
    if mode in ("I;16", "I;16B", "I;16L", "I", "F") or arr.dtype.itemsize > 1:
        meta["value_max"] = 65535.0 if arr.dtype.kind in "ui" and arr.max(initial=0) <= 65535 else float(arr.max())
    if arr.ndim == 3:
        if arr.shape[2] != 3:
            raise UnsupportedInputError(f"{path}: {arr.shape[2]} channels; expected gray or RGB")
        if is_gray_rgb(arr):
            return Volume(arr[..., 0], np.eye(4), meta=meta, source=str(path))
        y, _, _ = split_luminance(arr)
        meta["color"] = True
        return Volume(y, np.eye(4), meta=meta, source=str(path), rgb=arr.astype(np.float32))
    if arr.ndim != 2:
        raise UnsupportedInputError(f"{path}: image of shape {arr.shape}; expected a 2D gray or RGB image")
    return Volume(arr, np.eye(4), meta=meta, source=str(path))


def write_slice(volume: Volume, path: str | os.PathLike, *, force: bool = False) -> Path:
    """Write a 2D volume to PNG/TIFF/BMP: RGB if it has ``rgb``, else gray.

    Values are written as they are: 8-bit when they fit 0..255, 16-bit (PNG/TIFF) when they fit
    0..65535; fractional values are rounded. Scale [0, 1] images to 0..255 first.
    """
    from PIL import Image

    if volume.ndim != 2:
        raise UnsupportedInputError(f"{path}: only 2D images can be written as {Path(path).suffix}; use .nii.gz or .nrrd")
    if volume.rgb is not None:
        img = Image.fromarray(np.clip(np.rint(volume.rgb), 0, 255).astype(np.uint8), mode="RGB")
    else:
        a = np.rint(volume.array)
        lo, hi = (float(a.min()), float(a.max())) if a.size else (0.0, 0.0)
        if lo >= 0 and hi <= 255:
            img = Image.fromarray(a.astype(np.uint8), mode="L")
        elif lo >= 0 and hi <= 65535 and Path(path).suffix.lower() != ".bmp":
            img = Image.fromarray(a.astype(np.uint16))
        else:
            raise UnsupportedInputError(f"{path}: values {lo:g}..{hi:g} do not fit an image file; scale them to 0..255")
    fmt = {".tif": "TIFF", ".tiff": "TIFF", ".bmp": "BMP"}.get(Path(path).suffix.lower(), "PNG")
    # PNG: zlib level 1 (Pillow's default 6 took ~19 of the ~21 ms a `fuse-dir --method max` pair cost,
    # benchmarks/startup.py); lossless either way, files ~10-20% larger
    options = {"compress_level": PNG_COMPRESS_LEVEL} if fmt == "PNG" else {}
    with atomic_output(path, force) as tmp:
        if fmt == "PNG" and img.mode in ("L", "RGB"):
            tmp.write_bytes(encode_png(np.asarray(img)))
        else:
            img.save(tmp, format=fmt, **options)
    return Path(path)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def encode_png(pixels: np.ndarray, level: int | None = None) -> bytes:
    """An 8-bit gray ``(H, W)`` or RGB ``(H, W, 3)`` uint8 image as PNG file bytes (IHDR, one IDAT, IEND).

    Every row with PNG's "Up" filter (the difference to the row above; the first row as it is), then zlib at
    ``level`` (default :data:`PNG_COMPRESS_LEVEL`): the same pixels as Pillow's writer gives (any PNG reader),
    files within ~2% of its size, in about half its time (Pillow tries five filters on every row: a 256 x 256
    RGB 4.1 -> 2.5 ms, gray 2.0 -> 0.9 ms).
    """
    level = PNG_COMPRESS_LEVEL if level is None else int(level)
    pixels = np.ascontiguousarray(pixels, dtype=np.uint8)
    h, w = pixels.shape[:2]
    colour = {2: 0, 3: 2}[pixels.ndim]  # PNG colour type: 0 gray, 2 RGB
    rows = pixels.reshape(h, -1)
    raw = np.empty((h, rows.shape[1] + 1), dtype=np.uint8)
    raw[:, 0] = 2 if h > 1 else 0  # filter type "Up" ("None" for a single row)
    raw[:1, 1:] = rows[:1]
    np.subtract(rows[1:], rows[:-1], out=raw[1:, 1:])  # modulo 256, as PNG's filter is
    header = struct.pack(">IIBBBBB", w, h, 8, colour, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header)
            + _png_chunk(b"IDAT", zlib.compress(raw.tobytes(), level)) + _png_chunk(b"IEND", b""))


#: zlib level of the PNG files medfuse writes (fast; lossless at every level)
PNG_COMPRESS_LEVEL = 1
