"""Safe output writing: never overwrite by accident, never leave a half-written file.

Writers produce a temporary file beside the target (same folder, same extension so that format
libraries choose the right encoder) and move it into place with :func:`os.replace`, which is
atomic on POSIX and Windows when both paths are on the same file system.
"""

from __future__ import annotations

import contextlib
import io
import os
import struct
import tempfile
import zlib
from collections.abc import Iterator
from pathlib import Path

from medfuse.errors import OPTION, OutputExistsError

__all__ = ["full_suffix", "check_output", "atomic_output", "GzipWriter", "DEFAULT_COMPRESS_LEVEL",
           "check_compress_level"]

#: gzip level of ``.nii.gz`` outputs when none is given (``medfuse fuse --compress-level``): 1, the fastest. Level 1
#: deflates with zlib's run-length strategy (``Z_RLE``): on the outputs of ``benchmarks/speed3d.py`` (a fused RGB
#: volume and a float32 PET) it took 0.6 s and 1.0 s of CPU for 23.6 and 66.9 MB, where zlib's own level 1 took
#: 0.8 s and 2.7 s for 23.0 and 67.4 MB and level 6 3.8 s and 3.5 s for 19 and 66 MB (``benchmarks/results/speed3d.md``);
#: levels 2-9 are zlib's
DEFAULT_COMPRESS_LEVEL = 1


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
        raise OutputExistsError(f"{path} exists already; overwrite it with {OPTION}", option="force")
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


def check_compress_level(level) -> int:
    """``level`` as an int in 0..9 (gzip levels: 0 stores, 1 fastest, 9 smallest), else ``OptionError``."""
    from medfuse.errors import OptionError

    try:
        value = int(level)
    except (TypeError, ValueError):
        value = -1
    if str(level).strip() != str(value) or not 0 <= value <= 9:
        raise OptionError(f"compression level {level!r}: give {OPTION} an integer from 0 (no compression) to 9 "
                          "(smallest files, slowest), or write an uncompressed .nii", option="compress_level")
    return value


class GzipWriter(io.RawIOBase):
    """A write-only binary file object producing one standard gzip member, compressed on threads.

    The data is cut into blocks of ``block`` bytes; each block is deflated on its own thread (zlib releases
    the GIL) with the previous 32 kB as its dictionary and ends on a byte boundary (``Z_SYNC_FLUSH``), so
    the blocks concatenate into one deflate stream, as ``pigz`` does: any gzip reader (nibabel, ITK,
    ``gzip -d``) reads the file, and the bytes do not depend on the number of threads. Level 1 uses zlib's
    run-length strategy (:data:`DEFAULT_COMPRESS_LEVEL`). The header
    holds no name and no time (the same input gives the same file).

    Args:
        path: the file to write (usually :func:`atomic_output`'s temporary path).
        level: gzip level 0..9.
        threads: compression threads (default: the CPUs this process may use, at most 4).
        block: bytes per block.
    """

    def __init__(self, path: str | os.PathLike, level: int = DEFAULT_COMPRESS_LEVEL, *, threads: int | None = None,
                 block: int = 1 << 22):
        from concurrent.futures import ThreadPoolExecutor

        self.level = check_compress_level(level)
        if threads is None:
            threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        self._threads = max(1, min(int(threads), 4))
        self._pool = ThreadPoolExecutor(self._threads) if self._threads > 1 else None
        self._block = int(block)
        self._fh = open(path, "wb")
        self._fh.write(b"\x1f\x8b\x08\x00" + struct.pack("<I", 0) + b"\x00\xff")  # no name, no mtime, OS unknown
        self._buf = bytearray()
        self._pending: list = []
        self._prev = b""
        self._crc = 0
        self._size = 0
        self._finished = False

    def writable(self) -> bool:
        return True

    def tell(self) -> int:
        """Bytes written so far (uncompressed): nibabel checks its offsets with it."""
        return self._size + len(self._buf)

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        """Only to where the stream is already (nibabel seeks to its current offsets); else ``io.UnsupportedOperation``."""
        target = offset if whence == 0 else self.tell() + offset if whence == 1 else None
        if target != self.tell():
            raise io.UnsupportedOperation("GzipWriter writes forward only")
        return target

    def _deflate(self, data: bytes, zdict: bytes) -> bytes:
        if self.level == 1:  # run-length matches only (see DEFAULT_COMPRESS_LEVEL): no dictionary to carry over
            comp = zlib.compressobj(1, zlib.DEFLATED, -zlib.MAX_WBITS, 9, zlib.Z_RLE)
        else:
            comp = zlib.compressobj(self.level, zlib.DEFLATED, -zlib.MAX_WBITS, 9, zlib.Z_DEFAULT_STRATEGY,
                                    **({"zdict": zdict} if zdict else {}))
        return comp.compress(data) + comp.flush(zlib.Z_SYNC_FLUSH)

    def _submit(self, data: bytes) -> None:
        self._crc = zlib.crc32(data, self._crc)
        self._size += len(data)
        zdict, self._prev = self._prev, data[-32768:]
        if self._pool is None:
            self._fh.write(self._deflate(data, zdict))
            return
        self._pending.append(self._pool.submit(self._deflate, data, zdict))
        while len(self._pending) > 2 * self._threads:  # bounded memory: write finished blocks in order
            self._fh.write(self._pending.pop(0).result())

    def write(self, data) -> int:
        view = memoryview(data).cast("B")
        n = len(view)
        if not self._buf and n >= self._block:  # large writes go straight to the blocks, no copy into the buffer
            full = n - n % self._block
            for start in range(0, full, self._block):
                self._submit(bytes(view[start : start + self._block]))
            view = view[full:]
        self._buf += view
        while len(self._buf) >= self._block:
            self._submit(bytes(self._buf[: self._block]))
            del self._buf[: self._block]
        return n

    def close(self) -> None:
        if self._finished:
            return
        self._finished = True
        try:
            if self._buf:
                self._submit(bytes(self._buf))
                self._buf = bytearray()
            for future in self._pending:
                self._fh.write(future.result())
            self._pending = []
            self._fh.write(b"\x03\x00")  # an empty final block ends the deflate stream
            self._fh.write(struct.pack("<II", self._crc & 0xFFFFFFFF, self._size & 0xFFFFFFFF))
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True, cancel_futures=True)
            self._fh.close()
            super().close()
