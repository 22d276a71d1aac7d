"""Convolutions on halo patches: the block-wise form of the network's 3x3 layers.

Block-sparse inference (:mod:`vfxmatte.model.sparse`) cuts a feature map into square blocks
and hands a layer each block with a rim of :data:`HALO` pixels taken from its neighbours (or
from the zero border that stands for the dense layer's zero padding). A 3x3 stride-1
convolution *without* padding maps such a patch ``[M, C, B+2, B+2]`` onto its block
``[M, C', B, B]``, holding exactly the values the padded convolution gives there. The blocks
(:mod:`vfxmatte.model.blocks`) build their block-wise forward from these functions.

A layer's *reach* is how many pixels its output depends on beyond its own position, on each
side: ``kernel // 2`` for a stride-1 conv that keeps the size; a chain of layers reaches the
sum of theirs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vfxmatte.errors import ArchitectureError

#: The rim of a gathered patch: the reach of a 3x3 conv, the only layer block-sparse runs.
HALO = 1

#: oneDNN convolution with a fused post-op (the op torch.compile's CPU backend emits); absent
#: from builds without mkldnn, where conv and its ReLU (and residual add) run separately.
_FUSED_CONV = (
    getattr(getattr(torch.ops, "mkldnn", None), "_convolution_pointwise", None)
    if torch.backends.mkldnn.is_available()
    else None
)


def conv_reach(conv: nn.Conv2d) -> int:
    """Pixels ``conv``'s output reaches into its input on each side (``kernel // 2``).

    Raises:
        ArchitectureError: ``conv`` is not a square, odd, stride-1, undilated conv padded to
            keep the size (the only kind the decoder, the head and the TCP use).
    """
    k = conv.kernel_size[0]
    if (conv.kernel_size != (k, k) or k % 2 == 0 or conv.stride != (1, 1) or conv.dilation != (1, 1)
            or conv.padding != (k // 2, k // 2)):
        raise ArchitectureError(f"a size-keeping odd square stride-1 conv is needed here, got {conv}")
    return k // 2


def _check_halo(conv: nn.Conv2d) -> None:
    if conv_reach(conv) != HALO:
        raise ArchitectureError(f"block-sparse inference needs 3x3 stride-1 convs, got {conv}")


def fusable(patches: Tensor) -> bool:
    """Whether oneDNN's fused conv ops apply to ``patches``: CPU float32 inference."""
    return (_FUSED_CONV is not None and patches.device.type == "cpu" and patches.dtype == torch.float32
            and not torch.is_grad_enabled())


def conv_patches(conv: nn.Conv2d, patches: Tensor) -> Tensor:
    """``conv`` (3x3, stride 1, padding 1) on halo patches, without padding -> the blocks."""
    _check_halo(conv)
    return F.conv2d(patches, conv.weight, conv.bias, groups=conv.groups)


def conv_relu_patches(conv: nn.Conv2d, patches: Tensor) -> Tensor:
    """``relu(conv(patches))`` without padding; on the CPU one oneDNN call with the ReLU fused
    as a post-op (a memory pass fewer per layer), elsewhere conv then ReLU."""
    if fusable(patches) and conv.groups == 1:
        _check_halo(conv)
        return _FUSED_CONV(patches, conv.weight, conv.bias, [0, 0], [1, 1], [1, 1], 1, "relu", [], "")
    return torch.relu_(conv_patches(conv, patches))


def conv_add_relu_patches(conv: nn.Conv2d, patches: Tensor, skip: Tensor) -> Tensor:
    """``relu(conv(patches) + skip)`` without padding (``skip``: the blocks, no halo); on the
    CPU one oneDNN call with the add and ReLU fused as post-ops, elsewhere one op at a time."""
    if fusable(patches) and conv.groups == 1:
        _check_halo(conv)
        return _FUSED_CONV.binary(patches, skip, conv.weight, conv.bias, [0, 0], [1, 1], [1, 1], 1,
                                  "add", None, "relu", [], "")
    return torch.relu_(conv_patches(conv, patches) + skip)
