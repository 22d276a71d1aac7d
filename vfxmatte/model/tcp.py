"""Textural Compensate Path (paper §3.2, Fig. 3): downsampling-free detail path.

Spatial feature extraction unit (one conv + residual blocks at H x W), Feature Fusion Unit
(SP features resized to H x W by nearest interpolation and scaled by a learnable w_c), and a
feature refinement unit of two convs. §4.1: every TCP conv except the output one is followed
by (synced) batch norm and ReLU.

Every layer at H x W is a 3x3 conv, and the FFU merges per pixel (its SP feature comes from
the dense Semantic Path), so the TCP's logit at a pixel depends on its input only within
:attr:`TexturalCompensatePath.reach` pixels: what block-sparse inference
(:meth:`TexturalCompensatePath.forward_sparse`) relies on.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vfxmatte.model.blocks import ConvNormReLU, ResidualBlock, cat_channels
from vfxmatte.model.config import TCPMattingConfig
from vfxmatte.model.halo import conv_patches, conv_reach
from vfxmatte.model.sparse import BlockIndex, BlockRunner, chain_needs, interior, nearest_patches, padded


class FeatureFusionUnit(nn.Module):
    """Fuse SP features into the TCP: ``fuse(tcp, w_c * nearest_resize(proj(sp)))``.

    A 1x1 projection maps the SP feature to the TCP width. It is applied *before* the nearest
    resize: a 1x1 conv commutes with nearest upsampling, so the result is identical and the
    full-resolution tensor has ``tcp_channels`` instead of the SP's channels.
    """

    def __init__(self, sp_channels: int, channels: int, fusion: str, w_c_init: float) -> None:
        super().__init__()
        self.proj = nn.Conv2d(sp_channels, channels, 1, bias=False)
        self.w_c = nn.Parameter(torch.tensor(float(w_c_init)))
        self.fusion = fusion
        self.out_channels = 2 * channels if fusion == "concat" else channels

    def forward(self, tcp_feat: Tensor, sp_feat: Tensor) -> Tensor:
        # w_c scales before the resize: nearest interpolation only copies values, so this is
        # the same as scaling the full-resolution map, at 1/16 of the cost (layer1 features).
        sp = F.interpolate(self.w_c * self.proj(sp_feat), size=tcp_feat.shape[-2:], mode="nearest")
        if self.fusion == "concat":
            return cat_channels([tcp_feat, sp])
        return tcp_feat + sp

    def forward_sparse(
        self, run: BlockRunner, tcp_feat: Tensor, sp_feat: Tensor, reach: int
    ) -> tuple[Tensor, Callable[[BlockIndex], Tensor] | None]:
        """The fusion on the blocks within ``reach``, as the next conv's input: a bordered
        buffer and the SP side's halo patches per block list for "concat" (the next conv
        concatenates them per block; the full-resolution concatenation is never built), one
        buffer holding the sum (and None) for "add"."""
        sp = padded(self.w_c * self.proj(sp_feat))  # at the SP feature's stride s: upsampled per block
        s = interior(tcp_feat).shape[-1] // sp_feat.shape[-1]
        block = run.block
        if self.fusion == "concat":
            return tcp_feat, lambda idx: nearest_patches(sp, idx, block, s, 1)
        fused = run.pointwise(torch.add, tcp_feat, reach, lambda idx: nearest_patches(sp, idx, block, s, 0))
        return fused, None


class TexturalCompensatePath(nn.Module):
    def __init__(self, cfg: TCPMattingConfig, sp_channels: int) -> None:
        super().__init__()
        c = cfg.tcp_channels
        self.extract = nn.Sequential(
            ConvNormReLU(cfg.in_channels, c, cfg.norm),
            *[ResidualBlock(c, cfg.norm) for _ in range(cfg.tcp_res_blocks)],
        )
        self.ffu = FeatureFusionUnit(sp_channels, c, cfg.fusion, cfg.w_c_init)
        self.refine = nn.Sequential(
            ConvNormReLU(self.ffu.out_channels, c, cfg.norm),
            nn.Conv2d(c, 1, 3, 1, 1),  # output layer: no norm, no activation (§4.1)
        )

    @property
    def reach(self) -> int:
        """Pixels the logit reaches into the input on each side: the sum of its layers'."""
        refine, out = self.refine
        return sum(layer.reach for layer in self.extract) + refine.reach + conv_reach(out)

    def forward(self, x: Tensor, sp_feat: Tensor) -> Tensor:
        return self.refine(self.ffu(self.extract(x), sp_feat))  # [B, 1, H, W]

    def forward_sparse(self, run: BlockRunner, x: Tensor, sp_feat: Tensor) -> Tensor:
        """The logit [B, 1, H, W], equal to :meth:`forward`'s on the band ``run``'s grid was
        built from; ``x`` is the padded input. Each layer runs on the blocks within the reach
        of the layers after it."""
        refine, out = self.refine
        need = conv_reach(out)  # where the refinement conv's output is needed
        fused = need + refine.reach  # where the FFU's, and so the extraction unit's, is
        feat = padded(x)
        for layer, r in zip(self.extract, chain_needs(list(self.extract), fused)):
            feat = layer.forward_sparse(run, feat, r)
        src, extra = self.ffu.forward_sparse(run, feat, sp_feat, fused)
        mid = refine.forward_sparse(run, src, need, extra=extra)
        return interior(run.conv(lambda p: conv_patches(out, p), mid, 0, out.out_channels))
