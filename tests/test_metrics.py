"""vfxmatte.metrics against hand-computed values and a plain re-implementation of the MATLAB code.

The reference functions below transcribe compute_gradient_loss.m / gaussgradient.m and
compute_connectivity_error.m with explicit loops (1-based kernel indices, replicate-padded
convolution, flood-fill labelling scanned in MATLAB's column-major order), independently of the
vectorised scipy code under test.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np
import pytest

from vfxmatte import metrics
from vfxmatte.errors import InputError, TrimapError

U = 0.5  # unknown


# ----------------------------------------------------------------------------------------------
# Reference implementations (loops, MATLAB semantics)
# ----------------------------------------------------------------------------------------------


def ref_mat2gray(a):
    lo, hi = a.min(), a.max()
    return np.clip(a, 0, 1) if hi == lo else (a - lo) / (hi - lo)


def ref_kernel(sigma):
    eps = 1e-2
    half = math.ceil(sigma * math.sqrt(-2 * math.log(math.sqrt(2 * math.pi) * sigma * eps)))
    size = 2 * half + 1
    gauss = lambda x: math.exp(-(x**2) / (2 * sigma**2)) / (sigma * math.sqrt(2 * math.pi))  # noqa: E731
    dgauss = lambda x: -x * gauss(x) / sigma**2  # noqa: E731
    hx = np.zeros((size, size))
    for i in range(1, size + 1):
        for j in range(1, size + 1):
            hx[i - 1, j - 1] = gauss(i - half - 1) * dgauss(j - half - 1)
    hx /= math.sqrt((np.abs(hx) * np.abs(hx)).sum())
    return hx, hx.T


def ref_conv_replicate(im, k):
    """imfilter(im, k, 'replicate', 'conv') with loops."""
    h, w = im.shape
    c = k.shape[0] // 2
    out = np.zeros_like(im, dtype=np.float64)
    for y in range(h):
        for x in range(w):
            acc = 0.0
            for i in range(k.shape[0]):
                for j in range(k.shape[1]):
                    yy = min(max(y - (i - c), 0), h - 1)  # convolution: flipped kernel
                    xx = min(max(x - (j - c), 0), w - 1)
                    acc += k[i, j] * im[yy, xx]
            out[y, x] = acc
    return out


def ref_grad(pred, gt, trimap):
    hx, hy = ref_kernel(1.4)
    amps = []
    for a in (ref_mat2gray(pred), ref_mat2gray(gt)):
        gx, gy = ref_conv_replicate(a, hx), ref_conv_replicate(a, hy)
        amps.append(np.sqrt(gx**2 + gy**2))
    return float((((amps[0] - amps[1]) ** 2) * (trimap == U)).sum() / 1000)


def ref_components_colmajor(mask):
    """bwconncomp(mask, 4): components numbered in column-major scan order."""
    h, w = mask.shape
    seen = np.zeros_like(mask, dtype=bool)
    comps = []
    for x in range(w):
        for y in range(h):
            if mask[y, x] and not seen[y, x]:
                comp, queue = [], deque([(y, x)])
                seen[y, x] = True
                while queue:
                    cy, cx = queue.popleft()
                    comp.append((cy, cx))
                    for ny, nx in ((cy - 1, cx), (cy + 1, cx), (cy, cx - 1), (cy, cx + 1)):
                        if 0 <= ny < h and 0 <= nx < w and mask[ny, nx] and not seen[ny, nx]:
                            seen[ny, nx] = True
                            queue.append((ny, nx))
                comps.append(comp)
    return comps


def ref_conn(pred, gt, trimap):
    steps = [0, 0.1, 0.2, 0.3, 0.4, 0.5, 1 - 0.4, 1 - 0.3, 1 - 0.2, 1 - 0.1, 1.0]  # MATLAB 0:0.1:1
    lmap = -np.ones(pred.shape)
    for ii in range(1, len(steps)):
        comps = ref_components_colmajor((pred >= steps[ii]) & (gt >= steps[ii]))
        omega = np.zeros(pred.shape)
        if comps:
            sizes = [len(c) for c in comps]
            for y, x in comps[sizes.index(max(sizes))]:  # list.index: the first maximum, like max()
                omega[y, x] = 1
        flag = (lmap == -1) & (omega == 0)
        lmap[flag] = steps[ii - 1]
    lmap[lmap == -1] = 1
    pd, gd = pred - lmap, gt - lmap
    pphi = 1 - pd * (pd >= 0.15)
    gphi = 1 - gd * (gd >= 0.15)
    return float((np.abs(pphi - gphi) * (trimap == U)).sum() / 1000)


def random_case(rng, h=10, w=12):
    """8-bit-valued mattes with flat runs (ties, exact 0/1) and a trimap with all three labels."""
    gt = np.round(np.clip(rng.normal(0.5, 0.45, (h, w)), 0, 1) * 255) / 255
    noise = rng.integers(-60, 61, (h, w)) * (rng.random((h, w)) < 0.6)
    pred = np.clip(np.round(gt * 255) + noise, 0, 255) / 255
    trimap = np.full((h, w), U, np.float32)
    trimap[rng.random((h, w)) < 0.15] = 0.0
    trimap[rng.random((h, w)) < 0.15] = 1.0
    return pred, gt, trimap


# ----------------------------------------------------------------------------------------------
# SAD / MSE
# ----------------------------------------------------------------------------------------------


def test_sad_mse_hand_computed_over_unknown_band_only():
    pred = np.array([[0.2, 0.5], [1.0, 0.0]])
    gt = np.array([[0.0, 0.5], [0.5, 1.0]])
    trimap = np.array([[U, 1.0], [U, 0.0]], np.float32)  # (1, 1) is wrong by 1 but known
    assert metrics.sad(pred, gt, trimap) == pytest.approx((0.2 + 0.5) / 1000)
    assert metrics.mse(pred, gt, trimap) == pytest.approx((0.04 + 0.25) / 2)


def test_sad_breakdown_splits_the_band_sad_by_truth_and_sign():
    # band pixels: background truth predicted 0.3, partial truth 0.5 predicted 0.2 (under) and
    # 0.4 predicted 0.9 (over), opaque truth predicted 0.6; a known pixel wrong by 1 is not scored
    pred = np.array([[0.3, 0.2, 0.9], [0.6, 0.0, 0.0]])
    gt = np.array([[0.0, 0.5, 0.4], [1.0, 1.0, 0.0]])
    trimap = np.array([[U, U, U], [U, 1.0, 0.0]], np.float32)
    b = metrics.sad_breakdown(pred, gt, trimap)
    assert b == pytest.approx({"background": 0.3e-3, "partial": 0.8e-3, "opaque": 0.4e-3,
                               "partial_under": 0.3e-3, "partial_over": 0.5e-3})
    assert sum(b[k] for k in ("background", "partial", "opaque")) == pytest.approx(metrics.sad(pred, gt, trimap))


def test_mse_of_empty_band_is_nan_like_matlab():
    t = np.ones((3, 3), np.float32)
    assert math.isnan(metrics.mse(np.zeros((3, 3)), np.ones((3, 3)), t))
    assert metrics.sad(np.zeros((3, 3)), np.ones((3, 3)), t) == 0.0


def test_perfect_prediction_scores_zero(rng):
    _, gt, trimap = random_case(rng)
    assert metrics.evaluate(gt, gt, trimap) == {"sad": 0.0, "mse": 0.0, "grad": 0.0, "conn": 0.0}


def test_quantize_8bit_rounds_to_png_levels():
    q = metrics.quantize_8bit(np.array([0.0, 0.5, 1.2, -0.1, 100.4 / 255]))
    np.testing.assert_allclose(q * 255, [0, 128, 255, 0, 100], atol=1e-4)
    assert q.dtype == np.float32


# ----------------------------------------------------------------------------------------------
# Gradient
# ----------------------------------------------------------------------------------------------


def test_gradient_kernel_is_9x9_unit_norm_derivative_along_x():
    hx, hy = metrics.gaussgradient_kernels(1.4)
    ref_hx, _ = ref_kernel(1.4)
    assert hx.shape == (9, 9)  # halfsize = ceil(1.4 * sqrt(-2 log(sqrt(2 pi) 1.4 0.01))) = 4
    np.testing.assert_allclose(hx, ref_hx, rtol=1e-12)
    np.testing.assert_allclose(hy, hx.T)
    assert (hx**2).sum() == pytest.approx(1.0)
    # A ramp increasing along x has a pure x gradient.
    gx, gy = metrics.gaussgradient(np.tile(np.arange(20.0), (20, 1)))
    assert np.abs(gy).max() < 1e-12 and np.abs(gx[10, 10]) > 0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gradient_matches_loop_reference(seed):
    pred, gt, trimap = random_case(np.random.default_rng(seed))
    assert metrics.gradient_error(pred, gt, trimap) == pytest.approx(ref_grad(pred, gt, trimap), rel=1e-10)


def test_gradient_is_scale_invariant_through_mat2gray():
    _, gt, trimap = random_case(np.random.default_rng(5))
    assert metrics.gradient_error(0.5 * gt, gt, trimap) == pytest.approx(0.0, abs=1e-12)


def test_gradient_ignores_errors_far_from_the_band():
    gt = np.zeros((20, 20))
    gt[:, 10:] = 1.0
    trimap = np.zeros((20, 20), np.float32)
    trimap[:, 9:11] = U
    trimap[:, 11:] = 1.0
    pred = gt.copy()
    pred[0:3, 0:3] = 0.4  # more than the 4-pixel kernel radius away from the band
    assert metrics.gradient_error(pred, gt, trimap) == 0.0
    assert metrics.sad(pred, gt, trimap) == 0.0


# ----------------------------------------------------------------------------------------------
# Connectivity
# ----------------------------------------------------------------------------------------------


def test_connectivity_hand_computed_isolated_island():
    # Pixel 3 is foreground in both mattes but cut off from the main blob {0, 1}: its level is 0,
    # phi_pred = 1 - 0.5, phi_gt = 1 - 1, so the error is 0.5 / 1000.
    gt = np.array([[1.0, 1.0, 0.0, 1.0]])
    pred = np.array([[1.0, 1.0, 0.0, 0.5]])
    assert metrics.connectivity_error(pred, gt, np.full((1, 4), U, np.float32)) == pytest.approx(0.5 / 1000)


def test_connectivity_never_takes_the_background_as_the_largest_component():
    # The background run (4 px) outnumbers the foreground blob (2 px). With the blob as omega,
    # pixel 1 sits at level 0.5 and both phis are 1: no error. Taking the background as omega
    # (a known bug of some ports) would put pixel 1 at level 0 and score |0.45 - 0.5| / 1000.
    gt = np.array([[1.0, 0.5, 0.0, 0.0, 0.0, 0.0]])
    pred = np.array([[1.0, 0.55, 0.0, 0.0, 0.0, 0.0]])
    trimap = np.full(gt.shape, U, np.float32)
    assert metrics.connectivity_error(pred, gt, trimap) == pytest.approx(0.0, abs=1e-15)
    assert metrics.sad(pred, gt, trimap) == pytest.approx(0.05 / 1000)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_connectivity_thresholds_follow_matlab_colon_for_8bit_levels(dtype):
    # 153/255 == 0.6 must pass the 0.6 threshold (MATLAB's 0.6 is 1 - 4*0.1, not 6*0.1):
    # level 0.6 -> phi_gt = 1 - 0.4 and phi_pred = 1, error 0.4 / 1000 (0.5 / 1000 otherwise).
    gt = np.array([[1.0, 1.0, 0.0]], dtype)
    pred = np.array([[1.0, 153 / 255, 0.0]], dtype)
    err = metrics.connectivity_error(pred, gt, np.full((1, 3), U, np.float32))
    assert err == pytest.approx(0.4 / 1000, rel=1e-6)


def test_connectivity_tie_goes_to_first_component_in_column_major_order():
    mask = np.array([[0, 0, 1, 0], [1, 0, 0, 0]], bool)  # two 1-px components
    omega = metrics._largest_component(mask)
    assert omega[1, 0] and not omega[0, 2]  # (1, 0) comes first scanning columns


@pytest.mark.parametrize("seed", range(6))
def test_connectivity_matches_loop_reference(seed):
    pred, gt, trimap = random_case(np.random.default_rng(100 + seed))
    assert metrics.connectivity_error(pred, gt, trimap) == pytest.approx(ref_conn(pred, gt, trimap), abs=1e-12)


def test_connectivity_of_all_zero_prediction():
    gt = np.zeros((4, 4))
    gt[1:3, 1:3] = 1.0
    trimap = np.full((4, 4), U, np.float32)
    pred = np.zeros((4, 4))
    # No shared foreground at any threshold: every level is 0, phi_gt = 0 on the 4 fg pixels.
    assert metrics.connectivity_error(pred, gt, trimap) == pytest.approx(4 / 1000)
    assert metrics.connectivity_error(pred, gt, trimap) == pytest.approx(ref_conn(pred, gt, trimap))


# ----------------------------------------------------------------------------------------------
# Input checks
# ----------------------------------------------------------------------------------------------


def test_shape_mismatch_names_pred():
    with pytest.raises(InputError, match="pred"):
        metrics.evaluate(np.zeros((3, 4)), np.zeros((3, 3)), np.full((3, 3), U))


def test_nan_names_the_argument():
    bad = np.zeros((3, 3))
    bad[1, 1] = np.nan
    with pytest.raises(InputError, match="gt.*NaN"):
        metrics.sad(np.zeros((3, 3)), bad, np.full((3, 3), U))


def test_values_outside_unit_range_are_rejected():
    with pytest.raises(InputError, match=r"pred.*\[0, 1\]"):
        metrics.mse(np.full((2, 2), 255.0), np.zeros((2, 2)), np.full((2, 2), U))


def test_rgb_matte_is_rejected():
    with pytest.raises(InputError, match="gt"):
        metrics.sad(np.zeros((2, 2)), np.zeros((2, 2, 3)), np.full((2, 2), U))


def test_trimap_is_validated():
    with pytest.raises(TrimapError):
        metrics.evaluate(np.zeros((2, 2)), np.zeros((2, 2)), np.full((2, 2), 128.0))
    with pytest.raises(InputError, match="trimap"):
        metrics.evaluate(np.zeros((2, 2)), np.zeros((2, 2)), np.full((3, 2), U))


# ----------------------------------------------------------------------------------------------
# Temporal metrics
# ----------------------------------------------------------------------------------------------


def test_dtssd_hand_computed_and_averaged_over_all_frames():
    gts = np.zeros((3, 1, 2))
    preds = gts.copy()
    preds[1, 0, 0] = 0.5  # a flash on frame 1
    # pair (0, 1): sqrt(0.5^2) = 0.5; pair (1, 2): 0.5; TCVOM divides by T = 3 frames.
    assert metrics.dtssd(preds, gts) == pytest.approx(1.0 / 3)


def test_dtssd_ignores_a_constant_error_and_uses_frame_t_band():
    gts = np.random.default_rng(0).random((4, 5, 5)) * 0.8
    assert metrics.dtssd(gts + 0.1, gts) == pytest.approx(0.0, abs=1e-12)
    preds = gts.copy()
    preds[1, 2, 2] += 0.2
    trimaps = np.zeros((4, 5, 5), np.float32)
    trimaps[0, 2, 2] = U  # only frame 0's band holds the pixel: pair (1, 2) is not scored
    assert metrics.dtssd(preds, gts, trimaps) == pytest.approx(0.2 / 4)


def test_messddt_zero_flow_hand_computed():
    gts = np.zeros((2, 1, 2))
    preds = gts.copy()
    preds[0, 0, 0] = 0.5
    flows = np.zeros((1, 1, 2, 2))
    # |E_0^2 - E_1^2| = 0.25 at one pixel, / T = 2.
    assert metrics.messddt(preds, gts, flows) == pytest.approx(0.125)


def test_messddt_follows_motion_and_skips_nan_flow():
    t, h, w = 3, 6, 10
    gts = np.zeros((t, h, w))
    preds = np.zeros((t, h, w))
    for k in range(t):
        gts[k, 2:4, 2 + k : 5 + k] = 1.0
        preds[k, 2:4, 2 + k : 5 + k] = 1.0
        preds[k, 2, 2 + k] = 0.7  # an error that travels with the object
    moving = np.zeros((t - 1, h, w, 2))
    moving[..., 0] = 1.0  # every pixel moves one pixel right
    assert metrics.messddt(preds, gts, moving) == pytest.approx(0.0, abs=1e-12)
    assert metrics.messddt(preds, gts, np.zeros_like(moving)) > 0.0
    all_nan = np.full_like(moving, np.nan)
    assert metrics.messddt(preds, gts, all_nan) == 0.0


def test_messddt_bilinear_sampling_with_zero_padding():
    gts = np.zeros((2, 1, 3))
    preds = np.zeros((2, 1, 3))
    preds[1, 0, 1] = 0.4  # E_1 = [0, 0.4, 0]
    flows = np.zeros((1, 1, 3, 2))
    flows[0, 0, 0, 0] = 0.5  # pixel 0 samples halfway to pixel 1: E = 0.2
    flows[0, 0, 2, 0] = 1.0  # pixel 2 samples outside the frame: zero
    assert metrics.messddt(preds, gts, flows) == pytest.approx((0.04 + 0.16) / 2)


def test_gt_motion_shape_and_default_flow():
    gts = np.zeros((3, 24, 32), np.float32)
    for k in range(3):
        gts[k, 8:16, 8 + 2 * k : 16 + 2 * k] = 1.0
    flows = metrics.gt_motion(gts)
    assert flows.shape == (2, 24, 32, 2) and np.isfinite(flows).all()
    assert metrics.messddt(gts, gts) == 0.0


def test_temporal_input_checks():
    with pytest.raises(InputError, match="at least 2 frames"):
        metrics.dtssd([np.zeros((2, 2))], [np.zeros((2, 2))])
    with pytest.raises(InputError, match="preds"):
        metrics.dtssd(np.zeros((3, 2, 2)), np.zeros((2, 2, 2)))
    with pytest.raises(InputError, match="flows"):
        metrics.messddt(np.zeros((2, 2, 2)), np.zeros((2, 2, 2)), np.zeros((2, 2, 2, 2)))
    with pytest.raises(InputError, match="trimaps"):
        metrics.dtssd(np.zeros((2, 2, 2)), np.zeros((2, 2, 2)), [np.full((2, 2), U)])
    bad = np.zeros((2, 2, 2))
    bad[1, 0, 0] = np.nan
    with pytest.raises(InputError, match=r"preds\[1\]"):
        metrics.dtssd(bad, np.zeros((2, 2, 2)))


def test_quantize_8bit_equals_a_png_written_and_read_back(tmp_path):
    from vfxmatte.io import read_mask, write_image

    alpha = np.linspace(-0.1, 1.1, 1001, dtype=np.float32).reshape(7, 143)
    codes = np.round(np.clip(alpha, 0, 1) * 255).astype(np.uint8)
    write_image(tmp_path / "a.png", codes, ["Y"])
    np.testing.assert_array_equal(metrics.quantize_8bit(alpha), read_mask(tmp_path / "a.png"))
