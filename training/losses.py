"""Training losses of paper §3.3: alpha-prediction loss and Background Enhancement Loss.

Both are Charbonnier (smooth L1) distances ``sqrt((alpha - alpha_hat)^2 + eps^2)`` averaged over a
region of the image:

- ``L_a`` (Eq. 3) over the unknown region ``U`` of the Semantic Path trimap;
- ``L_bg`` (Eq. 4) over ``R_bg = {p in U : alpha_p < theta}``, the "pure" background the trimap
  left inside ``U``.

The total is ``w1 * L_a + w2 * L_bg`` with ``w1 = 0.9, w2 = 0.1, theta = 0.1`` (§3.3).

An optional third term, not in the paper, ``w3 * L_grad`` (``loss.grad_weight``, 0 by default, so
the default loss is the paper's): the Charbonnier distance between the derivative-of-Gaussian
gradients (sigma 1.4, the kernels of :func:`vfxmatte.metrics.gradient_error`) of the prediction
and of the truth, x and y, averaged over ``U``. It penalises what the Gradient error measures,
strands blurred or broken along their length, which a per-pixel loss weighs no more than a
uniform offset.

Each term is a per-image mean, as the equations define it (``1 / N_U`` sums over one image's
pixels), then averaged over the images of the batch whose region is not empty. An image with no
pixels in the region contributes nothing; a batch where every region is empty gives an exact 0
that still carries a (zero) gradient, never NaN.

The math runs in float32 whatever the autocast dtype: with ``eps = 1e-6`` the ``eps^2 = 1e-12``
term is below fp16's smallest subnormal.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from vfxmatte.errors import InputError
from vfxmatte.metrics import GRAD_SIGMA, gaussgradient_kernels
from vfxmatte.trimap import UNKNOWN_CHANNEL

#: Charbonnier epsilon. 1e-6 is the value of Deep Image Matting (Xu et al. 2017), whose
#: alpha-prediction loss §3.3 adopts; it only keeps the square root differentiable at 0.
DEFAULT_EPS = 1e-6
#: Background threshold of R_bg (paper §3.3).
DEFAULT_THETA = 0.1
#: Loss weights w1 (alpha prediction) and w2 (background enhancement), paper §3.3.
DEFAULT_ALPHA_WEIGHT = 0.9
DEFAULT_BG_WEIGHT = 0.1


class MattingLoss(NamedTuple):
    total: Tensor  # scalar, w1 * alpha + w2 * bg + w3 * grad
    alpha: Tensor  # scalar L_a (Eq. 3)
    bg: Tensor  # scalar L_bg (Eq. 4)
    grad: Tensor  # scalar L_grad (0, not computed, when w3 is 0)


def _check_alpha(x: Tensor, name: str) -> None:
    if x.dim() != 4 or x.shape[1] != 1:
        raise InputError(f"{name}: expected [B, 1, H, W], got {tuple(x.shape)}")


def _check_region(pred: Tensor, gt: Tensor, unknown: Tensor) -> None:
    """``pred``, ``gt`` and the region mask ``unknown``: each [B, 1, H, W], all the same shape."""
    _check_alpha(pred, "pred")
    _check_alpha(gt, "gt")
    if unknown.shape != pred.shape or gt.shape != pred.shape:
        raise InputError(
            f"loss: pred {tuple(pred.shape)}, gt {tuple(gt.shape)} and unknown {tuple(unknown.shape)} differ"
        )


def charbonnier(pred: Tensor, gt: Tensor, eps: float = DEFAULT_EPS) -> Tensor:
    """Per-pixel Charbonnier distance ``sqrt((pred - gt)^2 + eps^2)``, in float32 or wider."""
    dtype = torch.promote_types(torch.promote_types(pred.dtype, gt.dtype), torch.float32)
    d = pred.to(dtype) - gt.to(dtype)
    return torch.sqrt(d * d + eps * eps)


def masked_image_mean(values: Tensor, mask: Tensor) -> Tensor:
    """Mean of ``values`` over ``mask`` per image, then over images with a non-empty mask.

    Args:
        values: [B, 1, H, W] float.
        mask: [B, 1, H, W] bool.

    Returns:
        Scalar. 0 (connected to ``values`` so backward works) when every mask is empty. No
        data-dependent branch, so no host-device sync on GPU.
    """
    m = mask.to(values.dtype)
    count = m.sum(dim=(1, 2, 3))  # [B]
    total = (values * m).sum(dim=(1, 2, 3))  # [B]
    present = (count > 0).to(values.dtype)
    per_image = total / count.clamp_min(1.0)  # 0 for an empty mask
    return (per_image * present).sum() / present.sum().clamp_min(1.0)


def unknown_mask(trimap: Tensor) -> Tensor:
    """The unknown region ``U`` of a one-hot (bg, unknown, fg) trimap as [B, 1, H, W] bool:
    its :data:`vfxmatte.trimap.UNKNOWN_CHANNEL`, the channel the network reads the band from."""
    if trimap.dim() != 4 or trimap.shape[1] != 3:
        raise InputError(f"trimap: expected one-hot [B, 3, H, W], got {tuple(trimap.shape)}")
    return trimap[:, UNKNOWN_CHANNEL : UNKNOWN_CHANNEL + 1] > 0.5


def alpha_prediction_loss(pred: Tensor, gt: Tensor, unknown: Tensor, eps: float = DEFAULT_EPS) -> Tensor:
    """Paper Eq. 3: Charbonnier distance averaged over the unknown region ``U``.

    Args:
        pred: [B, 1, H, W] predicted alpha.
        gt: [B, 1, H, W] ground-truth alpha.
        unknown: [B, 1, H, W] bool, the unknown region of the Semantic Path trimap.
        eps: Charbonnier epsilon.
    """
    _check_region(pred, gt, unknown)
    return masked_image_mean(charbonnier(pred, gt, eps), unknown.bool())


def background_enhancement_loss(
    pred: Tensor, gt: Tensor, unknown: Tensor, theta: float = DEFAULT_THETA, eps: float = DEFAULT_EPS
) -> Tensor:
    """Paper Eq. 4: Charbonnier distance over ``R_bg = {p in U : gt_p < theta}``."""
    _check_region(pred, gt, unknown)
    region = unknown.bool() & (gt < theta)
    return masked_image_mean(charbonnier(pred, gt, eps), region)


@functools.lru_cache(maxsize=1)
def _gradient_factors() -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The metric's x kernel ``hx`` (:func:`vfxmatte.metrics.gaussgradient_kernels`) is the outer
    product of a Gaussian (down the rows) and its derivative (along the columns), and ``hy`` is
    its transpose: the two 1-D factors, flipped for correlation (a true convolution, as the
    metric's)."""
    hx, _ = gaussgradient_kernels(GRAD_SIGMA)
    u, s, vt = np.linalg.svd(hx)  # rank 1: hx == s0 * u0 vt0
    smooth, deriv = u[:, 0] * np.sqrt(s[0]), vt[0] * np.sqrt(s[0])
    return tuple(smooth[::-1].tolist()), tuple(deriv[::-1].tolist())


def _correlate(x: Tensor, taps: tuple[float, ...], dim: int) -> Tensor:
    """1-D correlation along ``dim`` (-2 rows, -1 columns) of a tensor padded by ``len(taps) // 2``
    on that axis, as shifted sums: a single-channel conv2d is ~15x slower on CPU."""
    n = x.shape[dim] - (len(taps) - 1)
    return sum(t * x.narrow(dim, i, n) for i, t in enumerate(taps))


def gradient_loss(pred: Tensor, gt: Tensor, unknown: Tensor, eps: float = DEFAULT_EPS) -> Tensor:
    """Charbonnier distance of the x and y derivative-of-Gaussian gradients, averaged over ``U``.

    The filtering replicates the border (as :func:`vfxmatte.metrics.gaussgradient`), in float32
    or wider; a pixel's term is the sum of its x and y distances. The filter is linear, so it
    runs once, on ``pred - gt``.
    """
    _check_region(pred, gt, unknown)
    dtype = torch.promote_types(torch.promote_types(pred.dtype, gt.dtype), torch.float32)
    smooth, deriv = _gradient_factors()
    half = len(smooth) // 2
    d = F.pad(pred.to(dtype) - gt.to(dtype), (half, half, half, half), mode="replicate")
    gx = _correlate(_correlate(d, smooth, -2), deriv, -1)
    gy = _correlate(_correlate(d, smooth, -1), deriv, -2)
    zero = torch.zeros((), dtype=dtype, device=pred.device)
    per_pixel = charbonnier(gx, zero, eps) + charbonnier(gy, zero, eps)
    return masked_image_mean(per_pixel, unknown.bool())


def matting_loss(
    pred: Tensor,
    gt: Tensor,
    trimap: Tensor,
    *,
    alpha_weight: float = DEFAULT_ALPHA_WEIGHT,
    bg_weight: float = DEFAULT_BG_WEIGHT,
    theta: float = DEFAULT_THETA,
    eps: float = DEFAULT_EPS,
    grad_weight: float = 0.0,
) -> MattingLoss:
    """Full loss of §3.3: ``alpha_weight * L_a + bg_weight * L_bg``, plus
    ``grad_weight * L_grad`` (:func:`gradient_loss`) when ``grad_weight`` is not 0.

    Args:
        pred: [B, 1, H, W] predicted alpha in [0, 1].
        gt: [B, 1, H, W] ground-truth alpha in [0, 1].
        trimap: [B, 3, H, W] one-hot (bg, unknown, fg) Semantic Path trimap; its unknown
            channel defines ``U`` (the TCP's noisier trimap does not enter the loss).

    Example:
        >>> pred = torch.full((1, 1, 2, 2), 0.5)
        >>> gt = torch.tensor([[[[0.0, 1.0], [0.5, 0.0]]]])
        >>> tri = torch.zeros(1, 3, 2, 2); tri[:, UNKNOWN_CHANNEL] = 1
        >>> round(float(matting_loss(pred, gt, tri, eps=0.0).alpha), 4)
        0.375
    """
    _check_alpha(pred, "pred")
    unknown = unknown_mask(trimap)
    if trimap.shape[0] != pred.shape[0] or trimap.shape[-2:] != pred.shape[-2:]:
        raise InputError(f"trimap: shape {tuple(trimap.shape)} does not match pred {tuple(pred.shape)}")
    l_a = alpha_prediction_loss(pred, gt, unknown, eps)
    l_bg = background_enhancement_loss(pred, gt, unknown, theta, eps)
    total = alpha_weight * l_a + bg_weight * l_bg
    if grad_weight:
        l_grad = gradient_loss(pred, gt, unknown, eps)
        total = total + grad_weight * l_grad
    else:
        l_grad = torch.zeros((), dtype=total.dtype, device=total.device)
    return MattingLoss(total, l_a, l_bg, l_grad)
