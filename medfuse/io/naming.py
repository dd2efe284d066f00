"""How messages and log lines name an input without leaking what its path says.

Folder and file names of medical exports often hold identifiers (``Doe^John_1957/``,
``ADNI_941_S_1194_...``, accession numbers), so they count as patient identifiers
(``shared/reference/bad-inputs.md`` section 5: canaries go "into the input paths of the fixtures" and must
appear in no log, message or output). The rule medfuse follows:

- **Log lines never contain a path.** They name an input by its role when one is set (see below), else by
  ``input <8 hex digits>``: the first digits of the SHA-256 of the path as given (stable within a run, not
  reversible). :func:`log_name` builds it.
- **Through the pipeline, the command line and batch runs, messages name an input by its role**, e.g.
  ``the moving scan (--moving)``: :func:`medfuse.pipeline.load_inputs` reads each input inside
  :func:`input_label`, and every error raised while it is active is passed through :func:`redact`, which
  replaces each spelling of the path (as given, absolute, resolved) by the role. The user still knows
  which file is meant: the one they passed with that flag. A file inside a DICOM folder is then named by
  the folder's role and an opaque id (never its file name); text read from the files (SeriesDescription)
  is left out of the messages (:func:`private`).
- **The MONAI doors** (transforms and bundles) read each input inside :func:`read_as` with its key's role
  (``the moving scan (--moving)``, the bundle's own flag) and keep that role, never the path, as the name the
  later steps log it by (:func:`medfuse.transforms.to_volume`).
- **The Python API** (``load_volume(path)`` called directly, with no role set) names the path the caller
  passed in its error messages, as Python's own ``open`` does: the caller holds the path already, and
  nothing is written anywhere. Log lines still follow the first rule: they name a volume by
  :func:`source_name`.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator
from contextvars import ContextVar
from pathlib import Path

from medfuse.io.formats import FORMATS

__all__ = ["input_label", "read_as", "redact", "log_name", "describe", "private", "opaque_path", "source_name"]

#: (spellings of the path, longest first; label) for each input being read
_LABELS: ContextVar[tuple[tuple[tuple[str, ...], str], ...]] = ContextVar("medfuse_input_labels", default=())


def opaque_path(path: str | os.PathLike) -> str:
    """First 8 hex digits of the SHA-256 of ``path`` as given: a stable, non-reversible name."""
    return hashlib.sha256(os.fsencode(str(path))).hexdigest()[:8]


def _spellings(path: str | os.PathLike) -> tuple[str, ...]:
    p = Path(path)
    forms = {str(path), str(p), os.path.abspath(p)}
    with contextlib.suppress(OSError, RuntimeError):
        forms.add(str(p.resolve()))
    forms = {f.rstrip("/\\") or f for f in forms if f and f not in (".", "/")}
    return tuple(sorted(forms, key=len, reverse=True))


@contextlib.contextmanager
def input_label(path: str | os.PathLike, label: str) -> Iterator[None]:
    """While active, :func:`redact`, :func:`describe` and :func:`log_name` name ``path`` (and anything inside
    it) ``label``, e.g. ``"the moving scan (--moving)"``."""
    token = _LABELS.set(_LABELS.get() + ((_spellings(path), label),))
    try:
        yield
    finally:
        _LABELS.reset(token)


def private() -> bool:
    """True while an input is read under a role (pipeline, CLI, batch): messages then hold no file text."""
    return bool(_LABELS.get())


def _match(path: str | os.PathLike) -> tuple[str, str] | None:
    """``(label, rest)`` when ``path`` is a labelled input or inside one; ``rest`` is the relative part."""
    text = str(path)
    absolute = os.path.abspath(text)
    for forms, label in reversed(_LABELS.get()):
        for form in forms:
            for candidate in (text, absolute):
                if candidate == form:
                    return label, ""
                if candidate.startswith(form + os.sep) or candidate.startswith(form + "/"):
                    return label, candidate[len(form) + 1:]
    return None


def describe(path: str | os.PathLike) -> str:
    """How a message names ``path``: its role (plus an opaque id for a file inside a labelled folder) when
    one is set, else the path as given."""
    found = _match(path)
    if found is None:
        return str(path)
    label, rest = found
    return f"{label} (one of its files, id {opaque_path(rest)})" if rest else label


def log_name(path: str | os.PathLike) -> str:
    """How a log line names ``path``: its role when set, else ``input <opaque id>``; never the path."""
    found = _match(path)
    if found is None:
        return f"input {opaque_path(path)}"
    label, rest = found
    return f"{label} (one of its files, id {opaque_path(rest)})" if rest else label


@contextlib.contextmanager
def read_as(path: str | os.PathLike, label: str, role: str | None = None) -> Iterator[None]:
    """Read ``path`` as ``label`` (e.g. ``"the moving scan"``): inside, log lines name it by the label
    (:func:`input_label`), and an error raised inside is re-raised with every spelling of the path replaced by
    the label (:func:`redact`), same type, one line. A medfuse error keeps its ``option`` (its message still
    names it as :data:`medfuse.errors.OPTION`, for the door to word) and gets ``role``, when given."""
    from medfuse.errors import MedfuseError

    with input_label(path, label):
        try:
            yield
        except MedfuseError as err:
            if role is not None:
                err.role = role
            message = err.args[0] if err.args and isinstance(err.args[0], str) else None
            text = None if message is None else redact(message)
            if text is None or text == message:
                raise
            raise type(err)(text, role=err.role, option=err.option) from None  # the original text names the path
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError) as err:
            text = redact(str(err))
            if text == str(err):
                raise
            raise type(err)(text) from None


def source_name(source: str | os.PathLike | None) -> str:
    """How a log line names a volume from its ``source``: a role label set by a door (``the moving scan
    (--moving)``, ``phantom:mri``) as it is; a path (one that exists, or any text with a path separator or a
    file suffix) by :func:`log_name`; nothing by ``"image"``."""
    if not source:
        return "image"
    text = str(source)
    if _match(text) is not None or os.sep in text or "/" in text or "\\" in text or os.path.exists(text) \
            or Path(text).suffix.lower() in _FILE_SUFFIXES:
        return log_name(text)
    return text


#: suffixes that make a bare ``source`` a file name (which may be an identifier), not a label
_FILE_SUFFIXES = {"." + suffix.rsplit(".", 1)[-1] for suffixes in FORMATS.values() for suffix in suffixes}


def redact(text: str) -> str:
    """``text`` with every spelling of each labelled input's path replaced by its label.

    A path followed by more path components (a file inside a labelled folder) loses them too: they are
    file names, which may be identifiers.
    """
    import re

    for forms, label in reversed(_LABELS.get()):
        for form in forms:
            if form and form in text:
                pattern = re.escape(form) + r"(?:[/\\][^\s:;,'\"()]*)?"
                text = re.sub(pattern, lambda m: label, text)
    return text
