"""Dense optical flow between plates for keyframe trimap propagation (issue 17 §2).

Flow runs on an 8-bit grey image of the plate in the network's working encoding
(:func:`flow_image`), with OpenCV's DIS (Kroeger et al., "Fast Optical Flow using Dense
Inverse Search", ECCV 2016) at a bounded working resolution: the plate is area-downscaled so
its longest side is at most :attr:`FlowSettings.max_side`, and the flow is scaled back to
full-resolution pixels.

Invariants:

* ``compute_flow(src, dst)`` returns ``flow`` with ``src(x) ~ dst(x + flow(x))``, in
  full-resolution pixels, pixel centres at integer coordinates.
* It is a pure function of the two images, their shape, the settings and the OpenCV build:
  byte-identical across calls, processes and machines' core counts. DIS splits its patch search
  into one stripe per OpenCV thread, so the thread count is pinned for the call
  (:data:`DIS_STRIPES`).
* :class:`FlowCache` stores the exact float32 result under a key of the image bytes, shape,
  settings and OpenCV version, so a cached flow is byte-identical to a computed one and farm
  chunks can share the cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from vfxmatte.errors import ImageWriteError, InputError, PropagationError
from vfxmatte.io.atomic import atomic_write

__all__ = [
    "DIS_STRIPES", "FLOW_PRESETS", "PHOTOMETRIC_TOLERANCE", "FlowCache", "FlowSettings", "compute_flow", "flow_image",
    "pixel_grid", "reliable_warp",
]

FLOW_PRESETS = ("ultrafast", "fast", "medium")

_DIS_PRESETS = {
    "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}

#: OpenCV threads (hence DIS patch-search stripes) used for every flow, whatever the machine:
#: the stripe count changes DIS's spatial propagation, so it is fixed for determinism.
DIS_STRIPES = 4

#: Below this many pixels on the short side DIS's coarsest pyramid level is degenerate; smaller
#: working images are not made (flow then runs on the plate as it is).
_MIN_WORKING_SIDE = 32

# Rec. 709 luma weights, applied to the working (sRGB-encoded) values as video luma is.
_LUMA = np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)

_cv2_threads_lock = threading.Lock()  # cv2.setNumThreads is process-global

#: A warped sample whose 8-bit grey brightness is further than this outside the 3x3 range
#: around its source is unreliable (:func:`reliable_warp`). None: no photometric check.
PHOTOMETRIC_TOLERANCE: int | None = 8


@dataclass(frozen=True)
class FlowSettings:
    """How flow is computed: method, DIS preset and the working resolution bound.

    Attributes:
        method: the flow algorithm; only ``"dis"`` (OpenCV DIS) is built in.
        preset: DIS preset, one of :data:`FLOW_PRESETS`.
        max_side: flow runs on the plate downscaled so its longest side is at most this many
            pixels (plates already smaller run as they are).

    Raises:
        PropagationError: an unknown method or preset, or ``max_side`` below 32.
    """

    method: Literal["dis"] = "dis"
    preset: Literal["ultrafast", "fast", "medium"] = "medium"
    max_side: int = 1024

    def __post_init__(self) -> None:
        if self.method != "dis":
            raise PropagationError(f"flow method: expected 'dis', got {self.method!r}")
        if self.preset not in FLOW_PRESETS:
            raise PropagationError(f"flow preset: expected one of {', '.join(FLOW_PRESETS)}, got {self.preset!r}")
        if isinstance(self.max_side, bool) or not isinstance(self.max_side, int) or self.max_side < _MIN_WORKING_SIDE:
            raise PropagationError(f"flow max_side: expected an integer >= {_MIN_WORKING_SIDE}, got {self.max_side!r}")

    def to_dict(self) -> dict:
        """JSON-able, in declaration order."""
        return asdict(self)


def flow_image(rgb_working: np.ndarray) -> np.ndarray:
    """The 8-bit grey image DIS sees, at full resolution.

    Args:
        rgb_working: [H, W, C>=3] float plate in the working encoding (sRGB-encoded, 0..1);
            channels past the third (alpha) are ignored, NaN counts as 0.

    Returns:
        [H, W] uint8: Rec. 709 luma of the working values clipped to [0, 1], rounded to 8 bits.

    Raises:
        InputError: the plate is not [H, W, C] with C >= 3.
    """
    rgb = np.asarray(rgb_working)
    if rgb.ndim != 3 or rgb.shape[2] < 3:
        raise InputError(f"flow image: expected an [H, W, 3] plate, got shape {rgb.shape}")
    rgb = np.clip(np.nan_to_num(rgb[..., :3].astype(np.float32, copy=False), nan=0.0, posinf=1.0, neginf=0.0), 0.0, 1.0)
    luma = rgb @ _LUMA
    return np.rint(luma * 255.0).astype(np.uint8)


def _check_pair(src: np.ndarray, dst: np.ndarray) -> None:
    for name, img in (("src", src), ("dst", dst)):
        if not isinstance(img, np.ndarray) or img.ndim != 2 or img.dtype != np.uint8:
            shape = getattr(img, "shape", None)
            dtype = getattr(img, "dtype", type(img).__name__)
            raise InputError(f"flow {name}: expected an [H, W] uint8 flow_image(), got shape {shape} dtype {dtype}")
    if src.shape != dst.shape:
        raise InputError(f"flow: src and dst differ in shape ({src.shape} vs {dst.shape})")


def _working_size(h: int, w: int, max_side: int) -> tuple[int, int]:
    scale = min(1.0, max_side / max(h, w))
    if scale >= 1.0 or min(h, w) * scale < _MIN_WORKING_SIDE:
        return h, w
    return max(1, int(round(h * scale))), max(1, int(round(w * scale)))


def compute_flow(src: np.ndarray, dst: np.ndarray, settings: FlowSettings) -> np.ndarray:
    """Dense flow from ``src`` to ``dst``: ``src(x) ~ dst(x + flow(x))``.

    Both images are area-downscaled to the working size (longest side <= ``settings.max_side``),
    DIS runs there, and the flow is bilinearly upscaled and multiplied by the scale factors.

    Args:
        src, dst: :func:`flow_image` outputs of equal shape, [H, W] uint8.
        settings: method, preset and working resolution.

    Returns:
        [H, W, 2] float32 flow (dx, dy) in full-resolution pixels; byte-identical for equal
        inputs across calls and processes.

    Raises:
        InputError: the images are not [H, W] uint8 or differ in shape.
    """
    _check_pair(src, dst)
    h, w = src.shape
    wh, ww = _working_size(h, w, settings.max_side)
    if (wh, ww) != (h, w):
        a = cv2.resize(src, (ww, wh), interpolation=cv2.INTER_AREA)
        b = cv2.resize(dst, (ww, wh), interpolation=cv2.INTER_AREA)
    else:
        a, b = src, dst
    dis = cv2.DISOpticalFlow_create(_DIS_PRESETS[settings.preset])
    with _cv2_threads_lock:
        before = cv2.getNumThreads()
        cv2.setNumThreads(DIS_STRIPES)
        try:
            flow = dis.calc(np.ascontiguousarray(a), np.ascontiguousarray(b), None)
        finally:
            cv2.setNumThreads(before)
    flow = np.asarray(flow, dtype=np.float32)
    if (wh, ww) != (h, w):
        flow = cv2.resize(flow, (w, h), interpolation=cv2.INTER_LINEAR)
        flow[..., 0] *= np.float32(w / ww)
        flow[..., 1] *= np.float32(h / wh)
    return np.ascontiguousarray(flow, dtype=np.float32)


class FlowCache:
    """Optional on-disk cache of :func:`compute_flow` results; it never changes a result.

    A flow is stored as an exact float32 ``.npy`` under ``root/<k[:2]>/<k>.npy``, where ``k`` is
    the sha256 of a format tag, the OpenCV version, the settings, the shape and both images'
    bytes (:meth:`key`). Files are written with :func:`vfxmatte.io.atomic.atomic_write`, so
    farm chunks sharing one cache see a complete flow or none; an unreadable or mismatched
    file is recomputed and replaced.

    Args:
        root: the cache folder (created on first write), or None for no cache: :meth:`flow`
            then just computes.
    """

    _FORMAT = b"vfxmatte-flow-cache-v1"

    def __init__(self, root: str | os.PathLike | None) -> None:
        self.root = None if root is None else Path(root)

    @classmethod
    def key(cls, src: np.ndarray, dst: np.ndarray, settings: FlowSettings) -> str:
        """The hex sha256 a flow is stored under."""
        _check_pair(src, dst)
        h = hashlib.sha256()
        h.update(cls._FORMAT)
        h.update(cv2.__version__.encode())
        h.update(json.dumps(settings.to_dict(), sort_keys=True).encode())
        h.update(np.asarray(src.shape, dtype=np.int64).tobytes())
        h.update(np.ascontiguousarray(src).tobytes())
        h.update(np.ascontiguousarray(dst).tobytes())
        return h.hexdigest()

    def path(self, src: np.ndarray, dst: np.ndarray, settings: FlowSettings) -> Path | None:
        """Where the flow for these inputs is (or would be) stored; None without a cache."""
        if self.root is None:
            return None
        k = self.key(src, dst, settings)
        return self.root / k[:2] / f"{k}.npy"

    def flow(self, src: np.ndarray, dst: np.ndarray, settings: FlowSettings) -> np.ndarray:
        """:func:`compute_flow` ``(src, dst, settings)``, read from the cache when stored there.

        Raises:
            InputError: as :func:`compute_flow`.
            ImageWriteError: the cache file cannot be written, naming it.
        """
        path = self.path(src, dst, settings)
        if path is None:
            return compute_flow(src, dst, settings)
        expect = (*src.shape, 2)
        try:
            stored = np.load(path, allow_pickle=False)
            if stored.dtype == np.float32 and stored.shape == expect:
                return np.ascontiguousarray(stored)
        except (OSError, ValueError, EOFError):
            pass  # missing or unreadable: recompute and replace it
        flow = compute_flow(src, dst, settings)
        with atomic_write(path, error=ImageWriteError, what="flow cache file", mode=0o666) as tmp:
            with open(tmp, "wb") as fh:
                np.save(fh, flow, allow_pickle=False)
        return flow


def pixel_grid(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """The float32 pixel-centre coordinates ``(x, y)`` of an [H, W] image, for ``cv2.remap``."""
    h, w = shape
    return (np.ascontiguousarray(np.broadcast_to(np.arange(w, dtype=np.float32), (h, w))),
            np.ascontiguousarray(np.broadcast_to(np.arange(h, dtype=np.float32)[:, None], (h, w))))


def reliable_warp(
    here: np.ndarray,
    there: np.ndarray,
    settings: FlowSettings,
    occlusion_px: float,
    cache: FlowCache | None = None,
    grid: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where each pixel of ``here`` is found in ``there``, and where that cannot be trusted.

    The one reliability rule of flow-based work (label propagation and the temporal alpha
    stage): with ``F = flow(here, there)`` and ``B = flow(there, here)``, the sample of pixel
    ``x`` is at ``x + F(x)``; it is unreliable where it lies outside the frame, where the
    round trip fails ``|F(x) + B(x + F(x))| > occlusion_px`` (occlusion, flow error), or where
    the sample's brightness is more than :data:`PHOTOMETRIC_TOLERANCE` outside the 3x3 range
    around it in ``there`` (both flows wrong yet agreeing, as on an occluder faster than DIS
    follows; the 3x3 range keeps sub-pixel misalignment on texture from counting as error).

    Args:
        here, there: :func:`flow_image` outputs of equal shape.
        settings: flow settings; occlusion_px: the round-trip threshold in pixels (> 0).
        cache: optional flow cache (never changes the result).
        grid: the pixel-coordinate grids ``(x, y)`` of this shape, if the caller has them.

    Returns:
        ``(map_x, map_y, bad)``: float32 sample coordinates for ``cv2.remap`` and a bool mask.
    """
    cache = cache if cache is not None else FlowCache(None)
    h, w = here.shape
    gx, gy = grid if grid is not None else pixel_grid((h, w))
    fwd = cache.flow(here, there, settings)  # here(x) ~ there(x + fwd(x))
    bwd = cache.flow(there, here, settings)  # there(y) ~ here(y + bwd(y))
    map_x = gx + fwd[..., 0]
    map_y = gy + fwd[..., 1]
    back = cv2.remap(bwd, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    err2 = (fwd[..., 0] + back[..., 0]) ** 2 + (fwd[..., 1] + back[..., 1]) ** 2
    bad = (err2 > np.float32(occlusion_px) ** 2) | (map_x < -0.5) | (map_x > w - 0.5) | (map_y < -0.5) | (map_y > h - 0.5)
    if PHOTOMETRIC_TOLERANCE is not None:
        k3 = np.ones((3, 3), np.uint8)
        lo = cv2.remap(cv2.erode(there, k3), map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        hi = cv2.remap(cv2.dilate(there, k3), map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        here_i = here.astype(np.int16)
        bad |= (here_i < lo.astype(np.int16) - PHOTOMETRIC_TOLERANCE) | (here_i > hi.astype(np.int16) + PHOTOMETRIC_TOLERANCE)
    return map_x, map_y, bad
