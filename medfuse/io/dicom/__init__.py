"""Read a DICOM series (a folder of single-frame slices, or one file) into a :class:`Volume`.

What this reader guarantees (each is tested in ``tests/io/test_dicom.py``; the numbers refer to
the rows of the shared bad-inputs matrix):

- **One series at a time** (7): files are grouped by SeriesInstanceUID; a folder holding two or
  more series raises :class:`~medfuse.errors.MultipleSeriesError` listing each series by an
  opaque id (a short hash of its UID, never the UID), modality, description and slice count, and
  ``series=`` (``--series`` on the command line) picks one.
- **Geometry from the patient position, never from InstanceNumber** (11, 12): slices are sorted
  by ``ImagePositionPatient . n`` with ``n = IOP[0:3] x IOP[3:6]`` (the normal of the slice
  plane); the slice spacing is measured along ``n`` (sagittal, coronal and oblique stacks too).
- **Incomplete or odd stacks are refused, not stretched** (8, 9, 10): duplicate positions (a
  series whose images repeat every position equally often is named 4D: time points or echoes,
  with ``--frame N`` on a 4D NIfTI conversion as the fix), a gap
  larger than 1.5x the median spacing, a stack whose positions drift within the slice plane
  (gantry tilt), mixed orientations or matrix sizes raise typed errors. Slightly non-uniform
  spacing (above 1 % but below the gap limit) is resampled linearly onto equidistant slices with
  a warning and a record in ``meta["slice_resampling"]`` unless ``strict=True``, which raises.
- **Real-world values** (22, 24, 25): the modality LUT or RescaleSlope/RescaleIntercept is
  applied **per slice**; the output is float32 (CT in HU, PET in the series' Units).
- **Clear refusals** (13, 14, 34, 37): multi-frame and enhanced objects, Siemens mosaics, colour
  images and non-image pixel objects (RT Dose, SEG) raise
  :class:`~medfuse.errors.UnsupportedInputError` (the SOP class decides what is enhanced: a classic
  MR/CT/PET image with a top-level position and orientation is read as the classic image it is
  whatever functional-group sequences it carries, such as the one-empty-item
  PerFrameFunctionalGroupsSequence of ADNI's MP-RAGE; functional groups are used only where they
  hold the geometry; an empty Modality LUT item is no LUT); so does a compressed transfer syntax without a
  (working) decoder, naming the transfer syntax UID and the plugins to install; truncated or
  missing pixel data raise :class:`~medfuse.errors.CorruptFileError`.
- **Clutter is skipped and counted** (39, 43): DICOMDIR, ``.DS_Store``, JSON, text, thumbnails,
  structured reports and other non-image objects in the folder are skipped (one log line with
  the count); files without the DICOM preamble/file meta are read when they hold an image.
- **No patient identifiers** in messages, logs or ``meta``: UIDs appear only hashed; pydicom's
  own exceptions (which may quote element values) are replaced by messages naming the path the
  user gave, the problem and the fix.

World convention: DICOM geometry is LPS; the affine is built in LPS from the first sorted slice's
ImagePositionPatient, the ImageOrientationPatient cosines, PixelSpacing and the slice step, and
converted once with :func:`medfuse.volume.lps_to_ras`.

Array layout: ``(X, Y, Z) = (column index, row index, slice index)``, i.e. each slice's
``pixel_array.T`` stacked on the last axis, so the LPS affine's columns are ``IOP[0:3] *
PixelSpacing[1]`` (along a row: increasing column index), ``IOP[3:6] * PixelSpacing[0]`` (down a
column: increasing row index) and ``n * slice spacing``, and its translation is the first sorted
slice's ImagePositionPatient; the RAS affine is that, flipped. Slices are ordered along ``+n``,
so the affine is right-handed whatever order the files or InstanceNumbers have. A single file without
any patient geometry (secondary capture) is returned as a 2D ``(rows, cols)`` slice, the
convention :class:`~medfuse.volume.Volume` uses for 2D images.

Layout (split by concern, as nibabel splits ``nicom/``): :mod:`.series` finds the series in a
folder and picks one, :mod:`.geometry` sorts the slices and builds the affine, :mod:`.pixels`
decodes the pixel data into real-world values, :mod:`.pet` reads the tags SUV needs, :mod:`.files`
reads one file without leaking element values, and :mod:`.reader` composes them.
pydicom is imported only inside the functions that read files.
"""

from __future__ import annotations

from medfuse.io.dicom.reader import DEFAULT_MAX_BYTES, read_dicom_series
from medfuse.io.dicom.series import SeriesInfo, list_series

__all__ = ["SeriesInfo", "list_series", "read_dicom_series", "DEFAULT_MAX_BYTES"]
