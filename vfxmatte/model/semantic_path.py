"""Semantic Path (paper §3.1): a U-Net whose encoder is a ResNet and whose decoder mirrors it.

Each skip connection carries ``skip_convs`` conv layers ("two convolution layers in each
shortcut to provide an adaption from low-level features to high-level features", §3.1).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vfxmatte.model.blocks import ConvNormReLU, cat_channels
from vfxmatte.model.config import TCPMattingConfig
from vfxmatte.model.resnet import ResNetEncoder


class DecoderStage(nn.Module):
    """Upsample x2, concatenate the adapted skip, two conv-norm-ReLU layers."""

    def __init__(self, cin: int, cskip: int, cout: int, skip_convs: int, norm: str) -> None:
        super().__init__()
        self.skip = nn.Sequential(*[ConvNormReLU(cskip, cskip, norm) for _ in range(skip_convs)])
        self.conv1 = ConvNormReLU(cin + cskip, cout, norm)
        self.conv2 = ConvNormReLU(cout, cout, norm)

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.conv2(self.conv1(cat_channels([x, self.skip(skip)])))


class SemanticPath(nn.Module):
    """ResNet U-Net returning a one-channel logit at full resolution and the FFU feature."""

    def __init__(self, cfg: TCPMattingConfig) -> None:
        super().__init__()
        self.encoder = ResNetEncoder(
            cfg.encoder_layers, cfg.encoder_widths, cfg.in_channels, nn.BatchNorm2d
        )
        enc = cfg.encoder_widths
        dec = cfg.decoder_widths
        if len(dec) != 4:
            raise ValueError("decoder_widths needs 4 entries (strides 16, 8, 4, 2)")
        # Decoder stage i goes from stride 2^(5-i) to 2^(4-i), taking encoder skip enc[3-i].
        cins = (enc[4],) + tuple(dec[:3])
        skips = (enc[3], enc[2], enc[1], enc[0])
        self.stages = nn.ModuleList(
            DecoderStage(ci, cs, co, cfg.skip_convs, cfg.norm) for ci, cs, co in zip(cins, skips, dec)
        )
        # One-channel output at stride 2, bilinearly upsampled to H x W.
        self.head = nn.Conv2d(dec[3], 1, 3, 1, 1)
        self.ffu_index = {"stem": 0, "layer1": 1}[cfg.ffu_source]

    def trunk(self, x: Tensor) -> tuple[list[Tensor], Tensor]:
        """Encoder features (strides 2..32) and the decoder's output at stride 4: everything but
        the last decoder stage and the head (which block-sparse inference runs itself)."""
        feats = self.encoder(x)  # strides 2, 4, 8, 16, 32
        d = feats[4]
        for stage, skip in zip(self.stages[:-1], (feats[3], feats[2], feats[1])):
            d = stage(d, skip)
        return feats, d

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        feats, d = self.trunk(x)
        d = self.stages[-1](d, feats[0])
        logit = F.interpolate(self.head(d), size=x.shape[-2:], mode="bilinear", align_corners=False)
        return logit, feats[self.ffu_index]  # [B,1,H,W], [B,C,H/s,W/s]
