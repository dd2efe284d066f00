"""Typed errors raised by medfuse.

Every class subclasses :class:`MedfuseError` (so the CLI can turn any of them into a one-line
message) and a built-in exception (so callers can catch ``ValueError`` and friends as usual).

A message names the file or value, what was expected, what was found and what to do. Messages
never contain patient identifiers: only paths the user gave, counts and opaque ids.

Messages speak the API's words, never a door's: an error about one input carries ``role``
(``"reference"``/``"moving"``), and one that an option decides or works around carries ``option`` (the
API's keyword: ``accept_registration``, ``series``, ...) and names it in its text as :data:`OPTION`. Each
door renders that in its own words with :meth:`MedfuseError.render`: the API as "the accept_registration
option", the command line as the flag (``--accept-registration``, ``--moving-series``), the Slicer module
as its control. Nothing parses message text.
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
    "UnknownModalityError",
    "PairMismatchError",
    "look_up",
    "OPTION",
]

#: where a message names its :attr:`MedfuseError.option`; :meth:`MedfuseError.render` puts the door's words there
OPTION = "{option}"


class MedfuseError(Exception):
    """Base class of every error medfuse raises on purpose.

    Args:
        *args: the message (as for any exception); it names the option, if any, as :data:`OPTION`.
        role: ``"reference"`` or ``"moving"`` when the error is about one input of a pair, else None.
        option: the API keyword of the option that decides the matter or works around it
            (``accept_registration``, ``force``, ``series``, ...), else None.
    """

    def __init__(self, *args, role: str | None = None, option: str | None = None):
        super().__init__(*args)
        self.role = role
        self.option = option

    def render(self, name_option=None) -> str:
        """The message with :data:`OPTION` in a door's words: ``name_option(option, role)`` (the command line
        gives its flag), by default "the <option> option" (the Python API's keyword)."""
        text = super().__str__()
        if self.option is not None and OPTION in text:
            words = name_option(self.option, self.role) if name_option is not None else None
            text = text.replace(OPTION, words or f"the {self.option} option")
        return text

    def __str__(self) -> str:
        return self.render()


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


class UnknownModalityError(MedfuseError, ValueError):
    """Nothing says which modality a scan is (no DICOM tag, no name, not HU): the user must (``--moving-modality``)."""


class PairMismatchError(MedfuseError, ValueError):
    """The two inputs do not make a pair: a role contradicts a DICOM Modality, the roles look swapped, or the
    DICOM PatientIDs differ (``--accept-mismatch`` overrides; see :mod:`medfuse.pair_check`)."""


def look_up(value, supported, what: str, *, ignore_case: bool = False, error: type[MedfuseError] = OptionError,
            option: str | None = None):
    """Check an option name; on a typo raise :class:`OptionError` with a one-line "did you mean".

    Import-light (:mod:`difflib`, not MONAI's ``look_up_option``), so that modules imported by
    ``import medfuse`` can use it.

    Args:
        value: the name given; a string is stripped of surrounding white space first.
        supported: a mapping (name -> what to return) or a collection of names.
        what: what the name selects (``"fusion method"``), named in the message.
        ignore_case: match case-insensitively.
        error: the class raised (a caller that documents :class:`UnsupportedInputError` passes it).
        option: the API keyword that takes the name; the error carries it and its message names it
            (as :data:`OPTION`, which each door words).

    Returns:
        ``supported[name]`` for a mapping, else the name as ``supported`` spells it.

    Raises:
        OptionError (or ``error``): ``value`` is not a supported name. The message names the closest supported
            name when there is one (``unknown modality 'pett'; did you mean 'pet'? Choose one of: ...``)
            and lists them all.
    """
    import difflib
    from collections.abc import Mapping

    key = value.strip() if isinstance(value, str) else value
    names = list(supported)

    def fold(name):
        return str(name).lower() if ignore_case else str(name)

    if ignore_case and isinstance(key, str):
        found = [n for n in names if isinstance(n, str) and n.lower() == key.lower()][:1]
    else:
        try:
            found = [key] if key in supported else []
        except TypeError:  # unhashable
            found = []
    if found:
        return supported[found[0]] if isinstance(supported, Mapping) else found[0]
    folded = {fold(n): n for n in names}
    close = difflib.get_close_matches(fold(key), list(folded), n=1)
    hint = f"; did you mean {folded[close[0]]!r}?" if close else "."
    given = f" ({OPTION})" if option is not None else ""
    raise error(f"unknown {what}{given} {value!r}{hint} Choose one of: {', '.join(sorted(map(str, names)))}",
                option=option)
