"""Losses of paper §3.3 against values computed by hand."""

import math

import numpy as np
import pytest
import torch

from training.losses import (
    DEFAULT_EPS,
    alpha_prediction_loss,
    background_enhancement_loss,
    charbonnier,
    gradient_loss,
    matting_loss,
    unknown_mask,
)
from vfxmatte import metrics
from vfxmatte.errors import InputError


def onehot(labels):
    """[B, H, W] labels 0 bg / 1 unknown / 2 fg -> one-hot [B, 3, H, W]."""
    t = torch.as_tensor(labels)
    return torch.nn.functional.one_hot(t, 3).permute(0, 3, 1, 2).float()


def a(rows):
    return torch.tensor(rows, dtype=torch.float32)[None, None]  # [1, 1, H, W]


# One 2x3 image: unknown band in the middle column and the bottom row.
PRED = a([[0.0, 0.5, 1.0], [0.2, 0.6, 0.9]])
GT = a([[0.0, 0.05, 1.0], [0.0, 0.3, 1.0]])
TRIMAP = onehot([[[0, 1, 2], [1, 1, 1]]])
# U = (0,1), (1,0), (1,1), (1,2): |d| = 0.45, 0.2, 0.3, 0.1
# R_bg = {p in U: gt < 0.1} = (0,1), (1,0): |d| = 0.45, 0.2


def test_charbonnier_is_sqrt_of_square_plus_eps_squared():
    d = charbonnier(torch.tensor([0.0, 0.3]), torch.tensor([0.0, 0.0]), eps=0.1)
    assert torch.allclose(d, torch.tensor([0.1, math.sqrt(0.09 + 0.01)]))


def test_alpha_loss_is_mean_over_unknown_eq3():
    la = alpha_prediction_loss(PRED, GT, unknown_mask(TRIMAP), eps=0.0)
    assert la.item() == pytest.approx((0.45 + 0.2 + 0.3 + 0.1) / 4, abs=1e-6)


def test_bg_loss_covers_unknown_pixels_below_theta_eq4():
    lbg = background_enhancement_loss(PRED, GT, unknown_mask(TRIMAP), theta=0.1, eps=0.0)
    assert lbg.item() == pytest.approx((0.45 + 0.2) / 2, abs=1e-6)
    # Known background (gt 0 outside U) never counts: (0,0) has gt 0 but is bg in the trimap.
    only_known = background_enhancement_loss(PRED, GT, torch.zeros_like(GT, dtype=torch.bool), eps=0.0)
    assert only_known.item() == 0.0


def test_total_is_weighted_sum_with_paper_weights():
    terms = matting_loss(PRED, GT, TRIMAP, eps=0.0)
    la, lbg = 1.05 / 4, 0.65 / 2
    assert terms.alpha.item() == pytest.approx(la, abs=1e-6)
    assert terms.bg.item() == pytest.approx(lbg, abs=1e-6)
    assert terms.total.item() == pytest.approx(0.9 * la + 0.1 * lbg, abs=1e-6)


def test_eps_enters_every_pixel():
    eps = 0.05
    terms = matting_loss(PRED, GT, TRIMAP, eps=eps)
    expect = sum(math.sqrt(d * d + eps * eps) for d in (0.45, 0.2, 0.3, 0.1)) / 4
    assert terms.alpha.item() == pytest.approx(expect, abs=1e-6)


def test_default_eps_is_dim_value():
    assert DEFAULT_EPS == 1e-6
    # A perfect prediction costs exactly eps per pixel.
    assert matting_loss(GT, GT, TRIMAP).alpha.item() == pytest.approx(1e-6, rel=1e-3)


def test_per_image_mean_then_batch_mean():
    # Image 1: one unknown pixel with error 0.4; image 2: three unknown pixels with error 0.1.
    pred = torch.zeros(2, 1, 1, 3)
    gt = torch.tensor([[[[0.4, 0.0, 0.0]]], [[[0.1, 0.1, 0.1]]]])
    tri = onehot([[[1, 0, 0]], [[1, 1, 1]]])
    la = matting_loss(pred, gt, tri, eps=0.0).alpha.item()
    assert la == pytest.approx((0.4 + 0.1) / 2, abs=1e-6)  # not the pooled (0.4 + 0.3) / 4


def test_image_with_empty_unknown_is_skipped_not_averaged_as_zero():
    pred = torch.zeros(2, 1, 1, 2)
    gt = torch.tensor([[[[0.5, 0.5]]], [[[0.9, 0.9]]]])
    tri = onehot([[[1, 1]], [[0, 2]]])
    assert matting_loss(pred, gt, tri, eps=0.0).alpha.item() == pytest.approx(0.5, abs=1e-6)


def test_empty_regions_give_zero_with_gradient_not_nan():
    pred = torch.full((1, 1, 2, 2), 0.7, requires_grad=True)
    gt = torch.full((1, 1, 2, 2), 0.5)  # no pixel below theta: R_bg empty
    terms = matting_loss(pred, gt, onehot([[[1, 1], [0, 2]]]))
    assert terms.bg.item() == 0.0
    assert terms.total.item() == pytest.approx(0.9 * terms.alpha.item())
    no_unknown = matting_loss(pred, gt, onehot([[[0, 2], [0, 2]]]))
    assert no_unknown.total.item() == 0.0
    no_unknown.total.backward()
    assert pred.grad is not None and torch.isfinite(pred.grad).all() and (pred.grad == 0).all()


def test_gradient_flows_only_from_unknown_region():
    pred = PRED.clone().requires_grad_(True)
    matting_loss(pred, GT, TRIMAP).total.backward()
    g = pred.grad[0, 0]
    assert g[0, 0] == 0 and g[0, 2] == 0  # known bg and fg pixels
    assert (g[1] != 0).all() and g[0, 1] != 0


def test_half_precision_inputs_are_computed_in_float32():
    terms = matting_loss(PRED.half(), GT.half(), TRIMAP.half(), eps=1e-6)
    assert terms.total.dtype == torch.float32
    assert torch.isfinite(terms.total)


def test_gradcheck():
    pred = torch.rand(2, 1, 4, 4, dtype=torch.float64, requires_grad=True)
    gt = torch.rand(2, 1, 4, 4, dtype=torch.float64) * 0.3
    tri = onehot(torch.randint(0, 3, (2, 4, 4))).double()
    tri[:, :, 0, 0] = torch.tensor([0.0, 1.0, 0.0])  # at least one unknown pixel per image
    assert torch.autograd.gradcheck(lambda p: matting_loss(p, gt, tri, eps=1e-3).total, (pred,))


@pytest.mark.parametrize(
    "pred_shape, tri_shape",
    [((1, 3, 4, 4), (1, 3, 4, 4)), ((1, 1, 4, 4), (1, 1, 4, 4)), ((1, 1, 4, 4), (1, 3, 4, 5))],
)
def test_bad_shapes_raise_input_error(pred_shape, tri_shape):
    with pytest.raises(InputError):
        matting_loss(torch.zeros(pred_shape), torch.zeros(pred_shape), torch.zeros(tri_shape))


# ----------------------------------------------------------------------------------------------
# The optional gradient term (loss.grad_weight; not in the paper)
# ----------------------------------------------------------------------------------------------


def test_gradient_loss_filters_as_the_metric_does():
    """Its x and y gradients are vfxmatte.metrics.gaussgradient's (a true convolution with a
    replicated border): the loss of a matte against zeros is the mean of |gx| + |gy| over U."""
    rng = np.random.default_rng(5)
    pred = rng.random((12, 14))
    band = rng.random((12, 14)) < 0.5
    gx, gy = metrics.gaussgradient(pred)
    expect = (np.abs(gx) + np.abs(gy))[band].mean()
    got = gradient_loss(torch.from_numpy(pred)[None, None].float(), torch.zeros(1, 1, 12, 14),
                        torch.from_numpy(band)[None, None], eps=0.0)
    assert got.item() == pytest.approx(expect, rel=1e-5)


def test_gradient_loss_sees_a_blurred_strand_that_an_offset_costs_the_same_under_l_a():
    """A strand blurred to half its height and a flat offset have about the same L_a; only the
    blurred strand loses its edges, and the gradient term tells them apart."""
    gt = torch.zeros(1, 1, 32, 32)
    gt[..., :, 15:17] = 1.0  # a 2-pixel vertical strand
    blurred = torch.nn.functional.avg_pool2d(gt, (1, 5), stride=1, padding=(0, 2))
    unknown = torch.ones_like(gt, dtype=torch.bool)
    offset = (gt + (blurred - gt).abs().mean()).clamp(0, 1)
    la_blur = alpha_prediction_loss(blurred, gt, unknown, eps=0.0).item()
    la_off = alpha_prediction_loss(offset, gt, unknown, eps=0.0).item()
    assert la_off == pytest.approx(la_blur, rel=0.15)
    assert gradient_loss(blurred, gt, unknown).item() > 5 * gradient_loss(offset, gt, unknown).item()
    assert gradient_loss(gt, gt, unknown).item() == pytest.approx(2e-6, rel=1e-3)  # 2 eps: x and y


def test_grad_weight_adds_the_term_and_zero_leaves_the_papers_loss():
    paper = matting_loss(PRED, GT, TRIMAP, eps=0.0)
    assert paper.grad.item() == 0.0
    with_grad = matting_loss(PRED, GT, TRIMAP, eps=0.0, grad_weight=0.5)
    lg = gradient_loss(PRED, GT, unknown_mask(TRIMAP), eps=0.0).item()
    assert lg > 0
    assert with_grad.grad.item() == pytest.approx(lg)
    assert with_grad.total.item() == pytest.approx(paper.total.item() + 0.5 * lg, abs=1e-6)


def test_gradient_term_is_differentiable():
    torch.manual_seed(0)
    pred = torch.rand(1, 1, 10, 10, dtype=torch.float64, requires_grad=True)
    gt = torch.rand(1, 1, 10, 10, dtype=torch.float64)
    tri = onehot(torch.randint(0, 3, (1, 10, 10)))
    assert torch.autograd.gradcheck(
        lambda p: matting_loss(p, gt, tri, eps=1e-3, grad_weight=1.0).total, (pred,))
