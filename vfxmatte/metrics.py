"""Alpha-matte quality metrics: SAD, MSE, Gradient and Connectivity, and temporal dtSSD / MESSDdt.

Spatial metrics
---------------
They reproduce the Composition-1k evaluation code released with Deep Image Matting (Xu, Price,
Cohen, Huang, CVPR 2017; MATLAB by Ning Xu, 2018-01-01): ``compute_sad_loss.m``,
``compute_mse_loss.m``, ``compute_gradient_loss.m`` (with Guanglei Xiong's ``gaussgradient.m``)
and ``compute_connectivity_error.m``, plus its driver script, which divides Grad and Conn by 1000
(``grad = compute_gradient_loss(...)/1000; conn = compute_connectivity_error(...,0.1)/1000``).

Conventions, so the numbers line up with the published tables (GCA, MatteFormer, ViTMatte...):

- ``pred`` and ``gt`` are float [H, W] mattes in [0, 1]. The MATLAB reads 8-bit PNGs and divides by
  255 (``single(pred)/255``) before SAD, MSE and Conn, so [0, 1] here is the same scale. Grad
  min-max normalises both mattes first (``mat2gray``), so its input scale does not matter.
- ``trimap`` is the canonical vfxmatte trimap (0 / 0.5 / 1); every sum runs over its unknown band
  only (the MATLAB's ``trimap==128``).
- SAD  = sum_U |p - g| / 1000.
- MSE  = sum_U (p - g)^2 / |U|, unscaled (tables usually print it as is, e.g. 0.0091, or x 10^3).
  An empty band gives NaN, as the MATLAB's 0/0 does.
- Grad = sum_U (|grad mat2gray(p)| - |grad mat2gray(g)|)^2 / 1000, with first-derivative-of-
  Gaussian filters, sigma = 1.4, built and applied as ``gaussgradient.m`` does.
- Conn = sum_U |phi(p) - phi(g)| / 1000, thresholds 0:0.1:1, theta = 0.15, over the largest
  4-connected component of the *foreground* intersection ``p >= t & g >= t``.

The MATLAB scores 8-bit predictions read back from PNG; these functions score the float matte as
given, in float64. To reproduce the protocol bit for bit, pass the prediction through
:func:`quantize_8bit` first (what :func:`vfxmatte.evaluate.evaluate_predictor` does by default).

Temporal metrics
----------------
:func:`dtssd` and :func:`messddt` follow the evaluation code of TCVOM (Zhang et al., "Attention-guided
Temporal Coherent Video Object Matting", ACM MM 2021; ``eval.py`` and ``utils/utils.py::flow_dt``
of github.com/yunkezhang/TCVOM), which implements the definitions of Erofeev et al. ("Perceptually
Motivated Benchmark for Video Matting", BMVC 2015). See each function for the exact formula.
"""

from __future__ import annotations

import cv2
import numpy as np
from scipy import ndimage

from vfxmatte import trimap as trimap_ops
from vfxmatte.errors import InputError

__all__ = [
    "connectivity_error",
    "dtssd",
    "evaluate",
    "gaussgradient",
    "gradient_error",
    "gt_motion",
    "messddt",
    "mse",
    "quantize_8bit",
    "sad",
]

#: Every sum of the Composition-1k code is divided by 1000 "due to the large images used in our
#: experiment" (compute_sad_loss.m); the driver applies the same factor to Grad and Conn.
SCALE = 1000.0
#: Standard deviation of the derivative-of-Gaussian filters (compute_gradient_loss.m).
GRAD_SIGMA = 1.4
#: Kernel truncation of gaussgradient.m: the kernel extends until the Gaussian drops below epsilon.
GRAD_EPSILON = 1e-2
#: Threshold step of compute_connectivity_error(pred, target, trimap, 0.1).
CONN_STEP = 0.1
#: Connectivity theta: differences below it count as fully connected (phi = 1).
CONN_THETA = 0.15

# 4-connectivity, as bwconncomp(..., 4).
_FOUR_CONNECTED = ndimage.generate_binary_structure(2, 1)


# ----------------------------------------------------------------------------------------------
# Input checks
# ----------------------------------------------------------------------------------------------


def _check_matte(a: np.ndarray, name: str, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """Return ``a`` as a float64 [H, W] matte in [0, 1], or raise InputError naming ``name``."""
    arr = np.asarray(a)
    if arr.ndim != 2:
        raise InputError(f"{name}: expected a single-channel [H, W] matte, got shape {arr.shape}")
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer) or arr.dtype == bool):
        raise InputError(f"{name}: expected a numeric matte, got dtype {arr.dtype}")
    arr = arr.astype(np.float64)
    if not np.isfinite(arr).all():
        raise InputError(f"{name}: matte holds NaN or Inf values")
    if arr.size and (arr.min() < 0.0 or arr.max() > 1.0):
        raise InputError(
            f"{name}: matte values must lie in [0, 1] (got {arr.min():.4g}..{arr.max():.4g}); "
            "clip the prediction or divide 8-bit data by 255"
        )
    if shape is not None and arr.shape != shape:
        raise InputError(f"{name}: shape {arr.shape} does not match gt shape {shape}")
    return arr


def _check_triple(pred, gt, trimap) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    g = _check_matte(gt, "gt")
    p = _check_matte(pred, "pred", g.shape)
    t = trimap_ops.validate(trimap, name="trimap")
    if t.shape != g.shape:
        raise InputError(f"trimap: shape {t.shape} does not match gt shape {g.shape}")
    return p, g, trimap_ops.unknown_mask(t)


def quantize_8bit(alpha: np.ndarray) -> np.ndarray:
    """Round a [0, 1] matte to the 256 levels of the 8-bit PNG the official protocol scores.

    Returns the float32 values :mod:`vfxmatte.io` reads back from that PNG: the code
    ``round(255 * alpha)`` times ``float32(1 / 255)``, as OpenImageIO normalises 8-bit codes,
    so a prediction equal to an 8-bit ground truth read by :func:`vfxmatte.io.read_mask` scores
    exactly 0. Values are clipped to [0, 1] first.
    """
    a = np.clip(np.asarray(alpha, dtype=np.float64), 0.0, 1.0)
    return np.round(a * 255.0).astype(np.float32) * np.float32(1.0 / 255.0)


# ----------------------------------------------------------------------------------------------
# SAD and MSE
# ----------------------------------------------------------------------------------------------


def sad(pred: np.ndarray, gt: np.ndarray, trimap: np.ndarray) -> float:
    """Sum of absolute differences over the unknown band, / 1000 (compute_sad_loss.m).

    Args:
        pred: predicted matte, float [H, W] in [0, 1].
        gt: ground-truth matte, float [H, W] in [0, 1].
        trimap: canonical trimap [H, W] (0 / 0.5 / 1).

    Example:
        >>> import numpy as np
        >>> t = np.full((2, 2), 0.5, np.float32)
        >>> sad(np.ones((2, 2)), np.zeros((2, 2)), t)
        0.004

    Raises:
        InputError: shapes differ, NaN/Inf, or values outside [0, 1].
        TrimapError: the trimap is not canonical.
    """
    p, g, unknown = _check_triple(pred, gt, trimap)
    return float(np.abs(p - g)[unknown].sum() / SCALE)


#: Where :func:`sad_breakdown` draws the line between background, partial and opaque truth.
BREAKDOWN_EDGES = (0.02, 0.98)


def sad_breakdown(pred: np.ndarray, gt: np.ndarray, trimap: np.ndarray) -> dict[str, float]:
    """SAD over the unknown band split by what the truth is there, to tell kinds of error apart.

    ``background`` (gt < 0.02), ``partial`` (0.02 .. 0.98) and ``opaque`` (gt > 0.98) sum to
    :func:`sad`; the partial pixels' SAD splits again into ``partial_under`` (alpha too low: thin
    strands lost) and ``partial_over`` (too high: strands thickened), which sum to ``partial``.
    Same scale as :func:`sad` (/ 1000); not part of the Composition-1k protocol.

    Example:
        >>> import numpy as np
        >>> t = np.full((1, 3), 0.5, np.float32)
        >>> sad_breakdown(np.array([[0.5, 0.2, 1.0]]), np.array([[0.0, 0.5, 1.0]]), t)["partial_under"]
        0.0003

    Raises:
        InputError / TrimapError: as :func:`sad`.
    """
    p, g, unknown = _check_triple(pred, gt, trimap)
    lo, hi = BREAKDOWN_EDGES
    d = p - g
    bg, op = unknown & (g < lo), unknown & (g > hi)
    part = unknown & ~bg & ~op
    return {
        "background": float(np.abs(d[bg]).sum() / SCALE),
        "partial": float(np.abs(d[part]).sum() / SCALE),
        "opaque": float(np.abs(d[op]).sum() / SCALE),
        "partial_under": float(-d[part & (d < 0)].sum() / SCALE),
        "partial_over": float(d[part & (d > 0)].sum() / SCALE),
    }


def mse(pred: np.ndarray, gt: np.ndarray, trimap: np.ndarray) -> float:
    """Mean squared error over the unknown band (compute_mse_loss.m); NaN when the band is empty."""
    p, g, unknown = _check_triple(pred, gt, trimap)
    n = int(unknown.sum())
    if n == 0:
        return float("nan")  # the MATLAB divides 0 by 0
    return float(((p - g) ** 2)[unknown].sum() / n)


# ----------------------------------------------------------------------------------------------
# Gradient
# ----------------------------------------------------------------------------------------------


def _mat2gray(a: np.ndarray) -> np.ndarray:
    """MATLAB ``mat2gray(A)``: (A - min) / (max - min); a constant image is returned unchanged, clipped."""
    lo, hi = float(a.min()), float(a.max())
    if hi == lo:
        return np.clip(a, 0.0, 1.0)
    return np.clip((a - lo) / (hi - lo), 0.0, 1.0)


def gaussgradient_kernels(sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """The x and y kernels of gaussgradient.m (Guanglei Xiong).

    ``halfsize = ceil(sigma * sqrt(-2 log(sqrt(2 pi) sigma epsilon)))`` (4 for sigma = 1.4, a 9x9
    kernel); ``hx(i, j) = gauss(i - c) * dgauss(j - c)`` normalised to unit L2 norm; ``hy = hx'``.
    """
    half = int(np.ceil(sigma * np.sqrt(-2.0 * np.log(np.sqrt(2.0 * np.pi) * sigma * GRAD_EPSILON))))
    u = np.arange(-half, half + 1, dtype=np.float64)
    gauss = np.exp(-(u**2) / (2.0 * sigma**2)) / (sigma * np.sqrt(2.0 * np.pi))
    dgauss = -u * gauss / sigma**2
    hx = gauss[:, None] * dgauss[None, :]  # row index -> gauss, column index -> dgauss
    hx /= np.sqrt((np.abs(hx) * np.abs(hx)).sum())
    return hx, hx.T.copy()


def gaussgradient(image: np.ndarray, sigma: float = GRAD_SIGMA) -> tuple[np.ndarray, np.ndarray]:
    """Derivative-of-Gaussian gradient ``(gx, gy)`` of a 2-D image, as gaussgradient.m.

    Filtering is ``imfilter(IM, h, 'replicate', 'conv')``: a true convolution with edge replication.
    """
    hx, hy = gaussgradient_kernels(sigma)
    im = np.asarray(image, dtype=np.float64)
    gx = ndimage.convolve(im, hx, mode="nearest")
    gy = ndimage.convolve(im, hy, mode="nearest")
    return gx, gy


def gradient_error(pred: np.ndarray, gt: np.ndarray, trimap: np.ndarray) -> float:
    """Gradient error (compute_gradient_loss.m, / 1000 as in the driver script).

    Both mattes are min-max normalised with ``mat2gray``, differentiated with :func:`gaussgradient`
    (sigma = 1.4); the squared difference of the gradient magnitudes is summed over the unknown band.
    """
    p, g, unknown = _check_triple(pred, gt, trimap)
    px, py = gaussgradient(_mat2gray(p), GRAD_SIGMA)
    gx, gy = gaussgradient(_mat2gray(g), GRAD_SIGMA)
    err = (np.sqrt(px**2 + py**2) - np.sqrt(gx**2 + gy**2)) ** 2
    return float(err[unknown].sum() / SCALE)


# ----------------------------------------------------------------------------------------------
# Connectivity
# ----------------------------------------------------------------------------------------------


def _matlab_colon(start: float, step: float, stop: float) -> np.ndarray:
    """MATLAB's ``start:step:stop``: the first half counted up from ``start``, the rest down from ``stop``.

    This matters for 8-bit data: MATLAB's 0.6 is ``1 - 4*0.1`` == 0.6 == 153/255, while
    ``6*0.1`` is 0.6000000000000001, which would drop alpha 153 out of the 0.6 level.
    """
    n = int(round((stop - start) / step))
    k = np.arange(n + 1, dtype=np.float64)
    return np.where(k <= n / 2.0, start + k * step, stop - (n - k) * step)


def _largest_component(mask: np.ndarray) -> np.ndarray:
    """Largest 4-connected component of the True pixels (bwconncomp(mask, 4) + max(size)).

    Label 0 is the background of the binary map and is never a candidate. Ties go to the component
    MATLAB numbers first, i.e. the one whose first pixel comes first in column-major order. With no
    True pixel at all the component is empty.
    """
    labels, n = ndimage.label(mask, structure=_FOUR_CONNECTED)
    if n == 0:
        return np.zeros(mask.shape, dtype=bool)
    sizes = np.bincount(labels.ravel())[1:]
    best = np.flatnonzero(sizes == sizes.max()) + 1
    if best.size > 1:
        column_major = np.arange(mask.size).reshape(mask.shape, order="F")
        first = ndimage.minimum(column_major, labels, best)
        best = best[[int(np.argmin(first))]]
    return labels == best[0]


def connectivity_error(pred: np.ndarray, gt: np.ndarray, trimap: np.ndarray, step: float = CONN_STEP) -> float:
    """Connectivity error (compute_connectivity_error.m, / 1000 as in the driver script).

    For each threshold t_i of ``0:step:1`` (i >= 1), omega_i is the largest 4-connected component of
    the foreground both mattes share, ``pred >= t_i & gt >= t_i``. A pixel's level ``l`` is the
    threshold just before the first omega it falls out of (1 if it never does). With
    ``d = alpha - l``, ``phi = 1 - d * (d >= 0.15)``; the error is ``sum_U |phi_pred - phi_gt|``.
    """
    p, g, unknown = _check_triple(pred, gt, trimap)
    thresholds = _matlab_colon(0.0, step, 1.0)
    level = np.full(p.shape, -1.0)
    for i in range(1, thresholds.size):
        omega = _largest_component((p >= thresholds[i]) & (g >= thresholds[i]))
        level[(level == -1.0) & ~omega] = thresholds[i - 1]
    level[level == -1.0] = 1.0
    # (The MATLAB also fills dist_maps with bwdist(omega); they never enter the loss.)
    pd, gd = p - level, g - level
    p_phi = 1.0 - pd * (pd >= CONN_THETA)
    g_phi = 1.0 - gd * (gd >= CONN_THETA)
    return float(np.abs(p_phi - g_phi)[unknown].sum() / SCALE)


def evaluate(pred: np.ndarray, gt: np.ndarray, trimap: np.ndarray) -> dict[str, float]:
    """All four Composition-1k metrics of one matte: ``{"sad", "mse", "grad", "conn"}``.

    Args:
        pred: predicted matte, float [H, W] in [0, 1].
        gt: ground-truth matte, float [H, W] in [0, 1].
        trimap: canonical trimap [H, W]; only its unknown band is scored.

    Example:
        >>> import numpy as np
        >>> gt = np.tile(np.linspace(0, 1, 8), (8, 1))
        >>> evaluate(gt, gt, np.full((8, 8), 0.5))
        {'sad': 0.0, 'mse': 0.0, 'grad': 0.0, 'conn': 0.0}

    Raises:
        InputError: shapes differ, NaN/Inf, or values outside [0, 1] (the message names the argument).
        TrimapError: the trimap is not canonical.
    """
    _check_triple(pred, gt, trimap)
    return {
        "sad": sad(pred, gt, trimap),
        "mse": mse(pred, gt, trimap),
        "grad": gradient_error(pred, gt, trimap),
        "conn": connectivity_error(pred, gt, trimap),
    }


# ----------------------------------------------------------------------------------------------
# Temporal metrics (TCVOM eval.py)
# ----------------------------------------------------------------------------------------------


def _check_sequence(frames, name: str, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """Stack a sequence of [H, W] mattes into float64 [T, H, W], checking each frame."""
    if isinstance(frames, np.ndarray) and frames.ndim == 3:
        items = list(frames)
    elif isinstance(frames, np.ndarray):
        raise InputError(f"{name}: expected [T, H, W] or a list of [H, W] mattes, got shape {frames.shape}")
    else:
        items = list(frames)
    if len(items) < 2:
        raise InputError(f"{name}: temporal metrics need at least 2 frames, got {len(items)}")
    checked = []
    for i, f in enumerate(items):
        checked.append(_check_matte(f, f"{name}[{i}]", shape if shape is None else shape[1:]))
        if shape is None and checked[0].shape != checked[-1].shape:
            raise InputError(f"{name}[{i}]: shape {checked[-1].shape} differs from {name}[0] {checked[0].shape}")
    out = np.stack(checked)
    if shape is not None and out.shape != shape:
        raise InputError(f"{name}: {out.shape[0]} frames of {out.shape[1:]} do not match gts {shape}")
    return out


def _unknown_masks(trimaps, shape: tuple[int, int, int]) -> np.ndarray:
    """Unknown band of each frame's trimap as bool [T, H, W]; every pixel when ``trimaps`` is None."""
    if trimaps is None:
        return np.ones(shape, dtype=bool)
    items = list(trimaps)
    if len(items) != shape[0]:
        raise InputError(f"trimaps: {len(items)} trimaps for {shape[0]} frames")
    masks = []
    for i, t in enumerate(items):
        tv = trimap_ops.validate(t, name=f"trimaps[{i}]")
        if tv.shape != shape[1:]:
            raise InputError(f"trimaps[{i}]: shape {tv.shape} does not match frame shape {shape[1:]}")
        masks.append(trimap_ops.unknown_mask(tv))
    return np.stack(masks)


def dtssd(preds, gts, trimaps=None) -> float:
    """Temporal gradient error dtSSD of one sequence, as TCVOM's ``eval.py`` computes it.

    For each frame t with a successor (t = 0..T-2) and U_t the unknown band of trimap t::

        dtSSD_t = sqrt( sum_{p in U_t} ((a_{t+1} - a_t) - (g_{t+1} - g_t))^2 )

    and the sequence value is ``sum_t dtSSD_t / T``: TCVOM counts the last frame, which has no
    successor and scores 0, in the average. Alphas are in [0, 1] and nothing is rescaled (papers
    print dtSSD x 10^2). With ``trimaps=None`` every pixel counts.

    Args:
        preds: T >= 2 predicted mattes, [T, H, W] or a list of [H, W], in [0, 1].
        gts: T ground-truth mattes of the same shape.
        trimaps: optional T canonical trimaps.

    Raises:
        InputError: fewer than 2 frames, frame count/shape mismatch, NaN, values outside [0, 1].
    """
    g = _check_sequence(gts, "gts")
    a = _check_sequence(preds, "preds", g.shape)
    m = _unknown_masks(trimaps, g.shape)
    total = 0.0
    for t in range(g.shape[0] - 1):
        d = (a[t] - a[t + 1]) - (g[t] - g[t + 1])
        total += float(np.sqrt((d[m[t]] ** 2).sum()))
    return total / g.shape[0]


def _bilinear_zero_pad(image: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Sample ``image`` at pixel coordinates (x, y), bilinear, zeros outside the frame.

    Equals ``F.grid_sample(..., mode='bilinear', padding_mode='zeros', align_corners=True)`` on
    pixel coordinates, which TCVOM's ``grid_sampler`` uses.
    """
    h, w = image.shape
    x0 = np.floor(x).astype(np.int64)
    y0 = np.floor(y).astype(np.int64)
    fx, fy = x - x0, y - y0
    out = np.zeros(x.shape, dtype=np.float64)
    for dy, wy in ((0, 1.0 - fy), (1, fy)):
        for dx, wx in ((0, 1.0 - fx), (1, fx)):
            xi, yi = x0 + dx, y0 + dy
            inside = (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h)
            vals = np.zeros(x.shape, dtype=np.float64)
            vals[inside] = image[yi[inside], xi[inside]]
            out += wx * wy * vals
    return out


def gt_motion(gts) -> np.ndarray:
    """Forward optical flow between consecutive ground-truth mattes, [T-1, H, W, 2] as (dx, dy).

    For sequences without ground-truth flow. TCVOM scores MESSDdt with the flow shipped with its
    data set; this estimates the motion from the ground-truth matte itself, as DVM's evaluation
    does (Sun et al., CVPR 2021, github.com/nowsyn/DVM ``evaluation/metric.py``): Farneback on the
    8-bit mattes with pyr_scale 0.5, levels 5, winsize 10, iterations 2, poly_n 7, poly_sigma 1.5,
    Gaussian window. (Only the flow source is taken from DVM; it is used here as TCVOM uses flow.)
    """
    g = _check_sequence(gts, "gts")
    g8 = np.round(g * 255.0).astype(np.uint8)
    flows = [
        cv2.calcOpticalFlowFarneback(g8[t], g8[t + 1], None, 0.5, 5, 10, 2, 7, 1.5, cv2.OPTFLOW_FARNEBACK_GAUSSIAN)
        for t in range(g.shape[0] - 1)
    ]
    return np.stack(flows).astype(np.float32)


def messddt(preds, gts, flows=None, trimaps=None) -> float:
    """Motion-aware temporal error MESSDdt of one sequence, as TCVOM's ``flow_dt(..., metric=True)``.

    ``flows[t]`` is the forward flow from frame t to frame t+1, [H, W, 2] as (dx, dy) in pixels;
    NaN marks pixels without a valid flow. With ``E = a - g`` and p' = p + flows[t](p)::

        MESSDdt_t = sum_{p in V_t} | E_t(p)^2 - E_{t+1}(p')^2 |

    where ``E_{t+1}(p')`` samples a_{t+1} and g_{t+1} bilinearly at p' (zero outside the frame) and
    V_t is the unknown band of trimap t where the flow is valid. The sequence value is
    ``sum_t MESSDdt_t / T`` (the last frame counts, scoring 0, as in TCVOM's per-video average).
    Unscaled: papers print it x 10^1 or x 10^2.

    Args:
        preds: T >= 2 predicted mattes, [T, H, W] or a list of [H, W], in [0, 1].
        gts: T ground-truth mattes.
        flows: [T-1, H, W, 2] forward flows; None estimates them from the ground truth with
            :func:`gt_motion`.
        trimaps: optional T canonical trimaps; None scores every pixel.

    Raises:
        InputError: frame count or shape mismatch, bad flow shape, NaN mattes, values outside [0, 1].
    """
    g = _check_sequence(gts, "gts")
    a = _check_sequence(preds, "preds", g.shape)
    m = _unknown_masks(trimaps, g.shape)
    n, h, w = g.shape
    f = gt_motion(g) if flows is None else np.asarray(flows, dtype=np.float64)
    if f.shape != (n - 1, h, w, 2):
        raise InputError(f"flows: expected shape {(n - 1, h, w, 2)} (forward flow t -> t+1 as dx, dy), got {f.shape}")
    if np.isinf(f).any():
        raise InputError("flows: flow holds Inf values (use NaN to mark invalid pixels)")
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    total = 0.0
    for t in range(n - 1):
        invalid = np.isnan(f[t, ..., 0])  # TCVOM tests the x channel
        flow = np.nan_to_num(f[t], nan=0.0)
        valid = ~invalid & m[t]
        if not valid.any():
            continue
        x, y = xs[valid] + flow[..., 0][valid], ys[valid] + flow[..., 1][valid]
        warped_err = _bilinear_zero_pad(a[t + 1], x, y) - _bilinear_zero_pad(g[t + 1], x, y)
        err = a[t][valid] - g[t][valid]
        total += float(np.abs(err**2 - warped_err**2).sum())
    return total / n
