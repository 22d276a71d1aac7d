"""Inference-time graph simplification that leaves the network's function unchanged.

Batch norm in eval mode is an affine map per channel, so it folds into the convolution that
feeds it (``torch.nn.utils.fusion.fuse_conv_bn_eval``). The folded network skips one full
memory pass per norm layer, which matters most at full resolution, where the TCP's narrow
convs are memory-bound. Results agree with the unfolded network to float rounding: the fold
reorders the same affine arithmetic.
"""

from __future__ import annotations

import copy

from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

#: (conv attribute, norm attribute) pairs that sit back to back inside one module.
_PAIRS = (("conv1", "bn1"), ("conv2", "bn2"), ("conv2", "norm2"))


class FoldedNorm(nn.Identity):
    """Stands where a batch norm was, once :func:`fold_batchnorm` has merged it into the conv
    before it: the identity, and the mark by which a block knows it is folded (its ``folded``
    property; block-sparse inference then fuses the conv with what follows it)."""


def _foldable(conv: object, bn: object) -> bool:
    return (
        isinstance(conv, nn.Conv2d)
        and isinstance(bn, nn.BatchNorm2d)
        and bn.track_running_stats
        and bn.running_mean is not None
        and conv.out_channels == bn.num_features
    )


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """A copy of ``model`` in eval mode with every conv -> BatchNorm2d pair folded into the conv.

    Pairs are recognised structurally: consecutive children of an ``nn.Sequential`` and the
    named ``conv1/bn1``, ``conv2/bn2`` (torchvision ResNet blocks and stem) and
    ``conv2/norm2`` (TCP residual blocks) attributes, whose forward applies the norm directly to
    the conv's output. Folded norms become :class:`FoldedNorm`. GroupNorm is left alone (it depends
    on the input). The original model is not modified; the copy is for inference only (its
    parameters no longer match the training layout, so never save its state_dict as a
    checkpoint).
    """
    folded = copy.deepcopy(model).eval()
    for module in folded.modules():
        if isinstance(module, nn.Sequential):
            names = list(module._modules)
            for a, b in zip(names, names[1:]):
                conv, bn = module._modules[a], module._modules[b]
                if _foldable(conv, bn):
                    module._modules[a] = fuse_conv_bn_eval(conv, bn)
                    module._modules[b] = FoldedNorm()
        for conv_name, bn_name in _PAIRS:
            conv, bn = getattr(module, conv_name, None), getattr(module, bn_name, None)
            if _foldable(conv, bn):
                setattr(module, conv_name, fuse_conv_bn_eval(conv, bn))
                setattr(module, bn_name, FoldedNorm())
    return folded


def count_batchnorm(model: nn.Module) -> int:
    """Number of BatchNorm2d layers left in ``model``."""
    return sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())
