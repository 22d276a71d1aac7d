"""Trimap conventions and pure trimap operations.

Canonical in-memory trimap: a float32 array of shape [H, W] holding exactly three values,

    BG = 0.0        known background (alpha 0)
    UNKNOWN = 0.5   the band the network solves
    FG = 1.0        known foreground (alpha 1)

Files on disk use other encodings (8-bit 0/128/255, 16-bit, float EXR, RGB); readers map them
to the canonical values with :func:`quantize`, which accepts values within ``tolerance`` of a
palette entry and rejects the rest, naming how many pixels were off-palette.
"""

from __future__ import annotations

import cv2
import numpy as np

from vfxmatte.errors import TrimapError

BG = 0.0
UNKNOWN = 0.5
FG = 1.0
PALETTE = (BG, UNKNOWN, FG)

#: Channels of the one-hot trimap (:func:`one_hot`) that the network takes after RGB (paper
#: §3) and the losses read the unknown region ``U`` from (§3.3): channel ``i`` marks
#: ``PALETTE[i]``.
BG_CHANNEL = PALETTE.index(BG)
UNKNOWN_CHANNEL = PALETTE.index(UNKNOWN)
FG_CHANNEL = PALETTE.index(FG)

#: Default tolerance on normalised [0, 1] values: 8-bit files written as 127 or 128 for the
#: unknown band, and lossy or resampled files within ~0.1 of a palette entry, are accepted.
DEFAULT_TOLERANCE = 0.1


def validate(trimap: np.ndarray, name: str = "trimap") -> np.ndarray:
    """Check that ``trimap`` is a canonical [H, W] float trimap and return it as float32.

    Raises:
        TrimapError: wrong rank, non-finite values or values outside {0, 0.5, 1}.
    """
    t = np.asarray(trimap)
    if t.ndim != 2:
        raise TrimapError(f"{name}: expected a single-channel [H, W] trimap, got shape {t.shape}")
    t = t.astype(np.float32, copy=False)
    if not np.isfinite(t).all():
        raise TrimapError(f"{name}: trimap holds NaN or Inf values")
    bad = ~((t == BG) | (t == UNKNOWN) | (t == FG))
    if bad.any():
        vals = np.unique(t[bad])[:5]
        raise TrimapError(
            f"{name}: {int(bad.sum())} pixels outside the palette bg=0/unknown=0.5/fg=1 "
            f"(e.g. {', '.join(f'{v:g}' for v in vals)})"
        )
    return t


def quantize(values: np.ndarray, tolerance: float = DEFAULT_TOLERANCE, name: str = "trimap") -> np.ndarray:
    """Map normalised [0, 1] trimap values to the canonical palette.

    Each pixel snaps to the nearest of 0, 0.5 and 1 if it lies within ``tolerance`` of it.

    Raises:
        TrimapError: a pixel is further than ``tolerance`` from every palette value, or NaN.
    """
    v = np.asarray(values, dtype=np.float32)
    if v.ndim != 2:
        raise TrimapError(f"{name}: expected a single-channel [H, W] trimap, got shape {v.shape}")
    if not np.isfinite(v).all():
        raise TrimapError(f"{name}: trimap holds NaN or Inf values")
    palette = np.asarray(PALETTE, dtype=np.float32)
    dist = np.abs(v[..., None] - palette)
    idx = dist.argmin(axis=-1)
    off = dist.min(axis=-1) > tolerance
    if off.any():
        vals = np.unique(v[off])[:5]
        raise TrimapError(
            f"{name}: {int(off.sum())} pixels are not within {tolerance:g} of bg=0/unknown=0.5/fg=1 "
            f"(e.g. {', '.join(f'{x:.3g}' for x in vals)})"
        )
    return palette[idx]


def one_hot(trimap: np.ndarray) -> np.ndarray:
    """Canonical [H, W] trimap -> [3, H, W] float32 one-hot in the order (bg, unknown, fg), paper §3.

    Channel ``c`` is 1 where the trimap holds ``PALETTE[c]``: :data:`BG_CHANNEL`,
    :data:`UNKNOWN_CHANNEL`, :data:`FG_CHANNEL`.
    """
    t = np.asarray(trimap)
    return np.stack([t == value for value in PALETTE]).astype(np.float32)


def unknown_mask(trimap: np.ndarray) -> np.ndarray:
    """Boolean [H, W] mask of the unknown band."""
    return np.asarray(trimap) == UNKNOWN


def ellipse_kernel(size: int) -> np.ndarray:
    """A ``size`` x ``size`` elliptical structuring element for cv2 morphology (1: identity).

    Every trimap erosion and dilation in vfxmatte and its training package uses it; a disk of
    radius r is ``ellipse_kernel(2 * r + 1)``.
    """
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (int(size), int(size)))


def from_alpha(alpha: np.ndarray, tolerance: float = 0.0, kernel: int = 1) -> np.ndarray:
    """Trimap from a true alpha: paper §3.3, Eq. 2, with the known regions eroded.

    Foreground where ``alpha >= 1 - tolerance``, background where ``alpha <= tolerance``,
    unknown elsewhere; then the known foreground and background are each eroded by
    :func:`ellipse_kernel` ``(kernel)``, which widens the unknown band by about ``kernel / 2``
    pixels on both sides. Every pixel with ``tolerance < alpha < 1 - tolerance`` is unknown,
    and the frame edge does not erode a known region (cv2's default erosion border).

    Raises:
        TrimapError: ``alpha`` is not [H, W], ``tolerance`` is outside [0, 0.5) or ``kernel`` < 1.
    """
    a = np.asarray(alpha, dtype=np.float32)
    if a.ndim != 2:
        raise TrimapError(f"alpha: expected a single-channel [H, W] matte, got shape {a.shape}")
    if not 0.0 <= tolerance < 0.5:
        raise TrimapError(f"alpha: tolerance must be in [0, 0.5), got {tolerance}")
    if kernel < 1:
        raise TrimapError(f"alpha: kernel side must be >= 1 pixel, got {kernel}")
    fg = (a >= 1.0 - tolerance).astype(np.uint8)
    bg = (a <= tolerance).astype(np.uint8)
    if kernel > 1:
        k = ellipse_kernel(kernel)
        fg = cv2.erode(fg, k)
        bg = cv2.erode(bg, k)
    t = np.full(a.shape, UNKNOWN, dtype=np.float32)
    t[fg > 0] = FG
    t[bg > 0] = BG
    return t


def from_mask(mask: np.ndarray, band_px: float, threshold: float = 0.5) -> np.ndarray:
    """Derive a trimap from a rough mask or roto matte.

    The mask is thresholded at ``threshold``; the unknown band is everything within
    ``band_px`` pixels of the mask's edge, on either side (erode the mask for the known
    foreground, dilate it for the known background, each with a disk of radius ``band_px``).

    Raises:
        TrimapError: the mask is not [H, W], holds NaN, or ``band_px`` is negative.
    """
    m = np.asarray(mask, dtype=np.float32)
    if m.ndim != 2:
        raise TrimapError(f"mask: expected a single-channel [H, W] mask, got shape {m.shape}")
    if not np.isfinite(m).all():
        raise TrimapError("mask: mask holds NaN or Inf values")
    if band_px < 0:
        raise TrimapError(f"mask: band width must be >= 0 pixels, got {band_px}")
    hard = (m >= threshold).astype(np.uint8)
    r = int(round(band_px))
    if r == 0:
        return np.where(hard > 0, FG, BG).astype(np.float32)
    k = ellipse_kernel(2 * r + 1)
    # Replicated border: a roto that touches the frame edge continues beyond it.
    fg = cv2.erode(hard, k, borderType=cv2.BORDER_REPLICATE)
    not_bg = cv2.dilate(hard, k, borderType=cv2.BORDER_REPLICATE)
    t = np.full(m.shape, UNKNOWN, dtype=np.float32)
    t[fg > 0] = FG
    t[not_bg == 0] = BG
    return t


def composite_known(pred: np.ndarray, trimap: np.ndarray) -> np.ndarray:
    """Copy known fg/bg from the trimap over a predicted alpha; keep the prediction in the unknown band."""
    out = np.where(trimap == FG, 1.0, np.where(trimap == BG, 0.0, pred))
    return out.astype(np.float32)
