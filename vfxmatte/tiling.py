"""Tiling plans: which windows of a frame the network runs on, and how they are blended.

Pure numpy, free of torch, so the job schema can read the defaults without loading the
network. The frame, padded by reflection to the network's stride (as untiled inference pads
it), is covered by a grid of overlapping tiles whose origins are multiples of the stride; only
tiles whose contributing area touches the trimap's unknown band need computing. Tiles are
blended with weights that are zero in a dead margin at each inner tile edge and grow with the
distance from it, so there are no seams and each pixel is dominated by the tile that sees it
with the most context.

``stride`` is always the network's (:attr:`vfxmatte.model.TCPMatting.stride`): the caller
passes it, so these plans hold for any network.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from vfxmatte.errors import InputError

__all__ = [
    "DEFAULT_OVERLAP",
    "DEFAULT_TILE",
    "Tile",
    "axis_layout",
    "axis_weight",
    "crop_tile",
    "padded_size",
    "plan_tiles",
    "tile_weight",
    "tiles_needing_inference",
]

#: Default largest tile edge (pixels): a multiple of the network stride (32) that keeps a
#: 2160-line (4K) frame at two rows of tiles with the default overlap. Memory per tile bounds
#: it from above.
DEFAULT_TILE = 1408
#: Default least overlap between neighbouring tiles (pixels): enough context that tiled and
#: untiled inference agree inside the unknown band within the bounds the tests pin
#: (tests/test_engine.py); the seam measurements are in benchmarks/RESULTS.md.
DEFAULT_OVERLAP = 512


@dataclass(frozen=True)
class Tile:
    """A window of the stride-padded frame: top-left ``(y, x)``, size ``h`` x ``w`` pixels."""

    y: int
    x: int
    h: int
    w: int


def axis_layout(length: int, tile: int, overlap: int, align: int) -> tuple[int, list[int]]:
    """Tile size and start offsets along one axis.

    ``tile`` is the largest tile allowed (memory): the axis gets the fewest tiles of at most that
    size whose neighbours overlap by at least ``overlap``, and the tiles are then shrunk to the
    smallest size that still keeps that overlap, so the network does not recompute pixels for
    nothing. Every start is a multiple of ``align`` (the network's stride): the network is not
    shift-equivariant for shifts that are not multiples of its stride, so an unaligned tile
    would see a differently sampled feature grid and disagree with untiled inference
    everywhere, not just near its edges. ``length`` and ``tile`` are multiples of ``align``
    (the frame is padded to the stride first).
    """
    if length <= tile:
        return length, [0]
    n = max(math.ceil((length - overlap) / (tile - overlap)), 2)
    while True:
        size = min(tile, -(-(length + (n - 1) * overlap) // (n * align)) * align)
        while size <= tile:
            starts = [int(round(i * (length - size) / (n - 1) / align)) * align for i in range(n)]
            if all(b - a <= size - overlap for a, b in zip(starts, starts[1:])):
                return size, starts
            size += align
        n += 1


def axis_weight(start: int, size: int, length: int, overlap: int) -> np.ndarray:
    """1-D blending weight of a tile: zero in a dead margin at inner edges, then growing.

    The weight is ``max(d - margin, 0)^2`` where ``d`` is the distance to the nearest *inner*
    tile edge (edges on the frame border do not count: no neighbour covers them) and
    ``margin = overlap // 4``. Where tiles overlap by more than ``overlap`` (the grid spreads
    tiles evenly), a pixel is dominated by the tile that sees it from deepest inside, i.e. with
    the most context around it: the network's receptive field spans hundreds of pixels, so a
    plain cross-fade near each tile's own edge lets edge-starved predictions through.
    """
    i = np.arange(size, dtype=np.float64) + 0.5
    d = np.full(size, np.inf)
    if start > 0:
        d = np.minimum(d, i)
    if start + size < length:
        d = np.minimum(d, size - i)
    if not np.isfinite(d).all():
        return np.ones(size, dtype=np.float32)
    margin = overlap // 4
    w = np.maximum(d - margin, 0.0) / size
    return (w * w).astype(np.float32)


def padded_size(length: int, stride: int) -> int:
    """``length`` rounded up to a multiple of the network stride."""
    return -(-length // stride) * stride


def plan_tiles(height: int, width: int, tile: int, overlap: int, stride: int) -> list[Tile]:
    """All tiles of the grid covering a frame padded to the stride.

    ``height`` and ``width`` are the frame's own size; tiles are laid over the frame padded to
    a multiple of ``stride`` (reflection padding, as untiled inference pads), so a tile may
    reach up to ``stride - 1`` pixels past the bottom or right edge. ``tile = 0`` means one
    tile. All tiles have one size, so they batch.

    Raises:
        InputError: ``tile`` is not a multiple of ``stride``, or ``overlap`` is outside
            ``[0, tile / 2)``.
    """
    hp, wp = padded_size(height, stride), padded_size(width, stride)
    if tile <= 0:
        return [Tile(0, 0, hp, wp)]
    if tile % stride:
        raise InputError(f"tile_size must be a multiple of {stride} (the network stride), got {tile}")
    if overlap < 0 or overlap >= tile // 2:
        raise InputError(f"overlap must be in [0, tile_size/2), got {overlap} for tile_size {tile}")
    if tile - overlap < stride:
        # Starts are multiples of the stride, so neighbours are at least a stride apart: no
        # layout keeps that overlap (axis_layout would search for ever).
        raise InputError(f"overlap {overlap} leaves tiles of {tile} no step of {stride} (the network stride) "
                         f"between them; overlap must be at most tile_size - {stride}")
    th, ys = axis_layout(hp, tile, overlap, stride)
    tw, xs = axis_layout(wp, tile, overlap, stride)
    return [Tile(y, x, th, tw) for y in ys for x in xs]


def _reflect_indices(start: int, size: int, length: int) -> np.ndarray | slice:
    """Indices of ``start .. start+size`` into an axis of ``length``, reflected past the end."""
    if start + size <= length:
        return slice(start, start + size)
    i = np.arange(start, start + size)
    i = np.where(i >= length, 2 * (length - 1) - i, i)  # numpy/torch 'reflect' padding
    return np.clip(i, 0, length - 1)  # 'edge' where the frame is shorter than the padding


def crop_tile(array: np.ndarray, t: Tile) -> np.ndarray:
    """The tile's window of a frame-sized array, reflection-padded past the bottom/right edge."""
    iy = _reflect_indices(t.y, t.h, array.shape[0])
    ix = _reflect_indices(t.x, t.w, array.shape[1])
    if isinstance(iy, slice) and isinstance(ix, slice):
        return array[iy, ix]
    iy = np.arange(array.shape[0])[iy] if isinstance(iy, slice) else iy
    ix = np.arange(array.shape[1])[ix] if isinstance(ix, slice) else ix
    return array[np.ix_(iy, ix)]


def tile_weight(t: Tile, height: int, width: int, overlap: int) -> np.ndarray:
    """[h, w] blending weight of a tile within the (padded) frame of ``height`` x ``width``."""
    wy = axis_weight(t.y, t.h, height, overlap)
    wx = axis_weight(t.x, t.w, width, overlap)
    return wy[:, None] * wx[None, :]


def tiles_needing_inference(tiles: Sequence[Tile], unknown: np.ndarray, overlap: int, stride: int) -> list[Tile]:
    """Tiles whose positive-weight area holds at least one unknown pixel.

    Every unknown pixel gets positive weight from at least one tile of the full grid, and that
    tile then holds an unknown pixel in its positive-weight area, so the selection covers the
    whole unknown band.
    """
    h, w = unknown.shape
    hp, wp = padded_size(h, stride), padded_size(w, stride)
    keep = []
    for t in tiles:
        sub = unknown[t.y : t.y + t.h, t.x : t.x + t.w]  # the part inside the frame
        if not sub.any():
            continue
        wt = tile_weight(t, hp, wp, overlap)[: sub.shape[0], : sub.shape[1]]
        if (sub & (wt > 0)).any():
            keep.append(t)
    return keep
