"""Small conv building blocks shared by the Semantic Path decoder and the TCP.

Each block declares its :attr:`reach` (pixels its output depends on beyond its own position,
derived from its conv kernels, :func:`vfxmatte.model.halo.conv_reach`) and has a block-wise
forward on halo patches, which block-sparse inference (:mod:`vfxmatte.model.sparse`) runs on
the blocks of the frame near the unknown band. After :func:`vfxmatte.model.fuse.fold_batchnorm`
a block's norm is gone and :attr:`folded` says so; the block-wise forward then fuses the conv
with the ReLU (and residual add) after it.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Callable, get_args

import torch
from torch import Tensor, nn

from vfxmatte.errors import ArchitectureError
from vfxmatte.model.config import Norm
from vfxmatte.model.fuse import FoldedNorm
from vfxmatte.model.halo import conv_add_relu_patches, conv_patches, conv_reach, conv_relu_patches

if TYPE_CHECKING:
    from vfxmatte.model.sparse import BlockRunner

def make_norm(kind: str, channels: int) -> nn.Module:
    """A norm layer over ``channels``: ``batch`` or ``group`` (at most 8 groups).

    Raises:
        ArchitectureError: ``kind`` is not one of :data:`vfxmatte.model.config.Norm`.
    """
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "group":
        return nn.GroupNorm(min(8, channels), channels)
    raise ArchitectureError(f"norm: unknown norm {kind!r} (choose from {', '.join(get_args(Norm))})")


class ConvNormReLU(nn.Sequential):
    """3x3 (or kxk) conv -> norm -> ReLU; the conv has no bias since the norm follows.

    An ``nn.Sequential`` so that its parameters keep the names ``0.weight``, ``1.running_mean``
    that checkpoints store; :attr:`conv` and :attr:`norm` name the children.
    """

    def __init__(self, cin: int, cout: int, norm: str, kernel: int = 3) -> None:
        super().__init__(
            nn.Conv2d(cin, cout, kernel, 1, kernel // 2, bias=False),
            make_norm(norm, cout),
            nn.ReLU(inplace=True),
        )

    @property
    def conv(self) -> nn.Conv2d:
        return self[0]

    @property
    def norm(self) -> nn.Module:
        return self[1]

    @property
    def out_channels(self) -> int:
        return self.conv.out_channels

    @property
    def reach(self) -> int:
        """Pixels the output reaches into the input on each side: the conv's."""
        return conv_reach(self.conv)

    @property
    def folded(self) -> bool:
        """True once the norm has been folded into the conv (only the ReLU follows it)."""
        return isinstance(self.norm, FoldedNorm)

    def forward_patches(self, patches: Tensor) -> Tensor:
        """The block-wise forward: halo patches [M, C, B+2, B+2] -> blocks [M, C', B, B]."""
        if self.folded:
            return conv_relu_patches(self.conv, patches)
        y = conv_patches(self.conv, patches)
        for m in (self.norm, self[2]):  # eval-mode batch norm, then ReLU: both per pixel
            y = m(y)
        return y

    def forward_sparse(
        self,
        run: "BlockRunner",
        src: Tensor | list[Tensor],
        reach: int,
        extra: Callable[[tuple[Tensor, Tensor, Tensor]], Tensor] | None = None,
    ) -> Tensor:
        """The layer on the blocks within ``reach`` of the band: bordered buffer(s) in, one out
        (``extra``: more input channels, as halo patches per block list)."""
        return run.conv(self.forward_patches, src, reach, self.out_channels, extra=extra)


class ResidualBlock(nn.Module):
    """Two 3x3 conv-norm layers with an identity shortcut, at constant resolution (§3.2)."""

    def __init__(self, channels: int, norm: str) -> None:
        super().__init__()
        self.conv1 = ConvNormReLU(channels, channels, norm)
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1, bias=False)
        self.norm2 = make_norm(norm, channels)
        self.relu = nn.ReLU(inplace=True)

    @property
    def reach(self) -> int:
        """Pixels the output reaches into the input on each side: both convs'."""
        return self.conv1.reach + conv_reach(self.conv2)

    @property
    def folded(self) -> bool:
        """True once both norms have been folded into their convs."""
        return self.conv1.folded and isinstance(self.norm2, FoldedNorm)

    def forward(self, x: Tensor) -> Tensor:
        return self.relu(x + self.norm2(self.conv2(self.conv1(x))))

    def forward_patches(self, patches: Tensor, skip: Tensor) -> Tensor:
        """The second layer block-wise: ``conv1``'s output as halo patches and the block's
        input (``skip``, no halo) -> the block's output on the blocks."""
        if self.folded:
            return conv_add_relu_patches(self.conv2, patches, skip)
        return self.relu(self.norm2(conv_patches(self.conv2, patches)) + skip)

    def forward_sparse(self, run: "BlockRunner", src: Tensor, reach: int) -> Tensor:
        """The block on the blocks within ``reach`` of the band: its first layer where the
        second reads it (``reach`` grown by the second conv's reach), then the second."""
        mid = self.conv1.forward_sparse(run, src, reach + conv_reach(self.conv2))
        return run.conv(self.forward_patches, mid, reach, self.conv2.out_channels, skip=src)


def cat_channels(tensors: list[Tensor]) -> Tensor:
    """``torch.cat(tensors, dim=1)``, faster for channels_last tensors at inference.

    On the CPU, torch 2.x concatenates channels_last tensors along channels through a slow
    generic path, several times slower than copying each into its slice of a preallocated
    output. Without autograd the slices are filled directly; with autograd ``torch.cat`` keeps
    its simple backward. Both give identical values.
    """
    first = tensors[0]
    if torch.is_grad_enabled() or first.dim() != 4 or not first.is_contiguous(memory_format=torch.channels_last):
        return torch.cat(tensors, dim=1)
    n, _, h, w = first.shape
    out = torch.empty(
        (n, sum(t.shape[1] for t in tensors), h, w),
        dtype=functools.reduce(torch.promote_types, [t.dtype for t in tensors]),
        device=first.device,
        memory_format=torch.channels_last,
    )
    c = 0
    for t in tensors:
        out[:, c : c + t.shape[1]].copy_(t)
        c += t.shape[1]
    return out
