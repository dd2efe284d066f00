"""Safe output writing: never overwrite by accident, never leave a half-written file.

Writers produce a temporary file beside the target (same folder, same extension so that format
libraries choose the right encoder) and move it into place with :func:`os.replace`, which is
atomic on POSIX and Windows when both paths are on the same file system.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from medfuse.errors import OutputExistsError

__all__ = ["full_suffix", "check_output", "atomic_output"]


def full_suffix(path: str | os.PathLike) -> str:
    """The extension including compression, lower-case: ``.nii.gz``, ``.nrrd``, ``.png``."""
    name = Path(path).name.lower()
    for double in (".nii.gz", ".tar.gz"):
        if name.endswith(double):
            return double
    return Path(name).suffix


def check_output(path: str | os.PathLike, force: bool = False) -> Path:
    """Raise :class:`OutputExistsError` if ``path`` exists and ``force`` is false; return it as a Path."""
    path = Path(path)
    if path.exists() and not force:
        raise OutputExistsError(f"{path} exists already; pass --force to overwrite it")
    if path.is_dir():
        raise OutputExistsError(f"{path} is a directory; give a file name such as {path / 'fused.nii.gz'}")
    return path


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, force: bool = False) -> Iterator[Path]:
    """Yield a temporary path to write to; on success it replaces ``path`` atomically.

    Args:
        path: the final output file. Its parent folders are created.
        force: allow replacing an existing file.

    Raises:
        OutputExistsError: ``path`` exists and ``force`` is false.
    """
    path = check_output(path, force)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".part{full_suffix(path)}", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp_path, 0o666 & ~umask)  # mkstemp makes 0600; outputs get the usual permissions
    try:
        yield tmp_path
        if not force and path.exists():  # appeared while we were writing
            raise OutputExistsError(f"{path} was created by someone else while medfuse was writing it")
        os.replace(tmp_path, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
