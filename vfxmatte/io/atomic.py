"""Atomic file writes: a reader sees the old file or the complete new one, never a part.

Every file vfxmatte or its training package writes for later use (mattes and other images,
checkpoints, training states, data-set records) goes through :func:`atomic_write`:

1. the writer fills a hidden temporary sibling of the target, named uniquely per writer
   (process id, host and a random token), so two writers of one target never share a file;
2. the temporary file is flushed to disk (``fsync``);
3. it replaces the target in one ``os.replace`` (atomic on POSIX and Windows within a
   file system, which a sibling guarantees);
4. the directory is flushed too, so the rename itself survives a crash where the platform
   allows it.

On any failure the temporary file is removed and the target is left exactly as it was. A
writer killed outright (``kill -9``, a farm node lost) leaves its temporary file behind:
:func:`temp_files` finds such files by their name and :func:`sweep_temps` removes those whose
writer is gone (a dead process on this host, or a file untouched for :data:`STALE_SECONDS`).
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import time
import uuid
from pathlib import Path
from typing import Iterable, Iterator

from vfxmatte.errors import ImageWriteError, VfxMatteError

__all__ = ["STALE_SECONDS", "atomic_write", "sweep_temps", "temp_files", "temp_path"]


#: A temporary file untouched this long is a dead writer's, whatever host wrote it: a write
#: is seconds of work, and a live writer's file changes as it goes.
STALE_SECONDS = 3600.0

# The host part of temporary names: letters, digits and '-' only, so names split unambiguously.
_HOST = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:63] or "host"
# ".<target name>.<pid>@<host>.<12 hex>.tmp<target suffix>" (the pid-only form of earlier releases too)
_TEMP = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)(?:@(?P<host>[A-Za-z0-9-]+))?\.(?P<token>[0-9a-f]{12})\.tmp(?P<suffix>.*)$")


def temp_path(target: Path) -> Path:
    """A hidden sibling of ``target``, unique to this writer, with the target's extension.

    The extension is kept (``.matte.1001.exr.<pid>@<host>.<token>.tmp.exr``) so writers that
    pick a format by suffix, and tools that look at one, treat the temporary file as the target.
    """
    token = uuid.uuid4().hex[:12]
    return target.with_name(f".{target.name}.{os.getpid()}@{_HOST}.{token}.tmp{target.suffix}")


def _parse_temp(name: str) -> re.Match[str] | None:
    m = _TEMP.match(name)
    if m is None or m["suffix"] != Path(m["name"]).suffix:
        return None
    return m


def temp_files(folder: str | os.PathLike[str]) -> dict[str, list[Path]]:
    """The temporary files :func:`atomic_write` writers left in ``folder`` (one listing), by
    the name of the target each was writing. Only names of that exact form count."""
    found: dict[str, list[Path]] = {}
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return found
    for entry in entries:
        m = _parse_temp(entry.name) if entry.name.startswith(".") else None
        if m is not None:
            found.setdefault(m["name"], []).append(Path(entry.path))
    return found


def _writer_gone(m: re.Match[str], path: Path) -> bool:
    if m["host"] == _HOST:
        try:
            os.kill(int(m["pid"]), 0)
        except ProcessLookupError:
            return True  # the process that wrote it has ended without renaming it
        except (PermissionError, OverflowError):
            pass  # alive (another user's), or not a pid of this system
    try:
        return time.time() - path.lstat().st_mtime > STALE_SECONDS
    except OSError:
        return False


def sweep_temps(temps: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Remove those of ``temps`` (from :func:`temp_files`) whose writer is gone: written on
    this host by a process that no longer runs, or untouched for :data:`STALE_SECONDS` (a
    writer on another host). A live writer's file is left alone.

    Returns:
        The files removed.
    """
    removed = []
    for p in map(Path, temps):
        m = _parse_temp(p.name)
        if m is not None and _writer_gone(m, p):
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
                removed.append(p)
    return removed


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
