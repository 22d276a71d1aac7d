"""A shot's keyframe trimaps: reading them, propagating them, and the written trimaps' records.

The shot side of issue 17 (the method is :mod:`vfxmatte.propagate`'s). A job in a propagated
mode (``trimap.mode: keyframes``, or ``mode: mask`` with ``missing: propagate``) names a few
keyframes; :class:`ShotPropagation` gives every frame its trimap:

* **Keyframes** are the listed ``trimap.frames`` or, without a list, the files of
  ``trimap.path`` on disk; any frames, inside or outside the plate range. They are in the
  plate's **display window** size (overscan plates: the frame, not the data window). A
  keyframe trimap is read with :func:`vfxmatte.io.image.read_trimap`; a roto mask keyframe
  becomes a trimap with :func:`vfxmatte.trimap.from_mask`.
* **Flow images** come from the plates read through the same colour conversion the network
  sees, placed on the display-window canvas (outside the data window: black), so a data window
  that changes per frame moves nothing. A trimap handed to the network is cropped back to the
  frame's data window; overscan pixels outside the display window are unknown (no keyframe
  says anything about them, and unreliable is never confident fg/bg, issue 17 §2).
* **Written propagated trimaps** (``vfxmatte propagate``) are 8-bit PNGs, 0 / 128 / 255,
  written atomically through :mod:`vfxmatte.io`. Each carries its **record** in the PNG text
  attribute ``vfxmatte:propagation`` (JSON, :meth:`ShotPropagation.record`): the keyframes it
  used (frame -> sha256 of the keyframe file's bytes), the propagation settings, how keyframes
  become trimaps, the plate colour conversion, the vfxmatte and OpenCV versions and a hash of
  the size and mtime of every plate file in the chain. A written trimap is used only when its
  record equals the one the job gives now; otherwise it is stale and is propagated again.
  Keyframes are hashed by content (small files, the ones artists edit); plates by size and
  modification time, as make does: checking a trimap then reads no plate, and a plate that is
  replaced or re-rendered gets a new mtime. A plate copied without its times (``cp`` without
  ``-p``) only makes trimaps stale, never wrongly fresh.

Everything a frame's trimap depends on is in its record, and nothing else is: the trimap of
frame ``f`` is the same whichever frames a process runs (chunk independence, issue 17 §3). The
in-memory caches here (flow images, keyframe trimaps) only save work.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import OrderedDict
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from vfxmatte import __version__
from vfxmatte import trimap as tm
from vfxmatte.color import ColorConverter
from vfxmatte.errors import InputError, SequenceError, TrimapError, VfxMatteError
from vfxmatte.flow import FlowCache, flow_image
from vfxmatte.io.image import ImageInfo, read_first_header, read_image, read_mask, read_trimap, write_image
from vfxmatte.io.sequence import FrameSequence, resolve_frames
from vfxmatte.jobs import Job, MaskTrimap
from vfxmatte.propagate import PropagationSettings, keyframes_used, propagate_trimap

__all__ = [
    "RECORD_KEY", "ShotPropagation", "check_propagated_pattern", "plate_flow_image", "to_data_window", "to_display_window",
]

#: The PNG text attribute holding a written trimap's record.
RECORD_KEY = "vfxmatte:propagation"
_RECORD_FORMAT = 1

# 8-bit codes of the canonical palette bg / unknown / fg in written trimaps.
_CODES = np.array([0, 128, 255], dtype=np.uint8)

# Flow images kept in memory per process (a chain of d frames reads the d plates of the frame
# before it again), up to this many bytes whatever the plate size. Chain states themselves are
# kept by vfxmatte.propagate's own memo.
_IMAGE_BYTES = 256 << 20


def _window_slices(info: ImageInfo) -> tuple[tuple[slice, slice], tuple[slice, slice]] | None:
    """(display-canvas slices, data-array slices) of the data and display windows' overlap."""
    x0, x1 = max(info.x, info.full_x), min(info.x + info.width, info.full_x + info.full_width)
    y0, y1 = max(info.y, info.full_y), min(info.y + info.height, info.full_y + info.full_height)
    if x1 <= x0 or y1 <= y0:
        return None
    canvas = (slice(y0 - info.full_y, y1 - info.full_y), slice(x0 - info.full_x, x1 - info.full_x))
    data = (slice(y0 - info.y, y1 - info.y), slice(x0 - info.x, x1 - info.x))
    return canvas, data


def to_display_window(pixels: np.ndarray, info: ImageInfo, fill: float = 0.0) -> np.ndarray:
    """Data-window ``pixels`` ``[h, w, ...]`` placed on the display-window canvas of ``info``
    (pixels outside the display window dropped, the canvas outside the data window ``fill``)."""
    out = np.full((info.full_height, info.full_width, *pixels.shape[2:]), fill, dtype=pixels.dtype)
    s = _window_slices(info)
    if s is not None:
        out[s[0]] = pixels[s[1]]
    return out


def to_data_window(canvas: np.ndarray, info: ImageInfo, fill: float = tm.UNKNOWN) -> np.ndarray:
    """A display-window ``canvas`` cropped to the data window of ``info`` (overscan pixels
    outside the display window ``fill``: unknown for a trimap)."""
    out = np.full((info.height, info.width, *canvas.shape[2:]), fill, dtype=canvas.dtype)
    s = _window_slices(info)
    if s is not None:
        out[s[1]] = canvas[s[0]]
    return out


def plate_flow_image(working: np.ndarray, info: ImageInfo) -> np.ndarray:
    """The flow image of a plate frame (:func:`vfxmatte.flow.flow_image`): its working-encoding
    RGB over the data window ``info`` describes, on the display-window canvas. The one image
    flow sees, for propagation and for the temporal stage alike."""
    return flow_image(to_display_window(working, info))


def check_propagated_pattern(job: Job, pattern: str) -> str:
    """``pattern`` if propagated trimaps may be written there: a PNG sequence that is neither
    the plates nor the keyframes (or masks) of ``job``.

    Raises:
        InputError: naming the pattern and what it would overwrite.
        SequenceError: the pattern has no frame token.
    """
    pattern = os.path.normpath(os.path.abspath(os.path.expanduser(str(pattern))))
    FrameSequence(pattern)
    if Path(pattern).suffix.lower() != ".png":
        raise InputError(f"{pattern}: propagated trimaps are 8-bit PNG; the pattern must end in .png")
    what = {"plate.path": "the plates", "trimap.path": "the keyframes"}
    for key, other in job.inputs_overwritten_by(pattern):
        raise InputError(f"{pattern}: would overwrite {what[key]} ({other}); choose another pattern")
    return pattern


class ShotPropagation:
    """The trimaps of a job in a propagated mode: keyframes, plates' flow images, records.

    Args:
        job: a job whose ``trimap`` is ``keyframes``, or ``mask`` with ``missing: propagate``.
        converter: the pipeline's plate -> working-encoding conversion (what the network sees).

    Raises:
        InputError: the job's trimaps are not propagated.
    """

    def __init__(self, job: Job, converter: ColorConverter) -> None:
        spec = job.trimap
        if not spec.propagated:
            raise InputError(f"trimap mode {spec.mode!r} of {job.source} is not propagated from keyframes")
        self.job, self.spec = job, spec
        self.settings: PropagationSettings = spec.propagation.settings()
        self._converter = converter
        self._plates = FrameSequence(job.plate.path)
        self._keys = FrameSequence(spec.path)
        self.written = FrameSequence(job.propagated_trimaps)
        self._flows = FlowCache(spec.propagation.cache)
        self._frames: list[int] | None = None
        self._trimaps: dict[int, np.ndarray] | None = None
        self._shape: tuple[int, int] | None = None
        self._hashes: dict[int, str] = {}
        self._images: OrderedDict[int, np.ndarray] = OrderedDict()

    # -- keyframes
    @property
    def keyframe_frames(self) -> list[int]:
        """The keyframes, sorted: the listed ones, else those on disk.

        Raises:
            TrimapError: none on disk (no list given).
        """
        if self._frames is None:
            self._frames = self.keyframe_list(self.job)
        return list(self._frames)

    @staticmethod
    def keyframe_list(job: Job) -> list[int]:
        """The keyframes of ``job``, sorted: the listed ones, else those on disk (reads no pixel).

        Raises:
            TrimapError: none on disk (no list given).
        """
        listed = job.trimap.keyframe_list
        frames = sorted(set(listed)) if listed is not None else FrameSequence(job.trimap.path).discover()
        if not frames:
            raise TrimapError(f"no keyframes of {job.trimap.path} exist on disk")
        return frames

    def keyframe_path(self, frame: int) -> Path:
        return self._keys.path(frame)

    def used(self, frame: int) -> tuple[int, ...]:
        """The keyframes ``frame``'s trimap depends on.

        Raises:
            PropagationError: none within ``max_distance``, naming the frame.
        """
        return keyframes_used(frame, self.keyframe_frames, self.settings.max_distance)

    def _read_keyframe(self, frame: int) -> np.ndarray:
        path = self.keyframe_path(frame)
        if not path.is_file():
            raise TrimapError(f"keyframe {frame} missing: {path}")
        if isinstance(self.spec, MaskTrimap):
            return tm.from_mask(read_mask(path), self.spec.band_px, self.spec.threshold)
        return read_trimap(path, tolerance=self.spec.tolerance)

    def keyframes(self, shape: tuple[int, int]) -> dict[int, np.ndarray]:
        """Every keyframe's canonical trimap, checked against the display window ``shape`` (h, w).

        Raises:
            TrimapError: a keyframe is missing, unreadable, off the palette or of another size
                than the plate's display window, naming the keyframe file.
        """
        if self._trimaps is None:
            self._trimaps = {f: self._read_keyframe(f) for f in self.keyframe_frames}
        for f, t in self._trimaps.items():
            self._check_size(f, t.shape[1], t.shape[0], shape)
        return self._trimaps

    def check_headers(self, shape: tuple[int, int]) -> None:
        """What :meth:`keyframes` refuses that the keyframe files' headers show, reading no
        pixels: a keyframe missing, unreadable or of another size than ``shape`` (h, w).

        Raises:
            TrimapError, ImageReadError: naming the keyframe file.
        """
        for f in self.keyframe_frames:
            path = self.keyframe_path(f)
            if not path.is_file():
                raise TrimapError(f"keyframe {f} missing: {path}")
            info = read_first_header(path)
            self._check_size(f, info.width, info.height, shape)

    def _check_size(self, frame: int, width: int, height: int, shape: tuple[int, int]) -> None:
        if (height, width) != tuple(shape):
            raise TrimapError(
                f"keyframe {self.keyframe_path(frame)} is {width}x{height} but the plate's display "
                f"window is {shape[1]}x{shape[0]} (keyframes are painted in the display window)"
            )

    def _keyframe_hash(self, frame: int) -> str:
        if frame not in self._hashes:
            path = self.keyframe_path(frame)
            if not path.is_file():
                raise TrimapError(f"keyframe {frame} missing: {path}")
            # keyframes are small image files: read whole
            self._hashes[frame] = hashlib.sha256(path.read_bytes()).hexdigest()
        return self._hashes[frame]

    # -- plates
    def _plate_path(self, frame: int) -> Path:
        """The plate file standing for ``frame`` in a flow chain: its own; under
        ``plate.missing: hold`` or ``skip`` a missing one is the nearest plate on disk (ties: the
        earlier), as ``hold`` reads it, so the chain steps over the gap (a still step, then
        the whole motion at once) instead of failing the frames behind it. Only the disk
        decides, so chunks still agree.

        Raises:
            SequenceError: under ``error``, the plate is missing, naming it.
        """
        path = self._plates.path(frame)
        if path.is_file():
            return path
        if self.job.plate.missing != "error":
            try:
                return resolve_frames(self._plates, [frame], "hold")[0][1]
            except SequenceError:
                pass  # no plate at all: the message below says which one the chain needed
        raise SequenceError(f"frame {frame}: plate {path} is missing (needed to propagate the keyframe trimaps)")

    def flow_image(self, frame: int) -> np.ndarray:
        """The flow image of plate ``frame``: working encoding, display-window canvas, 8-bit grey.

        Raises:
            SequenceError: the plate file is missing; ImageReadError: unreadable.
        """
        if frame in self._images:
            self._images.move_to_end(frame)
            return self._images[frame]
        rgb, info = read_image(self._plate_path(frame), layer=self.job.plate.layer, view=self.job.plate.view)
        image = plate_flow_image(self._converter.apply(rgb), info)
        self._images[frame] = image
        # A chain reads up to 2 * max_distance + 1 plates; keep them, within the memory budget.
        keep = min(2 * self.settings.max_distance + 2, max(4, _IMAGE_BYTES // max(1, image.nbytes)))
        while len(self._images) > keep:
            self._images.popitem(last=False)
        return image

    def _chain(self, frame: int, used: tuple[int, ...]) -> list[int]:
        frames: set[int] = set()
        for k in used:
            frames.update(range(min(k, frame), max(k, frame) + 1))
        return sorted(frames) if used != (frame,) else []

    # -- records
    def record(self, frame: int) -> dict[str, Any]:
        """What ``frame``'s propagated trimap depends on (module docstring), JSON-able.

        Raises:
            PropagationError, TrimapError, SequenceError: as :meth:`trimap`.
        """
        used = self.used(frame)
        stats = []
        for j in self._chain(frame, used):
            st = self._plate_path(j).stat()
            stats.append([j, self._plates.path(j).name, st.st_size, st.st_mtime_ns])
        plates = hashlib.sha256(json.dumps(stats, separators=(",", ":")).encode()).hexdigest()
        spec = self.spec
        source = (
            {"mode": "mask", "band_px": spec.band_px, "threshold": spec.threshold}
            if isinstance(spec, MaskTrimap)
            else {"mode": "keyframes", "tolerance": spec.tolerance}
        )
        return {
            "format": _RECORD_FORMAT,
            "frame": int(frame),
            "keyframes": {str(k): self._keyframe_hash(k) for k in used},
            "source": source,
            "settings": self.settings.to_dict(),
            "plate": {
                "colorspace": self.job.plate.colorspace,
                "layer": self.job.plate.layer,
                # (only when set, so the records of jobs without views stay as they were)
                **({"view": self.job.plate.view} if self.job.plate.view is not None else {}),
                "config": self.job.color.config,
                "files": plates,
            },
            "vfxmatte": __version__,
            "opencv": cv2.__version__,
        }

    def read_written(self, path: Path, record: dict[str, Any]) -> np.ndarray | None:
        """The trimap written at ``path`` if its record equals ``record``, else None (stale,
        missing, unreadable or without a record)."""
        if not path.is_file():
            return None
        try:
            pixels, info = read_image(path, channels=["Y"])
            stored = json.loads(str(info.metadata.get(RECORD_KEY, "")))
        except (VfxMatteError, ValueError, TypeError, OSError):
            return None  # unreadable or without a record: re-made
        if stored != json.loads(json.dumps(record)):
            return None
        try:
            return tm.quantize(pixels[..., 0], tolerance=0.1, name=str(path))
        except TrimapError:
            return None

    # -- trimaps
    def trimap(self, frame: int, shape: tuple[int, int], written: Path | None = None) -> np.ndarray:
        """``frame``'s canonical trimap in the display window ``shape`` (h, w): the trimap
        written at ``written`` when its record is up to date, else propagated now.

        Raises:
            PropagationError: no keyframe within ``max_distance``, naming the frame.
            TrimapError: a bad keyframe (naming its file) or a plate of another display size.
            SequenceError: a plate of the chain is missing.
        """
        keys = self.keyframes(shape)
        if written is not None:
            stored = self.read_written(written, self.record(frame))
            if stored is not None and stored.shape == tuple(shape):
                return stored
        return propagate_trimap(frame, keys, self.flow_image, self.settings, self._flows)

    def write(self, frame: int, shape: tuple[int, int], path: Path) -> bool:
        """Write ``frame``'s propagated trimap to ``path`` unless an up-to-date one is there.

        Returns:
            True if written, False if the file there was up to date.

        Raises:
            as :meth:`trimap`; ImageWriteError: the file cannot be written.
        """
        keys = self.keyframes(shape)
        record = self.record(frame)
        if self.read_written(path, record) is not None:
            return False
        t = propagate_trimap(frame, keys, self.flow_image, self.settings, self._flows)
        codes = _CODES[np.rint(t * 2).astype(np.intp)]
        meta = {RECORD_KEY: json.dumps(record, sort_keys=True, separators=(",", ":"))}
        write_image(path, codes, ["Y"], pixel_type="uint8", metadata=meta)
        return True
