"""Keyframe trimaps propagated along the shot by optical flow (issue 17 §2, §3).

Method, for a frame ``f`` that is not a keyframe:

1. Take the nearest keyframe on each side of ``f`` within ``max_distance`` frames
   (:func:`keyframes_used`); one side is enough.
2. From each such keyframe ``k``, walk the chain of consecutive frames towards ``f`` with DIS
   flow both ways between neighbours (:func:`vfxmatte.flow.compute_flow`). Each step carries,
   for every pixel, its sub-pixel position in the keyframe (the previous positions resampled
   bilinearly at ``x + F(x)``, so slow motion is not rounded away step after step), and marks
   the pixel void (nothing known) when its sample lies outside the frame, fails the
   forward-backward check ``|F(x) + B(x + F(x))| > occlusion_px`` (occluded or unreliable), or
   changes brightness beyond :data:`PHOTOMETRIC_TOLERANCE` (both flows wrong yet agreeing, as
   on an occluder faster than DIS follows, or a strand flow cannot see). Void stays void. The
   keyframe's labels are then read once, nearest-neighbour, at the carried positions.
3. Between two keyframes the two chains are combined: a label both sides agree on stays; a
   pixel where they disagree (one says unknown, or fg against bg) becomes unknown; a pixel one
   side is void on takes the other side's label; void on both sides is unknown.
4. Flow is unreliable inside matting regions, so the unknown band is re-derived rather than
   trusted as warped: the warped unknown, the void and every fg/bg boundary are dilated by
   ``band_px + band_growth_px * d`` pixels (Euclidean), ``d`` the distance to the keyframe the
   pixel's label rests on (the nearer one where both sides agree).

Invariants:

* A keyframe returns its own trimap exactly.
* Labels are only moved, never invented: a pixel no chain can follow reliably is unknown,
  never confident fg or bg.
* Chunk independence: the result for ``f`` is a pure function of ``f``, the keyframes, the
  plates from each used keyframe to ``f`` and the settings; it never depends on other calls
  or on which frames a process ran. A :class:`vfxmatte.flow.FlowCache` only saves work, and
  so does the process-local memo of chain states (keyed by the content it depends on), which
  lets neighbouring frames propagated in one process share their chain's steps.
* Labels travel as uint8 codes internally; the result is a canonical float32 trimap.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import cv2
import numpy as np

from vfxmatte.errors import InputError, PropagationError, TrimapError
from vfxmatte.flow import PHOTOMETRIC_TOLERANCE, FlowCache, FlowSettings, pixel_grid, reliable_warp
from vfxmatte import trimap as tm
from vfxmatte.trimap import BG, FG, UNKNOWN

__all__ = ["METHOD_VERSION", "PropagationSettings", "keyframes_used", "propagate_trimap"]

# Internal label codes (uint8); _TO_TRIMAP maps them to the canonical palette.
# _VOID marks a pixel a chain knows nothing about (occluded, unreliable or from outside the
# frame): it is unknown in the result, but the other side's label may fill it.
_BG, _UNK, _FG, _VOID = 0, 1, 2, 3
_TO_TRIMAP = np.array([BG, UNKNOWN, FG], dtype=np.float32)

#: The propagation method's version, recorded by :meth:`PropagationSettings.to_dict`: bumped
#: whenever a change to the method changes results, so trimaps an earlier one wrote read as stale.
METHOD_VERSION = 2


@dataclass(frozen=True)
class PropagationSettings:
    """How keyframe trimaps are propagated (documented defaults, issue 17 §1 and §6).

    Attributes:
        flow: how flow is computed between consecutive plates.
        band_px: width in pixels the unknown band is re-dilated by at distance 0.
        band_growth_px: extra dilation per frame of distance from the nearer keyframe.

    The default band is narrow (1 px, no growth): chosen on the benchmark's validation clips
    (benchmarks/RESULTS.md, "Keyframe trimap propagation"), where a wider band costs matte
    quality (the network guesses over more pixels) and the band's area, and buys no coverage
    the warped keyframe band does not already give.
        occlusion_px: forward-backward consistency threshold in full-resolution pixels; a
            larger round-trip error makes the pixel unknown.
        max_distance: a frame farther than this from every keyframe fails with
            :class:`PropagationError`.

    Raises:
        PropagationError: a negative width, a non-positive occlusion threshold or a negative
            ``max_distance``.
    """

    flow: FlowSettings = field(default_factory=FlowSettings)
    band_px: float = 1.0
    band_growth_px: float = 0.0
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
        """JSON-able, keys in a stable order: recorded in written trimaps to detect staleness.

        Holds :data:`METHOD_VERSION` too, so a change of method also makes written trimaps stale.
        """
        return {
            "method_version": METHOD_VERSION,
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
    t = tm.validate(trimap, name=f"keyframe {key}")  # TrimapError naming the keyframe
    codes = np.full(t.shape, _UNK, dtype=np.uint8)
    codes[t == BG] = _BG
    codes[t == FG] = _FG
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


class _ChainMemo:
    """Chain states (positions, void) already computed in this process, keyed by content.

    A state is a pure function of the settings and the plates along its chain, so the key is a
    hash chain over exactly those (``_chain_keys``); a hit returns the state the computation
    would produce, and results stay byte-identical with or without it (chunk independence).
    It only saves the repeated steps of neighbouring frames propagated in one process. States
    are kept at the end of every chain and every :attr:`EVERY` steps along it, least recently
    used first out, at most :attr:`MAX_BYTES` of them (about 25 states of a 2K plate).
    """

    MAX_BYTES = 512 * 2**20
    EVERY = 4

    def __init__(self) -> None:
        self._states: OrderedDict[bytes, tuple[np.ndarray, np.ndarray, np.ndarray]] = OrderedDict()
        self._lock = threading.Lock()
        self.enabled = True

    def get(self, key: bytes):
        with self._lock:
            state = self._states.get(key) if self.enabled else None
            if state is not None:
                self._states.move_to_end(key)
            return state

    def put(self, key: bytes, state: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
        if not self.enabled:
            return
        for a in state:
            a.flags.writeable = False  # shared between calls: never modified in place
        with self._lock:
            self._states[key] = state
            self._states.move_to_end(key)
            while len(self._states) > 1 and sum(a.nbytes for st in self._states.values() for a in st) > self.MAX_BYTES:
                self._states.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._states.clear()


_MEMO = _ChainMemo()


def _chain_keys(frames: list[int], plates: _Plates, settings: PropagationSettings, cache: FlowCache) -> list[bytes]:
    """Hash chain: key ``i`` covers the settings, the method and the plates ``frames[:i + 1]``.

    The flow cache's folder is part of the key (though it never changes a result), so a
    process propagating with a cache fills that cache for the other chunks.
    """
    h = hashlib.sha256()
    h.update(json.dumps({**settings.to_dict(), "photometric": PHOTOMETRIC_TOLERANCE,
                         "cache": str(getattr(cache, "root", None))}).encode())
    keys = []
    for f in frames:
        img = plates[f]
        h.update(np.asarray(img.shape, np.int64).tobytes())
        h.update(img.tobytes())
        keys.append(h.copy().digest())
    return keys


def _step(state, here: np.ndarray, there: np.ndarray, settings: PropagationSettings, cache: FlowCache,
          grid: tuple[np.ndarray, np.ndarray]):
    """Chain state of frame ``there`` -> that of its neighbour ``here`` (see :func:`_chain`)."""
    pos, void = state[:2], state[2]
    map_x, map_y, bad = reliable_warp(here, there, settings.flow, settings.occlusion_px, cache, grid)
    void = cv2.remap(void, map_x, map_y, cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT, borderValue=1)
    void[bad] = 1
    pos_x = cv2.remap(pos[0], map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    pos_y = cv2.remap(pos[1], map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return pos_x, pos_y, void


def _chain(key: int, frame: int, codes: np.ndarray, plates: _Plates, settings: PropagationSettings,
           cache: FlowCache) -> np.ndarray:
    """Labels of keyframe ``key`` carried step by step along the flow chain to ``frame``.

    The chain carries, for every pixel of the current frame, its sub-pixel position in the
    keyframe (each step resamples the previous positions bilinearly at ``x + F(x)``, so slow
    motion is not rounded away step after step) and a void mask: pixels whose sample at some
    step left the frame, failed the forward-backward check or changed brightness beyond
    :data:`PHOTOMETRIC_TOLERANCE`. The keyframe's labels are read once, nearest-neighbour, at
    the final positions; void pixels (and positions outside the keyframe) come back ``_VOID``.
    The state depends on the plates and settings only, so :data:`_MEMO` may hold it.
    """
    step = 1 if frame > key else -1
    frames = list(range(key, frame + step, step))
    keys = _chain_keys(frames, plates, settings, cache)  # reads every plate of the chain, keyframe's first
    start, state = 0, None
    for i in range(len(frames) - 1, 0, -1):
        state = _MEMO.get(keys[i])
        if state is not None:
            start = i
            break
    grid = pixel_grid(codes.shape)
    if state is None:
        state = (grid[0].copy(), grid[1].copy(), np.zeros(codes.shape, np.uint8))
    for i in range(start, len(frames) - 1):
        state = _step(state, plates[frames[i + 1]], plates[frames[i]], settings, cache, grid)
        if (i + 1) % _ChainMemo.EVERY == 0 or i + 1 == len(frames) - 1:
            _MEMO.put(keys[i + 1], state)
    pos_x, pos_y, void = state
    labels = cv2.remap(codes, pos_x, pos_y, cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT, borderValue=_VOID)
    labels[void > 0] = _VOID
    return labels


def _combine(sides: list[np.ndarray], distances: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Labels from one or two chains and, per pixel, the distance of the keyframe they rest on.

    Where both sides are informative they must agree, else the pixel is unknown, and the nearer
    keyframe's distance applies; where one side is void the other side's label and distance
    apply; void on both sides stays void.
    """
    if len(sides) == 1:
        return sides[0], np.full(sides[0].shape, distances[0], np.float32)
    a, b = sides
    da, db = distances
    labels = np.where(a == b, a, np.uint8(_UNK))
    only_a, only_b = b == _VOID, a == _VOID
    labels = np.where(only_a, a, np.where(only_b, b, labels)).astype(np.uint8)
    distance = np.full(a.shape, min(da, db), np.float32)
    distance[only_a & (a != _VOID)] = da
    distance[only_b & (b != _VOID)] = db
    return labels, distance


def _rederive_band(labels: np.ndarray, distance: np.ndarray, settings: PropagationSettings) -> np.ndarray:
    """Unknown = (warped unknown + void + fg/bg boundary), each seed dilated by
    ``band_px + band_growth_px * distance`` px (Euclidean) for the keyframe distance it rests on."""
    fg = (labels == _FG).astype(np.uint8)
    bg = (labels == _BG).astype(np.uint8)
    k3 = np.ones((3, 3), np.uint8)
    # A pixel of one label touching the other (8-neighbourhood) is on a boundary.
    boundary = ((fg > 0) & (cv2.dilate(bg, k3) > 0)) | ((bg > 0) & (cv2.dilate(fg, k3) > 0))
    seed = (labels == _UNK) | (labels == _VOID) | boundary
    out = np.where(labels == _VOID, np.uint8(_UNK), labels).astype(np.uint8)
    for d in np.unique(distance[seed]):
        radius = np.float32(settings.band_px + settings.band_growth_px * float(d))
        group = seed & (distance == d)
        dist = cv2.distanceTransform((~group).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
        out[dist <= radius] = _UNK
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
    labels, distance = _combine(sides, [abs(frame - k) for k in used])
    return _TO_TRIMAP[_rederive_band(labels, distance, settings)]
