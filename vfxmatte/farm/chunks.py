"""A job's frame list and its chunks (pure: no pixels, no model).

``--chunk N/M`` is the Nth (1-based) of M contiguous pieces of the frame list, in list
order, whose sizes differ by at most one (the first ``len % M`` pieces hold one frame more):
the same list and M always give the same pieces, on any machine.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from vfxmatte.errors import FarmError

__all__ = ["Chunk", "chunk_frames", "farm_range", "parse_chunk", "split_frames"]


@dataclass(frozen=True)
class Chunk:
    """The ``index``-th (1-based) of ``count`` chunks."""

    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_chunk(text: str) -> Chunk:
    """``"N/M"`` -> :class:`Chunk` (1 <= N <= M).

    Raises:
        FarmError: not of the form N/M with whole numbers 1 <= N <= M.
    """
    n, sep, m = text.strip().partition("/")
    if not (sep and n.isdigit() and m.isdigit()) or not 1 <= int(n) <= int(m):
        raise FarmError(f"invalid chunk {text!r}: use N/M with 1 <= N <= M, e.g. 2/8")
    return Chunk(int(n), int(m))


def split_frames(frames: Sequence[int], count: int) -> list[list[int]]:
    """``frames`` cut into ``count`` contiguous pieces, sizes differing by at most one
    (pieces are empty only when there are fewer frames than pieces)."""
    if count < 1:
        raise FarmError(f"a shot is split into at least 1 chunk, got {count}")
    size, extra = divmod(len(frames), count)
    pieces, start = [], 0
    for i in range(count):
        end = start + size + (1 if i < extra else 0)
        pieces.append(list(frames[start:end]))
        start = end
    return pieces


def chunk_frames(frames: Sequence[int], chunk: Chunk) -> list[int]:
    """The frames of ``chunk`` (see :func:`split_frames`)."""
    return split_frames(frames, chunk.count)[chunk.index - 1]


def farm_range(frames: Sequence[int]) -> tuple[str, int] | None:
    """The farm frame range of ``frames`` and its step, when they are one arithmetic run
    (``1001-1100`` step 1, ``1001-1099x2`` step 2, a single frame step 1); else None.

    A farm task of such a range runs a contiguous slice of it from START to END, and
    ``START-ENDxSTEP`` names exactly that slice's frames. Other lists (gaps, any order) can
    only be given to a farm frame by frame.
    """
    if not frames:
        return None
    if len(frames) == 1:
        return f"{frames[0]}", 1
    step = frames[1] - frames[0]
    if step <= 0 or any(b - a != step for a, b in zip(frames, frames[1:])):
        return None
    text = f"{frames[0]}-{frames[-1]}" + (f"x{step}" if step > 1 else "")
    return text, step
