"""Training trimaps for the two paths of the network: paper §3.3, "Trimap generation".

The Semantic Path gets a trimap made from the ground-truth alpha (Eq. 2) whose unknown band is
widened by eroding the known foreground and background with a small random kernel (1x1 to
30x30), so it keeps context. The Textural Compensate Path gets a noisier copy: ``n`` random
steps (0 to 3), each a ``p``-iteration (0 to 3) erosion or dilation of the unknown band, with a
kernel of 1x1 to 30x30 for dilation and 1x1 to 10x10 for erosion. That simulates the coarse or
tight trimaps users draw.

Every function is pure: the randomness comes from the ``numpy.random.Generator`` the caller
passes in, so a data loader item is reproducible from its seed. Pass ``out={}`` to get back
what was drawn (kernel sizes, steps); tests use it to check the paper's ranges.

Trimaps are the canonical float32 ``[H, W]`` arrays of :mod:`vfxmatte.trimap`
(bg 0, unknown 0.5, fg 1). Eq. 2 and the erosion of its known regions are the core's
:func:`vfxmatte.trimap.from_alpha` (which also makes the example shot's trimaps), and every
structuring element is the core's :func:`vfxmatte.trimap.ellipse_kernel`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import cv2
import numpy as np

from vfxmatte.errors import TrimapError
from vfxmatte.trimap import BG, FG, UNKNOWN, ellipse_kernel, from_alpha

#: Alpha within this of 0 or 1 counts as known background / foreground in Eq. 2. Real 8-bit
#: mattes hold exact 0 and 1; the tolerance absorbs float round-off from resampling.
ALPHA_TOLERANCE = 1e-3

MorphOp = Literal["erode", "dilate"]

#: Default kernel side range of :func:`rough_trimap`, in pixels of the training sample.
ROUGH_KERNEL: tuple[int, int] = (15, 95)


@dataclass(frozen=True)
class MorphStep:
    """One random step of the TCP trimap (paper §3.3): an erosion or dilation of the unknown band."""

    op: MorphOp
    iterations: int
    kernel: int


def _check_range(name: str, rng_range: tuple[int, int], lo: int) -> tuple[int, int]:
    a, b = int(rng_range[0]), int(rng_range[1])
    if a < lo or b < a:
        raise TrimapError(f"{name}: expected a range (low, high) with {lo} <= low <= high, got {rng_range}")
    return a, b


def _draw(rng: np.random.Generator, rng_range: tuple[int, int]) -> int:
    """Uniform integer in the closed range [low, high]."""
    return int(rng.integers(rng_range[0], rng_range[1] + 1))


def semantic_trimap(
    alpha: np.ndarray,
    rng: np.random.Generator,
    kernel_range: tuple[int, int] = (1, 30),
    out: dict[str, Any] | None = None,
) -> np.ndarray:
    """Trimap for the Semantic Path: Eq. 2, then erode fg and bg with a random kernel (paper §3.3).

    Every pixel with ``ALPHA_TOLERANCE < alpha < 1 - ALPHA_TOLERANCE`` is unknown in the result:
    erosion only shrinks the known regions.

    Args:
        alpha: ground-truth matte, float [H, W] in [0, 1].
        rng: source of the random kernel size.
        kernel_range: closed range of the square kernel side, 1..30 in the paper.
        out: if given, receives ``out["kernel"]`` (the side drawn).

    Returns:
        Canonical float32 [H, W] trimap.

    Raises:
        TrimapError: ``alpha`` is not [H, W] or the range is invalid.
    """
    kr = _check_range("kernel_range", kernel_range, 1)
    k = _draw(rng, kr)
    t = from_alpha(alpha, tolerance=ALPHA_TOLERANCE, kernel=k)
    if out is not None:
        out["kernel"] = k
    return t


def tcp_step(trimap: np.ndarray, step: MorphStep) -> np.ndarray:
    """Apply one erosion or dilation of the unknown band to a canonical trimap.

    Dilation turns known pixels near the band into unknown. Erosion hands band pixels back to
    the known region nearest to them (fg or bg by Euclidean distance; bg on ties), as a user
    drawing a tight trimap would. Pixels known before and after keep their label.
    """
    t = np.asarray(trimap, dtype=np.float32)
    if step.iterations <= 0 or step.kernel <= 1:
        return t.copy()
    unknown = (t == UNKNOWN).astype(np.uint8)
    kern = ellipse_kernel(step.kernel)
    if step.op == "dilate":
        grown = cv2.dilate(unknown, kern, iterations=step.iterations) > 0
        out = t.copy()
        out[grown] = UNKNOWN
        return out
    if step.op != "erode":
        raise TrimapError(f"tcp step: op must be 'erode' or 'dilate', got {step.op!r}")
    # Border +inf: the frame edge does not count as known, so only real fg/bg grow into the band.
    kept = cv2.erode(unknown, kern, iterations=step.iterations) > 0
    released = (unknown > 0) & ~kept
    out = t.copy()
    if not released.any():
        return out
    fg = t == FG
    bg = t == BG
    if not fg.any():
        out[released] = BG
        return out
    if not bg.any():
        out[released] = FG
        return out
    # distanceTransform measures the distance to the nearest zero pixel.
    d_fg = cv2.distanceTransform((~fg).astype(np.uint8), cv2.DIST_L2, 3)
    d_bg = cv2.distanceTransform((~bg).astype(np.uint8), cv2.DIST_L2, 3)
    out[released] = np.where(d_fg[released] < d_bg[released], FG, BG)
    return out


def tcp_trimap(
    sp_trimap: np.ndarray,
    rng: np.random.Generator,
    steps_range: tuple[int, int] = (0, 3),
    iters_range: tuple[int, int] = (0, 3),
    dilate_kernel: tuple[int, int] = (1, 30),
    erode_kernel: tuple[int, int] = (1, 10),
    out: dict[str, Any] | None = None,
) -> np.ndarray:
    """Noisier trimap for the Textural Compensate Path (paper §3.3).

    Draws ``n`` steps in ``steps_range``; each is an erosion or a dilation of the unknown band
    (even odds), repeated ``p`` times (``iters_range``), with a square kernel side drawn from
    ``erode_kernel`` or ``dilate_kernel``. Each step is :func:`tcp_step`.

    Args:
        sp_trimap: canonical trimap, normally from :func:`semantic_trimap`.
        rng: source of all random draws.
        out: if given, receives ``out["steps"]``, a list of :class:`MorphStep`.

    Raises:
        TrimapError: ``sp_trimap`` is not [H, W] or a range is invalid.
    """
    t = np.asarray(sp_trimap, dtype=np.float32)
    if t.ndim != 2:
        raise TrimapError(f"sp_trimap: expected a single-channel [H, W] trimap, got shape {t.shape}")
    sr = _check_range("steps_range", steps_range, 0)
    ir = _check_range("iters_range", iters_range, 0)
    dk = _check_range("dilate_kernel", dilate_kernel, 1)
    ek = _check_range("erode_kernel", erode_kernel, 1)
    steps: list[MorphStep] = []
    for _ in range(_draw(rng, sr)):
        op: MorphOp = "erode" if rng.random() < 0.5 else "dilate"
        p = _draw(rng, ir)
        k = _draw(rng, ek if op == "erode" else dk)
        steps.append(MorphStep(op, p, k))
    result = t.copy()
    for step in steps:
        result = tcp_step(result, step)
    if out is not None:
        out["steps"] = steps
    return result


def rough_trimap(
    trimap: np.ndarray,
    rng: np.random.Generator,
    kernel_range: tuple[int, int] = ROUGH_KERNEL,
    out: dict[str, Any] | None = None,
) -> np.ndarray:
    """A loosely drawn trimap: the unknown band of ``trimap`` dilated by a wide random kernel.

    Not in the paper. Its Semantic Path trimaps have unknown bands at most ~30 px wider than the
    true transition, while a compositor's rough trimap or a rough roto's band is often several
    times that and covers opaque interior (a flag, a sleeve) that the network must call
    foreground with no known pixel nearby. Mixing some of these into training (``data.
    rough_trimap_prob``) and validating on them (``data.val_rough_trimap_prob``) targets that
    case. Only known pixels change (to unknown), so the result still contains every unknown
    pixel of ``trimap``.

    Args:
        trimap: canonical trimap, normally from :func:`semantic_trimap`.
        rng: source of the kernel side.
        kernel_range: closed range of the elliptical kernel's side in pixels.
        out: if given, receives ``out["rough_kernel"]``.
    """
    t = np.asarray(trimap, dtype=np.float32)
    if t.ndim != 2:
        raise TrimapError(f"trimap: expected a single-channel [H, W] trimap, got shape {t.shape}")
    k = _draw(rng, _check_range("rough kernel_range", kernel_range, 1))
    result = tcp_step(t, MorphStep("dilate", 1, k))
    if out is not None:
        out["rough_kernel"] = k
    return result


def dual_trimaps(
    alpha: np.ndarray, rng: np.random.Generator, out: dict[str, Any] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The (semantic, tcp) trimap pair of paper §3.3 with the paper's ranges."""
    sp = semantic_trimap(alpha, rng, out=out)
    return sp, tcp_trimap(sp, rng, out=out)
