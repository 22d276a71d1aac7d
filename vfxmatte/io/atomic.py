"""Atomic file writes: a reader sees the old file or the complete new one, never a part.

Every file vfxmatte or its training package writes for later use (mattes and other images,
checkpoints, training states, data-set records) goes through :func:`atomic_write`:

1. the writer fills a hidden temporary sibling of the target, named uniquely per writer
   (process id and a random token), so two writers of one target never share a file;
2. the temporary file is flushed to disk (``fsync``);
3. it replaces the target in one ``os.replace`` (atomic on POSIX and Windows within a
   file system, which a sibling guarantees);
4. the directory is flushed too, so the rename itself survives a crash where the platform
   allows it.

On any failure the temporary file is removed and the target is left exactly as it was.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path
from typing import Iterator

from vfxmatte.errors import ImageWriteError, VfxMatteError

__all__ = ["atomic_write", "temp_path"]


def temp_path(target: Path) -> Path:
    """A hidden sibling of ``target``, unique to this writer, with the target's extension.

    The extension is kept (``.matte.1001.exr.<pid>.<token>.tmp.exr``) so writers that pick a
    format by suffix, and tools that look at one, treat the temporary file as the target.
    """
    return target.with_name(f".{target.name}.{os.getpid()}.{uuid.uuid4().hex[:12]}.tmp{target.suffix}")


def _fsync(path: Path) -> None:
    """Flush a closed file's data to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_directory(directory: Path) -> None:
    """Flush a directory entry change (a rename) to disk; a no-op where directories cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems refuse fsync on a directory: the file itself is complete
    finally:
        os.close(fd)


def _umasked(mode: int) -> int:
    umask = os.umask(0)
    os.umask(umask)
    return mode & ~umask


@contextlib.contextmanager
def atomic_write(
    target: str | os.PathLike[str],
    *,
    error: type[VfxMatteError] = ImageWriteError,
    what: str = "file",
    mode: int | None = None,
) -> Iterator[Path]:
    """Yield a temporary path to write; once the block ends it atomically replaces ``target``.

    The target's directory is created if needed. The block must leave a complete, closed
    file at the yielded path.

    Args:
        target: the file to write.
        error: the :class:`VfxMatteError` subclass raised on failure.
        what: what the file is, for the error message (``"image"``, ``"checkpoint"``).
        mode: permission bits given to the file before it replaces the target, masked by the
            process umask (``0o666`` makes it an ordinary data file); ``None`` keeps what the
            writer created.

    Raises:
        error: the block, the flush or the rename failed, naming ``target`` and the cause. A
            :class:`VfxMatteError` raised inside the block propagates unchanged (it already
            names its file); ``KeyboardInterrupt`` and ``SystemExit`` are re-raised after
            cleaning up. In every case the temporary file is gone and ``target`` is untouched.
    """
    path = Path(target)
    tmp = temp_path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        yield tmp
        if mode is not None:
            os.chmod(tmp, _umasked(mode))
        _fsync(tmp)
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(exc, VfxMatteError) or not isinstance(exc, Exception):
            raise
        raise error(f"{path}: cannot write {what} ({exc})") from exc
    _fsync_directory(path.parent)
