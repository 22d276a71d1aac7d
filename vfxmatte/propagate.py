"""Keyframe trimaps propagated along the shot by optical flow (issue 17 §2, §3).

Method, for a frame ``f`` that is not a keyframe:

1. Take the nearest keyframe on each side of ``f`` within ``max_distance`` frames
   (:func:`keyframes_used`); one side is enough.
2. From each such keyframe ``k``, walk the chain of consecutive frames towards ``f``. At every
   step ``j -> j'`` the labels of ``j`` are backward-warped to ``j'`` with nearest-neighbour
   sampling along the flow ``j' -> j`` (:func:`vfxmatte.flow.compute_flow`), and a pixel
   becomes unknown when its sample lies outside the frame or the flow fails the
   forward-backward check: ``|F(x) + B(x + F(x))| > occlusion_px`` (occluded or unreliable).
   Labels are only ever moved or made unknown, never invented: an unreliable pixel is never
   confident fg or bg.
3. Between two keyframes the two chains are combined: a pixel keeps a label both agree on;
   every pixel where they disagree (including one side unknown) becomes unknown.
4. Flow is unreliable inside matting regions, so the unknown band is re-derived rather than
   trusted as warped: the warped unknown plus every fg/bg boundary is dilated by
   ``band_px + band_growth_px * d`` pixels, ``d`` the distance to the nearer keyframe used.

Invariants:

* A keyframe returns its own trimap exactly.
* Chunk independence: the result for ``f`` is a pure function of ``f``, the keyframes, the
  plates from each used keyframe to ``f`` and the settings; it never depends on other calls
  or on which frames a process ran. A :class:`vfxmatte.flow.FlowCache` only saves work.
* Labels travel as uint8 codes internally; the result is a canonical float32 trimap.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import cv2
import numpy as np

from vfxmatte.errors import InputError, PropagationError, TrimapError
from vfxmatte.flow import FlowCache, FlowSettings
from vfxmatte.trimap import BG, FG, UNKNOWN

__all__ = ["PropagationSettings", "keyframes_used", "propagate_trimap"]

# Internal label codes (uint8); _TO_TRIMAP maps them to the canonical palette.
_BG, _UNK, _FG = 0, 1, 2
_TO_TRIMAP = np.array([BG, UNKNOWN, FG], dtype=np.float32)


@dataclass(frozen=True)
class PropagationSettings:
    """How keyframe trimaps are propagated (documented defaults, issue 17 §1 and §6).

    Attributes:
        flow: how flow is computed between consecutive plates.
        band_px: width in pixels the unknown band is re-dilated by at distance 0.
        band_growth_px: extra dilation per frame of distance from the nearer keyframe
            (the default 1/3 is one pixel per three frames).
        occlusion_px: forward-backward consistency threshold in full-resolution pixels; a
            larger round-trip error makes the pixel unknown.
        max_distance: a frame farther than this from every keyframe fails with
            :class:`PropagationError`.

    Raises:
        PropagationError: a negative width, a non-positive occlusion threshold or a negative
            ``max_distance``.
    """

    flow: FlowSettings = field(default_factory=FlowSettings)
    band_px: float = 2.0
    band_growth_px: float = 1 / 3
    occlusion_px: float = 1.0
    max_distance: int = 100

    def __post_init__(self) -> None:
        if not isinstance(self.flow, FlowSettings):
            raise PropagationError(f"propagation flow: expected FlowSettings, got {type(self.flow).__name__}")
        for name in ("band_px", "band_growth_px"):
            value = getattr(self, name)
            if not np.isfinite(value) or value < 0:
                raise PropagationError(f"propagation {name}: expected a width >= 0 pixels, got {value!r}")
        if not np.isfinite(self.occlusion_px) or self.occlusion_px <= 0:
            raise PropagationError(f"propagation occlusion_px: expected a threshold > 0 pixels, got {self.occlusion_px!r}")
        if isinstance(self.max_distance, bool) or not isinstance(self.max_distance, int) or self.max_distance < 0:
            raise PropagationError(f"propagation max_distance: expected an integer >= 0 frames, got {self.max_distance!r}")

    def to_dict(self) -> dict:
        """JSON-able, keys in a stable order: recorded in written trimaps to detect staleness."""
        return {
            "flow": self.flow.to_dict(),
            "band_px": float(self.band_px),
            "band_growth_px": float(self.band_growth_px),
            "occlusion_px": float(self.occlusion_px),
            "max_distance": int(self.max_distance),
        }


def keyframes_used(frame: int, keyframe_frames: Iterable[int], max_distance: int) -> tuple[int, ...]:
    """The keyframes frame ``frame``'s propagated trimap depends on, in ascending order.

    ``(frame,)`` when it is a keyframe; otherwise the nearest keyframe before and the nearest
    after it, each only if within ``max_distance`` frames.

    Raises:
        PropagationError: no keyframe lies within ``max_distance`` (or there is none), naming the
            frame and the distance to its nearest keyframe.
    """
    frames = sorted({int(k) for k in keyframe_frames})
    frame = int(frame)
    if frame in frames:
        return (frame,)
    before = [k for k in frames if k < frame]
    after = [k for k in frames if k > frame]
    used = []
    if before and frame - before[-1] <= max_distance:
        used.append(before[-1])
    if after and after[0] - frame <= max_distance:
        used.append(after[0])
    if not used:
        if not frames:
            raise PropagationError(f"frame {frame}: no keyframes to propagate from", frame=frame)
        nearest = min(abs(k - frame) for k in frames)
        raise PropagationError(
            f"frame {frame}: nearest keyframe is {nearest} frames away, beyond max_distance {max_distance}",
            frame=frame, distance=nearest,
        )
    return tuple(used)


def _labels(trimap: np.ndarray, key: int) -> np.ndarray:
    """Canonical trimap -> uint8 label codes, rejecting a non-[H, W] or off-palette keyframe."""
    t = np.asarray(trimap)
    if t.ndim != 2:
        raise TrimapError(f"keyframe {key}: expected a single-channel [H, W] trimap, got shape {t.shape}")
    t = t.astype(np.float32, copy=False)
    codes = np.full(t.shape, 255, dtype=np.uint8)
    codes[t == BG] = _BG
    codes[t == UNKNOWN] = _UNK
    codes[t == FG] = _FG
    bad = codes == 255
    if bad.any():
        vals = np.unique(t[bad])[:5]
        raise TrimapError(
            f"keyframe {key}: {int(bad.sum())} pixels outside the palette bg=0/unknown=0.5/fg=1 "
            f"(e.g. {', '.join(f'{v:g}' for v in vals)})"
        )
    return codes


class _Plates:
    """Flow images of one call, each read once, checked against the keyframes' shape."""

    def __init__(self, plate: Callable[[int], np.ndarray], shape: tuple[int, int], keys: Iterable[int]) -> None:
        self._plate = plate
        self._shape = shape
        self._keys = set(keys)
        self._images: dict[int, np.ndarray] = {}

    def __getitem__(self, f: int) -> np.ndarray:
        if f not in self._images:
            img = np.asarray(self._plate(f))
            if img.dtype != np.uint8 or img.ndim != 2:
                raise InputError(f"frame {f}: plate() must return an [H, W] uint8 flow_image(), got {img.shape} {img.dtype}")
            if img.shape != self._shape:
                who = f"keyframe {f}: trimap" if f in self._keys else "keyframes: trimaps"
                raise TrimapError(
                    f"{who} {self._shape} differ in size from the plate of frame {f} {img.shape} "
                    "(keyframes are in the plate's display window)"
                )
            self._images[f] = img
        return self._images[f]


def _step(labels: np.ndarray, here: np.ndarray, there: np.ndarray, settings: PropagationSettings,
          cache: FlowCache, grid: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Labels of the frame ``there`` -> labels of the neighbouring frame ``here``."""
    fwd = cache.flow(here, there, settings.flow)  # here(x) ~ there(x + fwd(x))
    bwd = cache.flow(there, here, settings.flow)  # there(y) ~ here(y + bwd(y))
    map_x = grid[0] + fwd[..., 0]
    map_y = grid[1] + fwd[..., 1]
    # Nearest-neighbour backward warp; a sample outside the frame reads unknown.
    warped = cv2.remap(labels, map_x, map_y, cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT, borderValue=_UNK)
    back = cv2.remap(bwd, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    err2 = (fwd[..., 0] + back[..., 0]) ** 2 + (fwd[..., 1] + back[..., 1]) ** 2
    h, w = labels.shape
    outside = (map_x < -0.5) | (map_x > w - 0.5) | (map_y < -0.5) | (map_y > h - 0.5)
    warped[(err2 > np.float32(settings.occlusion_px) ** 2) | outside] = _UNK
    return warped


def _chain(key: int, frame: int, labels: np.ndarray, plates: _Plates, settings: PropagationSettings,
           cache: FlowCache) -> np.ndarray:
    """Labels carried step by step from keyframe ``key`` to ``frame``."""
    h, w = labels.shape
    grid = (np.broadcast_to(np.arange(w, dtype=np.float32), (h, w)),
            np.broadcast_to(np.arange(h, dtype=np.float32)[:, None], (h, w)))
    step = 1 if frame > key else -1
    for j in range(key, frame, step):
        there = plates[j]  # the keyframe's plate is read (and checked) first
        labels = _step(labels, plates[j + step], there, settings, cache, grid)
    return labels


def _rederive_band(labels: np.ndarray, radius: float) -> np.ndarray:
    """Unknown = (warped unknown + fg/bg boundary) dilated by ``radius`` px (Euclidean)."""
    fg = (labels == _FG).astype(np.uint8)
    bg = (labels == _BG).astype(np.uint8)
    cross = np.ones((3, 3), np.uint8)
    # A pixel of one label touching the other (8-neighbourhood) is on a boundary.
    boundary = ((fg > 0) & (cv2.dilate(bg, cross) > 0)) | ((bg > 0) & (cv2.dilate(fg, cross) > 0))
    seed = (labels == _UNK) | boundary
    out = labels.copy()
    if not seed.any():
        return out
    dist = cv2.distanceTransform((~seed).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    out[dist <= np.float32(radius)] = _UNK
    return out


def propagate_trimap(frame: int, keyframes: Mapping[int, np.ndarray], plate: Callable[[int], np.ndarray],
                     settings: PropagationSettings, cache: FlowCache | None = None) -> np.ndarray:
    """The trimap of ``frame``, propagated from the nearest keyframe(s) (module docstring).

    Args:
        frame: the frame wanted.
        keyframes: ``{frame: canonical trimap}`` ([H, W] float32 0/0.5/1), any frames in any
            order, inside or outside the range of frames asked for.
        plate: ``plate(f)`` -> :func:`vfxmatte.flow.flow_image` of frame ``f`` in the display
            window, the keyframes' shape; called only for frames between ``frame`` and each
            keyframe used.
        settings: propagation settings.
        cache: optional flow cache shared between calls and processes; results are identical
            without it.

    Returns:
        [H, W] float32 canonical trimap in {0, 0.5, 1}; a keyframe's own trimap exactly.

    Raises:
        PropagationError: no keyframe within ``settings.max_distance``, naming the frame.
        TrimapError: a keyframe is not [H, W], holds values off the palette or differs in shape
            from the others or from the plates, naming the keyframe.
        InputError: ``plate(f)`` is not an [H, W] uint8 flow image, naming the frame.
    """
    frame = int(frame)
    keys = {int(k): v for k, v in keyframes.items()}
    shape = None
    codes: dict[int, np.ndarray] = {}
    for k in sorted(keys):  # every keyframe is checked, so errors do not depend on the frame asked
        c = _labels(keys[k], k)
        if shape is None:
            shape = c.shape
        elif c.shape != shape:
            raise TrimapError(f"keyframe {k}: shape {c.shape} differs from the other keyframes' {shape}")
        codes[k] = c
    used = keyframes_used(frame, keys, settings.max_distance)
    if used == (frame,):
        return _TO_TRIMAP[codes[frame]]
    cache = cache if cache is not None else FlowCache(None)
    plates = _Plates(plate, shape, used)
    sides = [_chain(k, frame, codes[k], plates, settings, cache) for k in used]
    labels = sides[0]
    if len(sides) == 2:
        labels = np.where(sides[0] == sides[1], sides[0], np.uint8(_UNK)).astype(np.uint8)
    distance = min(abs(frame - k) for k in used)
    labels = _rederive_band(labels, settings.band_px + settings.band_growth_px * distance)
    return _TO_TRIMAP[labels]
