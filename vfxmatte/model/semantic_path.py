"""Semantic Path (paper §3.1): a U-Net whose encoder is a ResNet and whose decoder mirrors it.

Each skip connection carries ``skip_convs`` conv layers ("two convolution layers in each
shortcut to provide an adaption from low-level features to high-level features", §3.1).

The last decoder stage and the head run at stride 2 and are local (3x3 convs, then a bilinear
x2 upsampling that reads within :data:`BILINEAR_X2_REACH` of each pixel): block-sparse
inference runs them near the band only (:meth:`SemanticPath.forward_sparse`); the encoder and
the decoder stages before them run densely.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from vfxmatte.model.blocks import ConvNormReLU, cat_channels
from vfxmatte.model.config import TCPMattingConfig
from vfxmatte.model.halo import conv_patches, conv_reach
from vfxmatte.model.resnet import ResNetEncoder
from vfxmatte.model.sparse import BlockGrid, BlockRunner, chain_needs, interior, padded

#: Half-resolution pixels a bilinear x2 upsampling (``align_corners=False``) reads around the
#: one under a full-resolution pixel: 1 (the neighbour on the side the pixel centre lies).
BILINEAR_X2_REACH = 1


class DecoderStage(nn.Module):
    """Upsample x2, concatenate the adapted skip, two conv-norm-ReLU layers."""

    def __init__(self, cin: int, cskip: int, cout: int, skip_convs: int, norm: str) -> None:
        super().__init__()
        self.skip = nn.Sequential(*[ConvNormReLU(cskip, cskip, norm) for _ in range(skip_convs)])
        self.conv1 = ConvNormReLU(cin + cskip, cout, norm)
        self.conv2 = ConvNormReLU(cout, cout, norm)

    @property
    def reach(self) -> int:
        """Pixels the output reaches into the skip input on each side (the longer path, the
        upsampled input reaches only ``conv1``'s and ``conv2``'s)."""
        return sum(layer.reach for layer in self.skip) + self.conv1.reach + self.conv2.reach

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.conv2(self.conv1(cat_channels([x, self.skip(skip)])))

    def forward_sparse(self, run: BlockRunner, x: Tensor, skip: Tensor, reach: int) -> Tensor:
        """:meth:`forward` on the blocks within ``reach`` of the band, as a bordered buffer."""
        up = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        mid = reach + self.conv2.reach  # where conv1's output is needed
        s = padded(skip)
        for layer, r in zip(self.skip, chain_needs(list(self.skip), mid + self.conv1.reach)):
            s = layer.forward_sparse(run, s, r)
        h = self.conv1.forward_sparse(run, [padded(up), s], mid)
        return self.conv2.forward_sparse(run, h, reach)


class SemanticPath(nn.Module):
    """ResNet U-Net returning a one-channel logit at full resolution and the FFU feature."""

    def __init__(self, cfg: TCPMattingConfig) -> None:
        super().__init__()
        self.encoder = ResNetEncoder(
            cfg.encoder_layers, cfg.encoder_widths, cfg.in_channels, nn.BatchNorm2d
        )
        enc = cfg.encoder_widths
        dec = cfg.decoder_widths
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

    def forward_sparse(self, x: Tensor, band: Tensor, block: int) -> tuple[Tensor, Tensor]:
        """Like :meth:`forward`, with the last decoder stage and the head run block-sparsely
        (``block // 2``-pixel blocks at stride 2): the logit equals :meth:`forward`'s on
        ``band`` [B, 1, H, W] (elsewhere it is undefined); the FFU feature is dense."""
        feats, d = self.trunk(x)
        band_half = F.max_pool2d(band, 2)  # a half-res pixel is in the band if one of its 4 is
        run = BlockRunner(BlockGrid(band_half, block // 2))
        need = BILINEAR_X2_REACH  # where the head's output is needed
        d = self.stages[-1].forward_sparse(run, d, feats[0], need + conv_reach(self.head))
        head = interior(run.conv(lambda p: conv_patches(self.head, p), d, need, self.head.out_channels))
        logit = F.interpolate(head, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return logit, feats[self.ffu_index]
