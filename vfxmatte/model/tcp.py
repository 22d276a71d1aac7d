"""Textural Compensate Path (paper §3.2, Fig. 3): downsampling-free detail path.

Spatial feature extraction unit (one conv + residual blocks at H x W), Feature Fusion Unit
(SP features resized to H x W by nearest interpolation and scaled by a learnable w_c), and a
feature refinement unit of two convs. §4.1: every TCP conv except the output one is followed
by (synced) batch norm and ReLU.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vfxmatte.model.blocks import ConvNormReLU, ResidualBlock, cat_channels
from vfxmatte.model.config import TCPMattingConfig


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

    def forward(self, x: Tensor, sp_feat: Tensor) -> Tensor:
        return self.refine(self.ffu(self.extract(x), sp_feat))  # [B, 1, H, W]
