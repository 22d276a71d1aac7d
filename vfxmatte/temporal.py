"""Optional temporal stage: flow-guided smoothing of alpha inside the unknown band (issue 17 §4).

For frame ``f`` with raw matte ``a_f`` (the network's output) and the raw mattes ``a_n`` of its
neighbours ``n = f - r .. f + r`` (``r`` = :attr:`TemporalSettings.radius`), each neighbour is
warped into ``f`` along the flow (:func:`vfxmatte.flow.reliable_warp`, the rule label
propagation uses) and blended in with a per-pixel weight::

    w_n = reliable_n * max(0, 1 - |warp(a_n) - a_f| / alpha_tolerance) ** 2
    a'_f = (a_f + sum_n strength * w_n * warp(a_n)) / (1 + sum_n strength * w_n)

only inside ``f``'s unknown band; known pixels keep ``a_f``.

Why it does not smear: a pixel whose flow is unreliable (occluded, out of frame, photometric
mismatch) gets no weight, and so does one where the warped neighbour disagrees with ``a_f`` by
``alpha_tolerance`` or more: real motion the flow misses and fine strands the flow cannot
register both show up as such a disagreement, and keep the frame's own alpha. What is left to
average is the network's frame-to-frame jitter on matched pixels, the flicker dtSSD measures.

Invariants:

* Chunk independence: the result for ``f`` is a pure function of the raw mattes, trimaps and
  plates of the fixed window ``f - r .. f + r`` (those that exist) and the settings, never of
  which frames a process ran; the raw mattes are the network's per-frame output, themselves a
  function of each frame's plate and trimap only.
* The weight of ``f`` itself is 1 and every other weight lies in [0, strength], so the result
  is a convex combination: it stays in [0, 1], and equals ``a_f`` where no neighbour is
  reliable and close.
* Known pixels (trimap 0 or 1) are never changed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import cv2
import numpy as np

from vfxmatte.errors import InputError
from vfxmatte.flow import FlowCache, FlowSettings, pixel_grid, reliable_warp
from vfxmatte.trimap import UNKNOWN

__all__ = ["Neighbour", "TemporalSettings", "smooth_alpha", "smooth_clip"]


@dataclass(frozen=True)
class TemporalSettings:
    """The temporal stage's settings (documented defaults; the job's ``temporal:`` section).

    Attributes:
        radius: neighbours used on each side (a window of ``2 * radius + 1`` frames).
        alpha_tolerance: a warped neighbour alpha this far or further from the frame's own
            gets no weight (real change, or a strand the flow cannot register).
        strength: the largest weight of one neighbour relative to the frame itself.
        occlusion_px: forward-backward round-trip threshold in pixels.
        flow: how flow between the frame and a neighbour is computed.

    Raises:
        InputError: a value out of range.
    """

    radius: int = 1
    alpha_tolerance: float = 0.3
    strength: float = 1.0
    occlusion_px: float = 1.0
    flow: FlowSettings = field(default_factory=FlowSettings)

    def __post_init__(self) -> None:
        if isinstance(self.radius, bool) or not isinstance(self.radius, int) or not 1 <= self.radius <= 8:
            raise InputError(f"temporal radius: expected an integer 1..8 frames, got {self.radius!r}")
        if not np.isfinite(self.alpha_tolerance) or not 0 < self.alpha_tolerance <= 1:
            raise InputError(f"temporal alpha_tolerance: expected 0 < tolerance <= 1, got {self.alpha_tolerance!r}")
        if not np.isfinite(self.strength) or not 0 < self.strength <= 1:
            raise InputError(f"temporal strength: expected 0 < strength <= 1, got {self.strength!r}")
        if not np.isfinite(self.occlusion_px) or self.occlusion_px <= 0:
            raise InputError(f"temporal occlusion_px: expected a threshold > 0 pixels, got {self.occlusion_px!r}")

    def to_dict(self) -> dict:
        """JSON-able, in declaration order."""
        return asdict(self)


@dataclass(frozen=True)
class Neighbour:
    """One neighbouring frame as the temporal stage sees it, on the display-window canvas.

    Attributes:
        alpha: [H, W] float32 raw matte.
        image: [H, W] uint8 :func:`vfxmatte.flow.flow_image` of its plate.
        valid: [H, W] bool, where ``alpha`` holds pixels (its data window); None: everywhere.
    """

    alpha: np.ndarray
    image: np.ndarray
    valid: np.ndarray | None = None


def smooth_alpha(
    alpha: np.ndarray,
    trimap: np.ndarray,
    image: np.ndarray,
    neighbours: Sequence[Neighbour],
    settings: TemporalSettings,
    cache: FlowCache | None = None,
) -> np.ndarray:
    """Frame ``alpha`` blended with its flow-warped neighbours inside the unknown band.

    Args:
        alpha: [H, W] float raw matte of the frame, in [0, 1].
        trimap: [H, W] canonical trimap of the frame (only its unknown pixels change).
        image: [H, W] uint8 flow image of the frame's plate.
        neighbours: the window's other frames that exist, in any order (the result does not
            depend on the order up to float rounding; callers pass them sorted by frame).
        settings: see :class:`TemporalSettings`.
        cache: optional flow cache (never changes the result).

    Returns:
        [H, W] float32 in [0, 1].

    Raises:
        InputError: shapes differ.
    """
    a = np.asarray(alpha, dtype=np.float32)
    if a.ndim != 2 or trimap.shape != a.shape or image.shape != a.shape:
        raise InputError(f"temporal: alpha {a.shape}, trimap {trimap.shape} and image {image.shape} must be one [H, W] shape")
    band = trimap == np.float32(UNKNOWN)
    if not neighbours or not band.any():
        return a.copy()
    num = a.copy()
    den = np.ones_like(a)
    grid = pixel_grid(a.shape)
    tol = np.float32(settings.alpha_tolerance)
    for n in neighbours:
        if n.alpha.shape != a.shape or n.image.shape != a.shape:
            raise InputError(f"temporal: a neighbour's alpha {n.alpha.shape} / image {n.image.shape} differ from the frame's {a.shape}")
        map_x, map_y, bad = reliable_warp(image, n.image, settings.flow, settings.occlusion_px, cache, grid)
        warped = cv2.remap(np.asarray(n.alpha, np.float32), map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        if n.valid is not None:
            inside = cv2.remap(n.valid.astype(np.uint8), map_x, map_y, cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
            bad |= inside == 0
        closeness = np.clip(np.float32(1.0) - np.abs(warped - a) / tol, 0.0, 1.0)
        weight = np.where(bad | ~band, np.float32(0.0), np.float32(settings.strength) * closeness * closeness)
        num += weight * warped
        den += weight
    out = np.where(band, num / den, a)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def smooth_clip(
    alphas: Sequence[np.ndarray],
    trimaps: Sequence[np.ndarray],
    images: Sequence[np.ndarray],
    settings: TemporalSettings,
    cache: FlowCache | None = None,
) -> list[np.ndarray]:
    """A whole clip's raw mattes through the stage, as `vfxmatte run` gives them when every frame
    of the clip is on disk: frame ``i`` blended with frames ``i - radius .. i + radius`` of the
    clip (fewer at its ends). For benchmarks and tools holding a clip in memory."""
    out = []
    for i in range(len(alphas)):
        window = range(max(0, i - settings.radius), min(len(alphas), i + settings.radius + 1))
        neighbours = [Neighbour(alphas[j], images[j]) for j in window if j != i]
        out.append(smooth_alpha(alphas[i], trimaps[i], images[i], neighbours, settings, cache))
    return out
