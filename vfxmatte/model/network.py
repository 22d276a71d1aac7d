"""The two-path matting network (paper §3, Fig. 1): wiring only; blocks live in sibling files."""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vfxmatte.errors import InputError
from vfxmatte.model.blocks import cat_channels
from vfxmatte.model.config import R34, SMALL, STRIDE, TINY, TCPMattingConfig, variant
from vfxmatte.model.semantic_path import SemanticPath
from vfxmatte.model.sparse import DEFAULT_BLOCK, DENSE_ABOVE, BlockGrid, BlockRunner, sparse_supported
from vfxmatte.model.tcp import TexturalCompensatePath
from vfxmatte.trimap import UNKNOWN_CHANNEL

# ImageNet statistics: the encoder is designed to start from ImageNet weights (§4.1).
_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)
#: The network input is RGB, then the one-hot trimap (paper §3): the trimap's channel c is
#: input channel ``_RGB + c``.
_RGB = len(_MEAN)


class PathOutputs(NamedTuple):
    alpha: Tensor  # [B, 1, H, W] in [0, 1]
    sp_logit: Tensor  # [B, 1, H, W] Semantic Path output
    tcp_logit: Tensor  # [B, 1, H, W] Textural Compensate Path output


def alpha_from_logits(sp_logit: Tensor, tcp_logit: Tensor) -> Tensor:
    """Paper §3: the output is tanh of the sum of the two paths' outputs.

    tanh lies in (-1, 1); we map it to alpha with ``(tanh(s) + 1) / 2`` so that a zero sum means
    alpha 0.5 and both ends of the range are reachable symmetrically. Always in float32: from
    bf16 or fp16 logits (CPU bf16 inference, GPU autocast) alpha near 1 would otherwise be
    quantised in steps of 1/256 or coarser.
    """
    return (torch.tanh(sp_logit.float() + tcp_logit.float()) + 1.0) * 0.5


def pad_to_stride(x: Tensor, stride: int = STRIDE) -> tuple[Tensor, int, int]:
    """Pad H and W up to a multiple of ``stride`` by reflection (replicate where too small)."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % stride, (-w) % stride
    if ph == 0 and pw == 0:
        return x, h, w
    mode = "reflect" if ph < h and pw < w else "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode), h, w


class TCPMatting(nn.Module):
    """Semantic Path + Textural Compensate Path.

    Inputs are an sRGB-encoded image in [0, 1] and a one-hot trimap (bg, unknown, fg: the
    channels of :func:`vfxmatte.trimap.one_hot`). In training the TCP may get a different,
    noisier trimap (paper §3.3); at inference both paths get the same one. Any H x W is
    accepted: inputs are reflection-padded to :data:`STRIDE` and the output is cropped back.
    """

    def __init__(self, cfg: TCPMattingConfig = R34) -> None:
        super().__init__()
        self.config = cfg
        self.semantic = SemanticPath(cfg)
        sp_channels = cfg.encoder_widths[self.semantic.ffu_index]
        self.tcp = TexturalCompensatePath(cfg, sp_channels)
        self.stride = cfg.stride  # inputs are padded to it, tiles aligned to it (STRIDE)
        self.register_buffer("mean", torch.tensor(_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_STD).view(1, 3, 1, 1), persistent=False)

    @property
    def tcp_reach(self) -> int:
        """How far (pixels) the TCP's output reaches back into its input, as the TCP declares
        it (one per 3x3 conv): the reach block-sparse inference counts blocks at."""
        return self.tcp.reach

    @property
    def w_c(self) -> Tensor:
        return self.tcp.ffu.w_c

    def _check(self, image: Tensor, trimap: Tensor, name: str) -> None:
        if image.dim() != 4 or image.shape[1] != 3:
            raise InputError(f"image: expected [B, 3, H, W], got {tuple(image.shape)}")
        if trimap.dim() != 4 or trimap.shape[1] != 3:
            raise InputError(f"{name}: expected one-hot [B, 3, H, W], got {tuple(trimap.shape)}")
        if trimap.shape[0] != image.shape[0] or trimap.shape[-2:] != image.shape[-2:]:
            raise InputError(
                f"{name}: shape {tuple(trimap.shape)} does not match image {tuple(image.shape)}"
            )

    def forward_paths(self, image: Tensor, trimap: Tensor, tcp_trimap: Tensor | None = None) -> PathOutputs:
        """Like :meth:`forward`, also returning each path's logit (for training diagnostics)."""
        self._check(image, trimap, "trimap")
        if tcp_trimap is None:
            tcp_trimap = trimap
        else:
            self._check(image, tcp_trimap, "tcp_trimap")
        rgb = (image - self.mean) / self.std
        x_sp, h, w = pad_to_stride(cat_channels([rgb, trimap]), self.stride)  # [B, 6, H', W']
        x_tcp = x_sp if tcp_trimap is trimap else pad_to_stride(cat_channels([rgb, tcp_trimap]), self.stride)[0]
        sp_logit, sp_feat = self.semantic(x_sp)
        tcp_logit = self.tcp(x_tcp, sp_feat)  # the FFU resizes sp_feat to full resolution itself
        sp_logit, tcp_logit = sp_logit[..., :h, :w], tcp_logit[..., :h, :w]
        return PathOutputs(alpha_from_logits(sp_logit, tcp_logit), sp_logit, tcp_logit)

    def forward_sparse(
        self, image: Tensor, trimap: Tensor, block: int = DEFAULT_BLOCK, dense_above: float = DENSE_ABOVE
    ) -> Tensor:
        """Alpha like :meth:`forward` inside the trimap's unknown band, 0 outside it.

        The full- and half-resolution layers run only on ``block``-pixel squares near the band
        (:mod:`vfxmatte.model.sparse`), for callers that keep the trimap's known pixels (the
        engine does); inside the band the result equals :meth:`forward`'s to float rounding
        (each layer computes every value within its reach of the band, as the dense one does).
        The dense forward runs instead where block-sparse inference does not apply (training,
        GroupNorm) or does not pay: more than ``dense_above`` of the blocks near the band.
        ``block`` (full-resolution pixels; the half-resolution layers use ``block // 2``, the
        same frame area) must be even and divide the network stride.
        """
        if block < 2 or block % 2 or STRIDE % block:
            raise InputError(f"block must be even and divide {STRIDE}, got {block}")
        self._check(image, trimap, "trimap")
        rgb = (image - self.mean) / self.std
        x, h, w = pad_to_stride(cat_channels([rgb, trimap]), self.stride)  # [B, 6, H', W']
        u = _RGB + UNKNOWN_CHANNEL
        band = (x[:, u : u + 1] > 0.5).to(x.dtype)  # [B, 1, H', W']
        grid = BlockGrid(band, block) if sparse_supported(self) else None
        if grid is None or grid.fraction(self.tcp_reach) > dense_above:
            alpha = self.forward(image, trimap)
        else:
            alpha = self._sparse_alpha(x, band, grid, h, w)
        return torch.where(band[..., :h, :w] > 0, alpha, torch.zeros_like(alpha))

    def _sparse_alpha(self, x: Tensor, band: Tensor, grid: BlockGrid, h: int, w: int) -> Tensor:
        """Block-sparse alpha of the padded input ``x``, cropped to ``h`` x ``w``."""
        sp_logit, sp_feat = self.semantic.forward_sparse(x, band, grid.block)
        tcp_logit = self.tcp.forward_sparse(BlockRunner(grid), x, sp_feat)
        return alpha_from_logits(sp_logit[..., :h, :w], tcp_logit[..., :h, :w])

    def forward(self, image: Tensor, trimap: Tensor, tcp_trimap: Tensor | None = None) -> Tensor:
        """Predict alpha.

        Args:
            image: [B, 3, H, W] sRGB-encoded RGB in [0, 1].
            trimap: [B, 3, H, W] one-hot (bg, unknown, fg) for the Semantic Path.
            tcp_trimap: optional separate one-hot trimap for the TCP (training, §3.3).

        Returns:
            [B, 1, H, W] alpha in [0, 1]; the raw prediction everywhere (known regions are
            composited by the engine, not here).
        """
        return self.forward_paths(image, trimap, tcp_trimap).alpha


def build_model(cfg: TCPMattingConfig | str) -> TCPMatting:
    """Build a network from a config or a variant name ("r34", "small", "tiny").

    Raises:
        UnknownVariantError: ``cfg`` names no built-in variant.
    """
    return TCPMatting(variant(cfg) if isinstance(cfg, str) else cfg)


def tcp_matting_r34() -> TCPMatting:
    """The paper's network: ResNet-34 U-Net Semantic Path + 32-channel TCP."""
    return TCPMatting(R34)


def tcp_matting_small() -> TCPMatting:
    """Same design at ~1/4 the cost, for CPU inference; the starter weights use it."""
    return TCPMatting(SMALL)


def tcp_matting_tiny() -> TCPMatting:
    """A few-thousand-parameter variant for tests."""
    return TCPMatting(TINY)
