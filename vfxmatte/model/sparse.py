"""Block-sparse inference: the full- and half-resolution layers run only near the unknown band.

The engine keeps the trimap's known pixels, so the network's output matters only inside the
unknown band. Most of the cost, however, sits in the layers at full resolution (the Textural
Compensate Path) and at half resolution (the Semantic Path's last decoder stage and head), which
dense inference runs over the whole frame. Those layers are local: a chain of 3x3 convolutions,
so an output pixel depends only on input pixels within as many pixels as there are convs after
it. This module runs each of them on the square blocks of the frame that hold at least one pixel
within that reach of the unknown band, and nowhere else:

* every feature map lives in a zero-bordered frame-sized buffer; a layer gathers its blocks with
  a one-pixel halo, convolves them without padding and scatters the results back;
* the zero border is the dense network's zero padding, and the reach grows by one pixel per
  conv towards the input, so every value the unknown band depends on is exactly the dense
  network's (to float rounding); pixels away from the band are left undefined (finite);
* the low-resolution part (ResNet encoder and the decoder stages at strides 16, 8 and 4) runs
  densely, as its receptive field spans the frame.

On this project's 2-core CPU the whole network runs 1.15-1.35x faster on alphamatting.com
photos, whose unknown bands touch a fifth to a half of the frame's 16-pixel blocks (the dense
low-resolution part then dominates), and 1.6-1.9x on 2K/4K plates with a thin band
(``benchmarks/RESULTS.md``). Peak memory grows a little (a buffer per layer). GroupNorm and training need whole feature maps:
:func:`sparse_supported` says when the dense forward must be used instead.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vfxmatte.model.blocks import ResidualBlock, cat_channels

#: Default block edge in full-resolution pixels (the half-resolution layers use half of it, the
#: same frame area). 16 measured faster than 8 and 32 on alphamatting.com photos (RESULTS.md).
DEFAULT_BLOCK = 16
#: Above this share of blocks near the band, gathering blocks costs more than it saves: the
#: dense forward runs instead (break-even measured at ~0.5 of the blocks at the TCP's reach).
DENSE_ABOVE = 0.5

_CL = torch.channels_last
#: oneDNN convolution with a fused post-op (the op torch.compile's CPU backend emits); absent
#: from builds without mkldnn, where conv and ReLU run separately.
_FUSED_CONV = getattr(getattr(torch.ops, "mkldnn", None), "_convolution_pointwise", None) if torch.backends.mkldnn.is_available() else None


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
            raise ValueError(f"frame {h}x{w} is not a multiple of the block size {block}")
        self.block = block
        self.size = (h, w)
        # Summed-area table of the band: a block is needed for reach r iff the band meets the
        # block grown by r pixels (a chain of r 3x3 convs reaches a square).
        table = (band[:, 0] > 0).to(torch.int32).cumsum(1).cumsum(2)
        self._table = F.pad(table, (1, 0, 1, 0))  # [N, H+1, W+1]
        self._cache: dict[int, tuple[Tensor, Tensor, Tensor]] = {}

    def blocks(self, reach: int) -> tuple[Tensor, Tensor, Tensor]:
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


def _interior(buf: Tensor) -> Tensor:
    """The frame inside a bordered buffer."""
    return buf[..., 1:-1, 1:-1]


def _buffer(like: Tensor, channels: int) -> Tensor:
    """An [N, C, H+2, W+2] channels_last buffer for a level the size of ``like``.

    Only its one-pixel border is zeroed (the dense network's zero padding): the interior is
    written block by block, and values in blocks no layer computes are never read into a value
    the band depends on (skipping the frame-sized fill saves ~8 ms per 16-channel map here).
    """
    n, _, h, w = like.shape
    buf = torch.empty((n, h + 2, w + 2, channels), dtype=like.dtype, device=like.device)
    buf[:, :: h + 1].zero_()  # first and last rows
    buf[:, :, :: w + 1].zero_()  # first and last columns
    return buf.permute(0, 3, 1, 2)  # channels_last memory


def _padded(x: Tensor) -> Tensor:
    """A dense map in a zero-bordered channels_last buffer."""
    buf = _buffer(x, x.shape[1])
    _interior(buf).copy_(x)
    return buf


def _row_spans(buf: Tensor, block: int, halo: int) -> tuple[Tensor, Tensor]:
    """A view of a bordered channels_last buffer as [N, H+2, cols, (B+2h)*C] row spans, and the
    in-block row offsets: the (B+2h)*C floats of one block row (halo 0 or 1) are contiguous,
    so gathering a block copies B+2h runs instead of (B+2h)^2 pixels one by one (~1.4x faster
    than indexing a [N, rows, cols, B, B, C] window view here)."""
    nhwc = buf.permute(0, 2, 3, 1)
    n, hp, wp, c = nhwc.shape
    sn, sh, sw, sc = nhwc.stride()
    if sc != 1 or sw != c:
        raise ValueError("block-sparse buffers must be channels_last and contiguous")
    size = block + 2 * halo
    view = nhwc.as_strided((n, hp, (wp - 2) // block, size * c), (sn, sh, block * sw, 1),
                           nhwc.storage_offset() + (1 - halo) * sw)
    return view, torch.arange(size, device=buf.device) + (1 - halo)


def _gather(buf: Tensor, idx: tuple[Tensor, Tensor, Tensor], block: int, halo: int) -> Tensor:
    """Blocks of ``buf`` (with a ``halo``-pixel rim) as a channels_last batch [M, C, B+2h, B+2h]."""
    view, rows = _row_spans(buf, block, halo)
    b, y, x = idx
    out = view[b[:, None], y[:, None] * block + rows, x[:, None]]  # [M, B+2h, (B+2h)*C]
    size = block + 2 * halo
    return out.view(-1, size, size, buf.shape[1]).permute(0, 3, 1, 2)


def _scatter(buf: Tensor, idx: tuple[Tensor, Tensor, Tensor], block: int, values: Tensor) -> None:
    """Write [M, C, B, B] block results into ``buf``'s interior."""
    view, rows = _row_spans(buf, block, 0)
    b, y, x = idx
    spans = values.permute(0, 2, 3, 1).to(buf.dtype).reshape(-1, block, block * buf.shape[1])
    view[b[:, None], y[:, None] * block + rows, x[:, None]] = spans


def _check3x3(conv: nn.Conv2d) -> None:
    if conv.kernel_size != (3, 3) or conv.stride != (1, 1) or conv.padding != (1, 1) or conv.dilation != (1, 1):
        raise ValueError(f"block-sparse inference needs 3x3 stride-1 convs, got {conv}")


def _conv3x3(conv: nn.Conv2d, patches: Tensor) -> Tensor:
    """``conv`` (3x3, stride 1, padding 1) on halo patches, without padding -> the blocks."""
    _check3x3(conv)
    return F.conv2d(patches, conv.weight, conv.bias, groups=conv.groups)


def _fusable(patches: Tensor) -> bool:
    """Whether oneDNN's fused conv ops apply: CPU float32 inference."""
    return (_FUSED_CONV is not None and patches.device.type == "cpu" and patches.dtype == torch.float32
            and not torch.is_grad_enabled())


def _conv3x3_relu(conv: nn.Conv2d, patches: Tensor) -> Tensor:
    """``relu(conv(patches))`` without padding; on the CPU one oneDNN call with the ReLU fused
    as a post-op (saves a memory pass per layer), elsewhere conv then ReLU."""
    if _fusable(patches) and conv.groups == 1:
        _check3x3(conv)
        return _FUSED_CONV(patches, conv.weight, conv.bias, [0, 0], [1, 1], [1, 1], 1, "relu", [], "")
    return torch.relu_(_conv3x3(conv, patches))


def _layer(layer: nn.Module, patches: Tensor) -> Tensor:
    """A conv, or a (conv, norm, ReLU) ``nn.Sequential``, on halo patches."""
    if isinstance(layer, nn.Conv2d):
        return _conv3x3(layer, patches)
    conv, *rest = list(layer)
    if len(rest) == 2 and isinstance(rest[0], nn.Identity) and isinstance(rest[1], nn.ReLU):
        return _conv3x3_relu(conv, patches)  # a folded ConvNormReLU
    y = _conv3x3(conv, patches)
    for m in rest:  # eval-mode batch norm or Identity (folded), then ReLU: all per pixel
        y = m(y)
    return y


class _Runner:
    """Applies layers block-sparsely on one resolution level."""

    def __init__(self, grid: BlockGrid) -> None:
        self.grid = grid
        self.block = grid.block

    def conv(
        self,
        layer: nn.Module,
        src: Tensor | list[Tensor],
        reach: int,
        channels: int,
        extra: Callable[[tuple[Tensor, Tensor, Tensor]], Tensor] | None = None,
    ) -> Tensor:
        """``layer`` on the blocks for ``reach``; ``src`` buffers are concatenated on channels,
        then ``extra(blocks)``'s halo patches if given (inputs that are not bordered buffers)."""
        idx = self.grid.blocks(reach)
        srcs = src if isinstance(src, list) else [src]
        parts = [_gather(s, idx, self.block, 1) for s in srcs]
        patches = cat_channels(parts + [extra(idx)] if extra else parts)
        out = _buffer(_interior(srcs[0]), channels)
        if idx[0].numel():
            _scatter(out, idx, self.block, _layer(layer, patches))
        return out

    def residual(self, blk: ResidualBlock, src: Tensor, reach: int) -> Tensor:
        """A residual block whose output is needed within ``reach``."""
        c = blk.conv2.out_channels
        mid = self.conv(blk.conv1, src, reach + 1, c)
        idx = self.grid.blocks(reach)
        out = _buffer(_interior(src), c)
        if idx[0].numel():
            patches, skip = _gather(mid, idx, self.block, 1), _gather(src, idx, self.block, 0)
            if _fusable(patches) and isinstance(blk.norm2, nn.Identity) and blk.conv2.groups == 1:  # folded
                _check3x3(blk.conv2)
                y = _FUSED_CONV.binary(patches, skip, blk.conv2.weight, blk.conv2.bias, [0, 0], [1, 1], [1, 1], 1,
                                       "add", None, "relu", [], "")
            else:
                y = blk.relu(blk.norm2(_conv3x3(blk.conv2, patches)) + skip)
            _scatter(out, idx, self.block, y)
        return out


def sparse_tcp_logit(tcp: nn.Module, x: Tensor, sp_feat: Tensor, grid: BlockGrid) -> Tensor:
    """The TCP's logit [N, 1, H, W], exact within the band ``grid`` was built from."""
    run = _Runner(grid)
    block = grid.block
    first, *blocks = list(tcp.extract)
    reach = 2 * len(blocks) + 2  # convs after the first: two per residual block, two to refine
    feat = run.conv(first, _padded(x), reach, first[0].out_channels)
    for blk in blocks:
        feat = run.residual(blk, feat, reach - 2)
        reach -= 2
    ffu = tcp.ffu
    sp = _padded(ffu.w_c * ffu.proj(sp_feat))  # at the SP feature's stride s: upsampled per block
    s = x.shape[-1] // sp_feat.shape[-1]
    refine0, out_conv = list(tcp.refine)
    if ffu.fusion == "concat":
        mid = run.conv(refine0, feat, 1, refine0[0].out_channels, extra=lambda idx: _nearest_patches(sp, idx, block, s, 1))
    else:  # "add": fuse on the gathered blocks
        fused = _buffer(x, feat.shape[1])
        idx = run.grid.blocks(2)
        if idx[0].numel():
            _scatter(fused, idx, block, _gather(feat, idx, block, 0) + _nearest_patches(sp, idx, block, s, 0))
        mid = run.conv(refine0, fused, 1, refine0[0].out_channels)
    return _interior(run.conv(out_conv, mid, 0, 1))


def _nearest_patches(low: Tensor, idx: tuple[Tensor, Tensor, Tensor], block: int, s: int, halo: int) -> Tensor:
    """Blocks (with ``halo``) of ``low`` (a bordered buffer at stride ``s``) nearest-upsampled to
    full resolution: the dense FFU's ``F.interpolate(..., mode="nearest")`` of the whole map,
    without building it. A full-resolution block of ``block`` pixels covers ``block // s``
    low-resolution cells; its one-pixel halo lies in the neighbouring cells."""
    if block % s:
        raise ValueError(f"block {block} is not a multiple of the FFU feature stride {s}")
    cells = _gather(low, idx, block // s, 1)  # [M, C, block/s + 2, block/s + 2]
    up = cells.repeat_interleave(s, dim=2).repeat_interleave(s, dim=3)
    return up[..., s - halo : s + block + halo, s - halo : s + block + halo]


def sparse_head_logit(stage: nn.Module, head: nn.Conv2d, d: Tensor, skip: Tensor, band_half: Tensor, block: int) -> Tensor:
    """The Semantic Path's last decoder stage and head: logit [N, 1, H/2, W/2], exact where a
    bilinear upsampling to full resolution reads it for the band (``band_half`` dilated by 1)."""
    run = _Runner(BlockGrid(band_half, block))
    up = F.interpolate(d, size=skip.shape[-2:], mode="bilinear", align_corners=False)
    skips = list(stage.skip)
    reach = 1 + 2 + len(skips)  # head (+1 for the bilinear read), conv2, conv1, then the skip convs
    s = _padded(skip)
    for layer in skips:
        s = run.conv(layer, s, reach, layer[0].out_channels)
        reach -= 1
    h = run.conv(stage.conv1, [_padded(up), s], 3, stage.conv1[0].out_channels)
    h = run.conv(stage.conv2, h, 2, stage.conv2[0].out_channels)
    return _interior(run.conv(head, h, 1, 1))
