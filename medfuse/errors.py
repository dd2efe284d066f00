"""Typed errors raised by medfuse.

Every class subclasses :class:`MedfuseError` (so the CLI can turn any of them into a one-line
message) and a built-in exception (so callers can catch ``ValueError`` and friends as usual).

A message names the file or value, what was expected, what was found and what to do. Messages
never contain patient identifiers: only paths the user gave, counts and opaque ids.
"""

from __future__ import annotations

__all__ = [
    "MedfuseError",
    "CorruptFileError",
    "UnsupportedInputError",
    "AmbiguousGeometryError",
    "MultipleSeriesError",
    "SeriesNotFoundError",
    "MissingSlicesError",
    "EmptyImageError",
    "NonFiniteError",
    "TooLargeError",
    "SpaceMismatchError",
    "RegistrationError",
    "SUVUnavailableError",
    "ImplausibleSUVInputsError",
    "OutputExistsError",
    "OptionError",
    "look_up",
]


class MedfuseError(Exception):
    """Base class of every error medfuse raises on purpose."""


class CorruptFileError(MedfuseError, ValueError):
    """A file is unreadable, truncated, or not the format its name says."""


class UnsupportedInputError(MedfuseError, ValueError):
    """The input is valid but not something medfuse handles (4D without a frame choice, ...)."""


class AmbiguousGeometryError(MedfuseError, ValueError):
    """The file's geometry is missing, contradictory (sform vs qform) or not orthonormal."""


class MultipleSeriesError(MedfuseError, ValueError):
    """A DICOM folder holds more than one series and none was selected."""


class SeriesNotFoundError(MedfuseError, ValueError):
    """The series asked for (``--series ID``) is not in the DICOM folder; the message lists those found."""


class MissingSlicesError(MedfuseError, ValueError):
    """A DICOM series has a gap, duplicate positions, or non-uniform slice spacing."""


class EmptyImageError(MedfuseError, ValueError):
    """The image is empty or constant: nothing to register, normalize or fuse."""


class NonFiniteError(MedfuseError, ValueError):
    """The image holds NaN or infinite voxels."""


class TooLargeError(MedfuseError, ValueError):
    """A header declares more data than the configured limit; refused before allocation."""


class SpaceMismatchError(MedfuseError, ValueError):
    """Two images that must share a grid (shape and affine) do not."""


class RegistrationError(MedfuseError, RuntimeError):
    """Registration could not start, did not converge, or produced an implausible result."""


class SUVUnavailableError(MedfuseError, ValueError):
    """The PET header lacks what SUV needs (units, weight, dose, times, decay correction)."""


class ImplausibleSUVInputsError(MedfuseError, ValueError):
    """SUV inputs are present but outside plausible ranges (a unit error, most likely)."""


class OutputExistsError(MedfuseError, FileExistsError):
    """An output file exists already and overwriting was not requested (use ``--force``)."""


class OptionError(MedfuseError, ValueError):
    """An option value (method, window preset, ...) is not one of the supported names."""


def look_up(value, supported, what: str):
    """``supported[value]`` (or ``value`` when ``supported`` is a set/sequence), else :class:`OptionError`
    with a one-line "did you mean" message (MONAI's ``look_up_option`` does the matching)."""
    from monai.utils import look_up_option

    try:
        return look_up_option(value, supported)
    except ValueError as err:
        first = str(err).splitlines()[0]
        names = ", ".join(sorted(map(str, supported)))
        raise OptionError(f"unknown {what} {value!r}. {first} Choose one of: {names}") from None
