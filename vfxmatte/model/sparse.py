"""Block-sparse inference: the full- and half-resolution layers run only near the unknown band.

The engine keeps the trimap's known pixels, so the network's output matters only inside the
unknown band. Most of the cost, however, sits in the layers at full resolution (the Textural
Compensate Path, paper §3.2) and at half resolution (the Semantic Path's last decoder stage
and head, §3.1), which dense inference runs over the whole frame. Those layers are local: a
chain of 3x3 convolutions, so an output pixel depends only on input pixels within the chain's
*reach* (one pixel per conv). This module runs each of them on the square blocks of the frame
that hold at least one pixel within that reach of the unknown band, and nowhere else:

* every feature map lives in a zero-bordered frame-sized buffer; a layer gathers its blocks with
  a one-pixel halo, convolves them without padding and scatters the results back
  (:class:`BlockRunner`);
* the zero border is the dense network's zero padding, and the reach grows by each layer's
  reach towards the input, so every value the unknown band depends on is exactly the dense
  network's (to float rounding); pixels away from the band are left undefined (finite);
* the low-resolution part (ResNet encoder and the decoder stages at strides 16, 8 and 4) runs
  densely, as its receptive field spans the frame.

The blocks own their part: each declares its ``reach`` and has a ``forward_sparse`` that runs
its layers through a :class:`BlockRunner` (:mod:`vfxmatte.model.blocks`, the TCP, the decoder
stage); this module knows only blocks of the frame and buffers. The saving costs a
frame-sized buffer per layer. GroupNorm and training need whole feature maps:
:func:`sparse_supported` says when the dense forward must be used instead.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vfxmatte.errors import InputError
from vfxmatte.model.blocks import cat_channels
from vfxmatte.model.halo import HALO

#: Default block edge in full-resolution pixels (the half-resolution layers use half of it, the
#: same frame area). Smaller blocks follow the band more closely but gather more halo per
#: pixel; larger ones compute more pixels away from the band.
DEFAULT_BLOCK = 16
#: Above this share of blocks near the band, gathering blocks costs more than it saves: the
#: dense forward runs instead.
DENSE_ABOVE = 0.5

#: (batch, row, column) indices of the blocks a layer computes.
BlockIndex = tuple[Tensor, Tensor, Tensor]


def sparse_supported(model: nn.Module) -> bool:
    """True when every norm layer of the full/half-resolution layers is local (batch norm in
    eval mode or already folded) and the model is not training."""
    if model.training:
        return False
    return not any(isinstance(m, nn.GroupNorm) for m in model.modules())


class BlockGrid:
    """Which blocks of one resolution level to compute for a given reach around the band.

    Built once per forward and level: its summed-area table and the block lists per reach are
    shared by the density check and every layer."""

    def __init__(self, band: Tensor, block: int) -> None:
        n, _, h, w = band.shape
        if h % block or w % block:
            raise InputError(f"block-sparse: frame {h}x{w} is not a multiple of the block size {block}")
        self.block = block
        self.size = (h, w)
        # Summed-area table of the band: a block is needed for reach r iff the band meets the
        # block grown by r pixels (a chain of r 3x3 convs reaches a square).
        table = (band[:, 0] > 0).to(torch.int32).cumsum(1).cumsum(2)
        self._table = F.pad(table, (1, 0, 1, 0))  # [N, H+1, W+1]
        self._cache: dict[int, BlockIndex] = {}

    def blocks(self, reach: int) -> BlockIndex:
        """(batch, row, column) indices of the blocks within ``reach`` pixels of the band."""
        if reach not in self._cache:
            (h, w), b, t = self.size, self.block, self._table
            ys = torch.arange(0, h, b, device=t.device)
            xs = torch.arange(0, w, b, device=t.device)
            y0, y1 = (ys - reach).clamp(0, h), (ys + b + reach).clamp(0, h)
            x0, x1 = (xs - reach).clamp(0, w), (xs + b + reach).clamp(0, w)
            count = t[:, y1][:, :, x1] - t[:, y0][:, :, x1] - t[:, y1][:, :, x0] + t[:, y0][:, :, x0]
            self._cache[reach] = (count > 0).nonzero(as_tuple=True)
        return self._cache[reach]

    def fraction(self, reach: int) -> float:
        """Share of the frame's blocks within ``reach`` pixels of the band (0..1)."""
        (h, w), b = self.size, self.block
        return self.blocks(reach)[0].numel() / (self._table.shape[0] * (h // b) * (w // b))


def needed_fraction(band: Tensor, block: int, reach: int) -> float:
    """Share of the frame's blocks within ``reach`` pixels of ``band`` [N, 1, H, W] (0..1)."""
    return BlockGrid(band, block).fraction(reach)


def chain_needs(layers: list[nn.Module], reach: int) -> list[int]:
    """Where each layer of a chain must compute its output (the reach around the band) for the
    chain's output to be exact within ``reach``: the last layer at ``reach``, each one before
    at the next one's plus that next layer's ``reach``."""
    needs = [reach]
    for layer in reversed(layers[1:]):
        needs.append(needs[-1] + layer.reach)
    return needs[::-1]


def interior(buf: Tensor) -> Tensor:
    """The frame inside a bordered buffer."""
    return buf[..., 1:-1, 1:-1]


def _buffer(like: Tensor, channels: int) -> Tensor:
    """An [N, C, H+2, W+2] channels_last buffer for a level the size of ``like``.

    Only its one-pixel border is zeroed (the dense network's zero padding): the interior is
    written block by block, and values in blocks no layer computes are never read into a value
    the band depends on, so the frame-sized fill is skipped.
    """
    n, _, h, w = like.shape
    buf = torch.empty((n, h + 2, w + 2, channels), dtype=like.dtype, device=like.device)
    buf[:, :: h + 1].zero_()  # first and last rows
    buf[:, :, :: w + 1].zero_()  # first and last columns
    return buf.permute(0, 3, 1, 2)  # channels_last memory


def padded(x: Tensor) -> Tensor:
    """A dense map in a zero-bordered channels_last buffer."""
    buf = _buffer(x, x.shape[1])
    interior(buf).copy_(x)
    return buf


def _row_spans(buf: Tensor, block: int, halo: int) -> tuple[Tensor, Tensor]:
    """A view of a bordered channels_last buffer as [N, H+2, cols, (B+2h)*C] row spans, and the
    in-block row offsets: the (B+2h)*C floats of one block row (halo 0 or 1) are contiguous,
    so gathering a block copies B+2h runs instead of (B+2h)^2 pixels one by one."""
    nhwc = buf.permute(0, 2, 3, 1)
    n, hp, wp, c = nhwc.shape
    sn, sh, sw, sc = nhwc.stride()
    if sc != 1 or sw != c:
        raise InputError("block-sparse buffers must be channels_last and contiguous")
    size = block + 2 * halo
    view = nhwc.as_strided((n, hp, (wp - 2) // block, size * c), (sn, sh, block * sw, 1),
                           nhwc.storage_offset() + (1 - halo) * sw)
    return view, torch.arange(size, device=buf.device) + (1 - halo)


def gather(buf: Tensor, idx: BlockIndex, block: int, halo: int) -> Tensor:
    """Blocks of ``buf`` (with a ``halo``-pixel rim) as a channels_last batch [M, C, B+2h, B+2h]."""
    view, rows = _row_spans(buf, block, halo)
    b, y, x = idx
    out = view[b[:, None], y[:, None] * block + rows, x[:, None]]  # [M, B+2h, (B+2h)*C]
    size = block + 2 * halo
    return out.view(-1, size, size, buf.shape[1]).permute(0, 3, 1, 2)


def _scatter(buf: Tensor, idx: BlockIndex, block: int, values: Tensor) -> None:
    """Write [M, C, B, B] block results into ``buf``'s interior."""
    view, rows = _row_spans(buf, block, 0)
    b, y, x = idx
    spans = values.permute(0, 2, 3, 1).to(buf.dtype).reshape(-1, block, block * buf.shape[1])
    view[b[:, None], y[:, None] * block + rows, x[:, None]] = spans


def nearest_patches(low: Tensor, idx: BlockIndex, block: int, s: int, halo: int) -> Tensor:
    """Blocks (with ``halo``) of ``low`` (a bordered buffer at stride ``s``) nearest-upsampled to
    full resolution: the dense FFU's ``F.interpolate(..., mode="nearest")`` of the whole map,
    without building it. A full-resolution block of ``block`` pixels covers ``block // s``
    low-resolution cells; its one-pixel halo lies in the neighbouring cells."""
    if block % s:
        raise InputError(f"block-sparse: block {block} is not a multiple of the FFU feature stride {s}")
    cells = gather(low, idx, block // s, 1)  # [M, C, block/s + 2, block/s + 2]
    up = cells.repeat_interleave(s, dim=2).repeat_interleave(s, dim=3)
    return up[..., s - halo : s + block + halo, s - halo : s + block + halo]


class BlockRunner:
    """Runs block-wise layers on the blocks of one resolution level near the band.

    A layer's output is needed within some reach of the band; the runner computes it on
    exactly the blocks within that reach (:meth:`BlockGrid.blocks`), from its input buffers'
    halo patches, and leaves the rest of the output buffer undefined. The caller asks for its
    input within the reach grown by the layer's own reach, so the halos it reads are defined.
    """

    def __init__(self, grid: BlockGrid) -> None:
        self.grid = grid
        self.block = grid.block

    def blocks(self, reach: int) -> BlockIndex:
        return self.grid.blocks(reach)

    def conv(
        self,
        fn: Callable[..., Tensor],
        src: Tensor | list[Tensor],
        reach: int,
        channels: int,
        extra: Callable[[BlockIndex], Tensor] | None = None,
        skip: Tensor | None = None,
    ) -> Tensor:
        """A bordered buffer of ``channels`` holding ``fn`` on the blocks within ``reach``.

        ``fn`` is a block-wise forward: it maps halo patches [M, C, B+2, B+2] to the blocks
        [M, channels, B, B]. The patches are the ``src`` buffers' concatenated on channels,
        then ``extra(blocks)``'s (inputs that are not bordered buffers). With ``skip``, ``fn``
        also gets that buffer's blocks without halo (a residual shortcut).
        """
        idx = self.grid.blocks(reach)
        srcs = src if isinstance(src, list) else [src]
        out = _buffer(interior(srcs[0]), channels)
        if idx[0].numel():
            parts = [gather(s, idx, self.block, HALO) for s in srcs]
            patches = cat_channels(parts + [extra(idx)] if extra else parts)
            y = fn(patches) if skip is None else fn(patches, gather(skip, idx, self.block, 0))
            _scatter(out, idx, self.block, y)
        return out

    def pointwise(
        self,
        fn: Callable[[Tensor, Tensor], Tensor],
        src: Tensor,
        reach: int,
        extra: Callable[[BlockIndex], Tensor],
    ) -> Tensor:
        """A bordered buffer like ``src`` holding ``fn(src blocks, extra(blocks))`` on the
        blocks within ``reach`` (a per-pixel layer: no halo)."""
        idx = self.grid.blocks(reach)
        out = _buffer(interior(src), src.shape[1])
        if idx[0].numel():
            _scatter(out, idx, self.block, fn(gather(src, idx, self.block, 0), extra(idx)))
        return out
