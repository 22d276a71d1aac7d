"""Frame sequences on disk: patterns, frame ranges and missing-frame policies.

Parsing of patterns and ranges is delegated to ``fileseq``. Padding follows the compositing
convention (Nuke, Houdini), not fileseq's default: one ``#`` or ``@`` per digit, so
``shot.####.exr``, ``shot.@@@@.exr``, ``shot.%04d.exr`` and ``shot.$F4.exr`` all mean four
digits. A pattern may carry its own range (``shot.1001-1100#.exr``).
"""

from __future__ import annotations

import bisect
import errno
import itertools
import os
import re
import stat
from pathlib import Path
from typing import Iterable, Iterator, Literal

import fileseq

from vfxmatte.errors import SequenceError

__all__ = [
    "FrameRanges",
    "FrameSequence",
    "MissingPolicy",
    "format_frames",
    "format_runs",
    "nearest_frame",
    "not_a_file",
    "parse_frame_range",
    "parse_frames",
    "resolve_frames",
]

MissingPolicy = Literal["error", "skip", "hold"]
_POLICIES = ("error", "skip", "hold")

# One '#' per digit, as Nuke and the farm tools write it (fileseq's default is 4 digits per '#').
_PAD_STYLE = fileseq.PAD_STYLE_HASH1


def parse_frame_range(text: str) -> list[int]:
    """Parse a frame range such as ``1001-1100``, ``1001-1100x2`` or ``1001,1010-1020``.

    Frames are returned in the order written, without duplicates (:func:`parse_frames` as a list).

    Raises:
        SequenceError: the text is empty, unparsable or names sub-frames.
    """
    return list(parse_frames(text))


# A part fileseq expands to an arithmetic run: N, N-M or N-MxS (no y/: forms, no sub-frames).
_ARITHMETIC_PART = re.compile(r"^-?\d+(?:--?\d+(?:x-?\d+)?)?$")


def parse_frames(text: str) -> "FrameRanges":
    """Parse a frame range as :func:`parse_frame_range` does, into :class:`FrameRanges`: the
    frames in the order written, without duplicates, held as runs, so ``1001-3001000`` costs
    no more than ``1001-1100``. The syntax is fileseq's, one comma-separated part at a time.

    Raises:
        SequenceError: the text is empty, unparsable or names sub-frames.
    """
    if not isinstance(text, str) or not text.strip():
        raise SequenceError(f"empty frame range {text!r}")
    runs: list[range | tuple[int, ...]] = []
    try:
        for part in (p.strip() for p in text.strip().split(",")):
            frames = fileseq.FrameSet(part)  # lazy: its length and ends, no expansion
            n = len(frames)
            if n and _ARITHMETIC_PART.match(part):
                first, last = int(frames.frame(0)), int(frames.frame(n - 1))
                step = 1 if n == 1 else (last - first) // (n - 1)
                run = range(first, last + (1 if step > 0 else -1), step)
                if len(run) != n:  # pragma: no cover - fileseq changed its expansion
                    raise ValueError(part)
                runs.append(run)
            elif n:
                listed = list(frames)
                if any(int(f) != f for f in listed):
                    raise SequenceError(f"frame range {text!r} names sub-frames; only whole frames are supported")
                runs.append(tuple(int(f) for f in listed))
    except (fileseq.ParseException, ValueError, TypeError) as exc:
        raise SequenceError(
            f"invalid frame range {text!r}: expected forms like 1001-1100, 1001-1100x2 or 1001,1010-1020"
        ) from exc
    ranges = FrameRanges(runs)
    if not ranges:
        raise SequenceError(f"frame range {text!r} holds no frames")
    return ranges


def _compress(frames: Iterable[int]) -> list[range]:
    """Frames in order as the fewest arithmetic runs, each run as long as it goes."""
    runs: list[range] = []
    start = prev = step = None
    for f in frames:
        if start is None:
            start = prev = f
        elif step is None and f != prev:
            step, prev = f - prev, f
        elif step is not None and f - prev == step:
            prev = f
        else:
            runs.append(range(start, prev + (1 if step is None or step > 0 else -1), step or 1))
            start, prev, step = f, f, None
    if start is not None:
        runs.append(range(start, prev + (1 if step is None or step > 0 else -1), step or 1))
    return runs


def _run_text(run: range) -> str:
    first, last = run[0], run[-1]
    if len(run) == 1:
        return str(first)
    return f"{first}-{last}" if abs(run.step) == 1 else f"{first}-{last}x{abs(run.step)}"


class FrameRanges:
    """Frames in a fixed order, without duplicates, held as arithmetic runs (``range`` s):
    iterating, counting and testing membership never build a per-frame list.

    Args:
        runs: the frames in order, as ranges or other sequences of ints; a frame already in
            an earlier run is dropped (only runs whose bounds overlap an earlier run's are
            expanded to drop it).
    """

    def __init__(self, runs: Iterable[Iterable[int]] = ()) -> None:
        kept: list[range] = []
        for run in runs:
            run = run if isinstance(run, range) else _compress(int(f) for f in run)
            for r in [run] if isinstance(run, range) else run:
                if not r:
                    continue
                lo, hi = min(r[0], r[-1]), max(r[0], r[-1])
                if any(min(k[0], k[-1]) <= hi and lo <= max(k[0], k[-1]) for k in kept):
                    kept.extend(_compress(f for f in r if not any(f in k for k in kept)))
                else:
                    kept.append(r)
        self._runs = tuple(kept)

    @classmethod
    def of(cls, frames: "Iterable[int] | FrameRanges") -> "FrameRanges":
        """``frames`` as FrameRanges (already one: itself)."""
        return frames if isinstance(frames, FrameRanges) else cls([list(frames)])

    @property
    def runs(self) -> tuple[range, ...]:
        """The runs, in order; no frame is in two of them."""
        return self._runs

    def __len__(self) -> int:
        return sum(len(r) for r in self._runs)

    def __bool__(self) -> bool:
        return bool(self._runs)

    def __iter__(self) -> Iterator[int]:
        return itertools.chain.from_iterable(self._runs)

    def __contains__(self, frame: object) -> bool:
        return any(frame in r for r in self._runs)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FrameRanges) and self._runs == other._runs

    def __repr__(self) -> str:
        return f"FrameRanges({str(self)!r})"

    def __str__(self) -> str:
        return format_runs(self._runs)


def format_runs(runs: Iterable[range], limit: int | None = None) -> str:
    """Runs of frames as a frame range in the order given (``1001-1500,1600-1700x2,1800``);
    with ``limit``, at most that many runs and then how many more there are."""
    runs = list(runs)
    shown = runs if limit is None or len(runs) <= limit else runs[:limit]
    text = ",".join(_run_text(r) for r in shown)
    return text if len(shown) == len(runs) else f"{text} and {len(runs) - len(shown)} more runs"


def format_frames(frames: Iterable[int]) -> str:
    """Compact text for a set of frames, e.g. ``1003-1005,1010`` (sorted, de-duplicated)."""
    return str(fileseq.FrameSet(sorted(set(int(f) for f in frames))))


# Frames whose names, in any padding, have every digit count from 1 to 11 (see overlaps).
_PROBES = (-1, 0, 1, 7, 1001, *(10**k for k in range(1, 11)), *(10**k - 1 for k in range(2, 11)))


class FrameSequence:
    """A numbered image sequence: a pattern with one frame token and the frames of interest.

    Args:
        pattern: ``/plates/shot.####.exr``, ``shot.%04d.exr``, ``shot.@@@@.exr`` or
            ``shot.$F4.exr``; may embed a range (``shot.1001-1100#.exr``).
        frames: the frames of interest. ``None`` takes the range embedded in the pattern,
            or else every frame found on disk (looked up once, on first use of ``frames``).

    Raises:
        SequenceError: the pattern has no frame token or cannot be parsed.
    """

    def __init__(self, pattern: str | Path, frames: list[int] | None = None) -> None:
        self.pattern = str(pattern)
        try:
            self._seq = fileseq.FileSequence(self.pattern, pad_style=_PAD_STYLE)
        except (fileseq.ParseException, fileseq.FileSeqException, ValueError) as exc:
            raise SequenceError(f"cannot parse sequence pattern {self.pattern!r}: {exc}") from exc
        token = self._seq.padding()
        if not token or token not in Path(self.pattern).name:
            raise SequenceError(
                f"sequence pattern {self.pattern!r} has no frame token "
                "(use ####, %04d, @@@@ or $F4)"
            )
        self._pad = self._seq.zfill()
        self._dir = Path(self._seq.dirname() or ".")
        self._basename = self._seq.basename()
        self._ext = self._seq.extension()
        if frames is not None:
            self._frames: list[int] | None = [int(f) for f in frames]
        elif self._seq.frameSet() is not None:
            self._frames = [int(f) for f in self._seq.frameSet()]
        else:
            self._frames = None

    def __repr__(self) -> str:
        return f"FrameSequence({self.pattern!r})"

    @property
    def padding(self) -> int:
        """Minimum number of digits in a frame number."""
        return self._pad

    @property
    def frames(self) -> list[int]:
        """The frames of interest (explicit, embedded in the pattern, or found on disk)."""
        if self._frames is None:
            self._frames = self.discover()
        return list(self._frames)

    def path(self, frame: int) -> Path:
        """The file of ``frame``, zero-padded to the pattern's width."""
        return Path(self._seq.frame(int(frame)))

    def discover(self) -> list[int]:
        """Frames of this pattern that exist on disk, sorted.

        A file counts only if its frame number is written with exactly this pattern's padding
        (``shot.01001.exr`` is not frame 1001 of ``shot.####.exr``); numbers longer than the
        padding count when they carry no leading zeros (frame 10000 of ``####``).
        """
        return self.scan()[0]

    def scan(self) -> tuple[list[int], dict[int, str]]:
        """One listing of the folder: the frames on disk as regular files (as
        :meth:`discover`), and the frames whose name is there but is no regular file, each
        with what it is instead (:func:`not_a_file`: a directory, a FIFO, a symlink loop ...).

        Raises:
            SequenceError: the folder cannot be listed.
        """
        try:
            entries = list(os.scandir(self._dir))
        except FileNotFoundError:
            return [], {}
        except OSError as exc:
            raise SequenceError(f"cannot list {self._dir} for {self.pattern}: {exc}") from exc
        found: set[int] = set()
        odd: dict[int, str] = {}
        for entry in entries:
            frame = self.frame_of(entry.name)
            if frame is None:
                continue
            try:
                regular = entry.is_file()
            except OSError:  # a symlink loop, or a name too long to follow
                regular = False
            if regular:
                found.add(frame)
            else:
                odd[frame] = not_a_file(entry.path) or "not a regular file"
        return sorted(found), odd

    def linked_files(self) -> list[Path]:
        """The real files behind this sequence's frames on disk that are symlinks, sorted (one
        folder listing; a frame whose link loops or dangles resolves as far as it can)."""
        try:
            entries = list(os.scandir(self._dir))
        except OSError:
            return []
        return sorted(
            Path(os.path.realpath(e.path)) for e in entries if e.is_symlink() and self.frame_of(e.name) is not None
        )

    def frame_of(self, name: str) -> int | None:
        """The frame whose file, in this pattern's folder, is called ``name``; None when no
        frame of this pattern has that name.

        Strict padding: the name must be exactly the one :meth:`path` gives the frame
        (``shot.01001.exr`` is no frame of ``shot.####.exr``, ``shot.10000.exr`` is frame 10000).
        """
        prefix, suffix = self._basename, self._ext
        if len(name) <= len(prefix) + len(suffix) or not (name.startswith(prefix) and name.endswith(suffix)):
            return None
        digits = name[len(prefix) : len(name) - len(suffix)]
        body = digits[1:] if digits.startswith("-") else digits
        if not (body.isascii() and body.isdigit()):
            return None
        frame = int(digits)
        return frame if self.path(frame).name == name else None

    def overlaps(self, other: "FrameSequence | str | os.PathLike[str]") -> bool:
        """True if a file of this sequence can be a file of ``other`` (a sequence, or one file).

        Folders are compared as real paths (symlinks, ``..`` and relative spellings resolved,
        folders that do not exist yet resolved as far as they exist); file names by what each
        pattern's frames are called, so ``####``, ``%04d``, ``@@@@`` and ``$F4`` spellings of
        one pattern overlap, and so do patterns that differ only in padding (frame 10000 of
        ``####`` is frame 10000 of ``#####``).
        """
        if isinstance(other, FrameSequence):
            if os.path.realpath(self._dir) != os.path.realpath(other._dir):
                return False
            # A shared file name has frame numbers with some number of digits in each pattern;
            # the probes give every digit count up to 11, with and without leading zeros.
            return any(other.frame_of(self.path(f).name) is not None for f in _PROBES) or any(
                self.frame_of(other.path(f).name) is not None for f in _PROBES
            )
        file = Path(other)
        if os.path.realpath(self._dir) != os.path.realpath(file.parent):
            return False
        return self.frame_of(file.name) is not None

    def missing(self, frames: Iterable[int] | None = None) -> list[int]:
        """Frames among ``frames`` (default: :attr:`frames`) whose file does not exist, sorted."""
        wanted = self.frames if frames is None else [int(f) for f in frames]
        on_disk = set(self.discover())
        return sorted({f for f in wanted if f not in on_disk})


def not_a_file(path: str | os.PathLike[str]) -> str | None:
    """What stands where a frame's file should be, when it is not a regular file: ``"missing"``,
    ``"a directory"``, ``"a FIFO"``, ``"a symlink loop"``, ``"a broken symlink"`` ...; None
    for a regular file (or a link to one). One ``stat``, never an open (a FIFO would block)."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "a broken symlink" if os.path.islink(path) else "missing"
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "a symlink loop"
        return f"not readable ({exc.strerror or exc})"
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def resolve_frames(
    seq: FrameSequence,
    frames: Iterable[int] | None = None,
    policy: MissingPolicy = "error",
) -> list[tuple[int, Path]]:
    """For each requested frame, the file to read under a missing-frame policy.

    Args:
        seq: the sequence.
        frames: the frames to process (default: ``seq.frames``), in processing order.
        policy: ``"error"`` raises on any missing frame; ``"skip"`` drops missing frames;
            ``"hold"`` reads the nearest existing frame instead (ties go to the earlier one).

    Returns:
        ``(frame, path)`` pairs; under ``"hold"`` the path may belong to another frame.

    Raises:
        SequenceError: bad policy, no frames requested, missing frames under ``"error"``, or
            nothing to read at all.
    """
    if policy not in _POLICIES:
        raise SequenceError(f"unknown missing-frame policy {policy!r} for {seq.pattern} (use one of {', '.join(_POLICIES)})")
    wanted = seq.frames if frames is None else [int(f) for f in frames]
    if not wanted:
        raise SequenceError(f"no frames requested from {seq.pattern}")
    existing = seq.discover()
    if not existing:
        raise SequenceError(f"no frames of {seq.pattern} exist on disk (requested {format_frames(wanted)})")
    on_disk = set(existing)
    missing = sorted({f for f in wanted if f not in on_disk})
    if missing and policy == "error":
        raise SequenceError(f"missing frames {format_frames(missing)} of {seq.pattern}")
    if policy == "skip":
        kept = [(f, seq.path(f)) for f in wanted if f in on_disk]
        if not kept:
            raise SequenceError(f"none of frames {format_frames(wanted)} of {seq.pattern} exist on disk")
        return kept
    return [(f, seq.path(f if f in on_disk else nearest_frame(existing, f))) for f in wanted]


def nearest_frame(existing: list[int], frame: int) -> int:
    """The element of sorted ``existing`` nearest to ``frame``; ties go to the earlier frame."""
    i = bisect.bisect_left(existing, frame)
    if i == 0:
        return existing[0]
    if i == len(existing):
        return existing[-1]
    before, after = existing[i - 1], existing[i]
    return before if frame - before <= after - frame else after
