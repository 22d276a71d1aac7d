"""Procedural example shots, made offline and deterministically (no downloads, no repo files).

``shot010``: a head of hair seen from behind, drifting across an out-of-focus garden. Locks of
thin, tapered, partially covering strands and flyaways over a soft head-and-shoulders body:
the fine detail matting exists for. The hair is grown once by :func:`vfxmatte.procedural.grow_hair`
(the training generator's strand code), then moves with the head and sways in the wind from
frame to frame. Written as the job ``jobs/shot010.yaml`` expects:

    DIR/plates/shot010.####.exr    half-float scene-linear RGB (ACEScg by default), 960x540
    DIR/trimaps/shot010.####.png   8-bit trimaps: 0 background, 128 unknown, 255 foreground
    DIR/truth/shot010.####.exr     the true alpha (half-float ``A``), for checking a matte

With ``keyframes`` (``vfxmatte example shot010 --keyframes``) the trimaps are written only on
those frames, as ``DIR/keyframes/shot010.####.png``: the keyframe trimaps ``jobs/shot010_keyframes.yaml``
propagates to the other frames (``trimap.mode: keyframes``).

The plate is composited in linear light (``I = a F + (1 - a) B``) from the true alpha, so the
truth is exact; the trimap is :func:`vfxmatte.trimap.from_alpha` of the truth, its unknown band
covering every partial pixel and widened by about ``height / 54`` pixels. Everything comes from
a seeded generator: the same call gives the same files.

Example:
    >>> shot = make_shot010("examples/shot010")  # doctest: +SKIP
    >>> shot.plates  # doctest: +SKIP
    'examples/shot010/plates/shot010.####.exr'
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import cv2
import numpy as np

from vfxmatte import trimap as tm
from vfxmatte.color import ColorConverter
from vfxmatte.errors import InputError
from vfxmatte.io.image import write_exr, write_image
from vfxmatte.io.sequence import FrameSequence
from vfxmatte.procedural import (
    FlowField,
    Outline,
    StrandBatch,
    StrandCanvas,
    draw_strands,
    edge_alpha,
    grow_hair,
    mass_texture,
    over,
    value_noise,
)

__all__ = ["EXAMPLES", "ExampleShot", "make_example", "make_shot010"]

#: ``progress(done, total)`` after each frame.
Progress = Callable[[int, int], None]

# Supersampling of the strand canvas, as the training generator's default: sub-pixel strands
# get their true partial coverage.
_SS = 3

# Alpha within half an 8-bit step of 0 or 1 is known in the trimap (what an 8-bit matte stores
# as 0 or 255); every other pixel is in the unknown band.
_KNOWN_TOLERANCE = 0.5 / 255


@dataclass(frozen=True)
class ExampleShot:
    """Where an example's files were written (sequence patterns) and which frames."""

    name: str
    root: Path
    plates: str
    trimaps: str
    truth: str
    frames: tuple[int, ...]
    colorspace: str
    #: frames with a trimap when only keyframes were written (``trimaps`` is then their
    #: pattern); empty: a trimap on every frame
    keyframes: tuple[int, ...] = ()

    def job_dict(self, output: str | os.PathLike[str], checkpoint: str = "starter") -> dict:
        """A job mapping (the schema of ``jobs/README.md``) that mattes these plates into ``output``.

        Paths are absolute, so the mapping can be written anywhere (``yaml.safe_dump``).
        """
        return {
            "version": 1,
            "shot": self.name,
            "plate": {
                "path": str(Path(self.plates).absolute()),
                "frames": f"{self.frames[0]}-{self.frames[-1]}" if len(self.frames) > 1 else str(self.frames[0]),
                "colorspace": self.colorspace,
            },
            "trimap": {"mode": "keyframes" if self.keyframes else "sequence", "path": str(Path(self.trimaps).absolute())},
            "model": {"checkpoint": str(checkpoint)},
            "output": {"path": str(Path(output).absolute())},
        }


# --------------------------------------------------------------------------- background and figure


def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """An out-of-focus garden in linear Rec.709: bright sky at the top, foliage below, bokeh."""
    y = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None]
    # Value noise is roughly N(0, 1); halved, most of it lies in [-1, 1].
    n1 = 0.5 * value_noise(rng, h, w, w / 4, octaves=5)
    n2 = 0.5 * value_noise(rng, h, w, w / 10, octaves=5)
    # The sky/foliage boundary wanders with low-frequency noise.
    horizon = 0.35 + 0.12 * n1
    sky_w = np.clip((horizon - y) / 0.15 + 0.5, 0.0, 1.0)[..., None]
    sky = np.array([0.55, 0.70, 0.95], np.float32) * (1.1 - 0.5 * y[..., None]) + 0.08 * n2[..., None]
    leaf_tone = 0.5 + 0.5 * np.tanh(1.5 * n2)[..., None]
    foliage = (
        np.array([0.04, 0.09, 0.025], np.float32) * (1 - leaf_tone)
        + np.array([0.16, 0.26, 0.07], np.float32) * leaf_tone
    ) * (1.0 + 0.4 * n1[..., None])
    bg = sky_w * sky + (1.0 - sky_w) * foliage
    # Bokeh: soft discs of light through the leaves, a few brighter than 1.0 (HDR highlights).
    bokeh = np.zeros((h, w), np.float32)
    for _ in range(40):
        cy, cx = rng.uniform(0.2 * h, h), rng.uniform(0, w)
        r = rng.uniform(0.004, 0.03) * w
        cv2.circle(bokeh, (int(cx), int(cy)), max(1, int(r)), float(rng.lognormal(-1.2, 0.9)), -1, cv2.LINE_AA)
    bokeh = cv2.GaussianBlur(bokeh, (0, 0), max(1.0, w / 400))
    tint = np.array([1.0, 0.95, 0.8], np.float32)
    bg = bg + (1.0 - sky_w) * 0.6 * bokeh[..., None] * tint
    return cv2.GaussianBlur(np.maximum(bg, 0.0), (0, 0), 1.2).astype(np.float32)


def _head_field(h: int, w: int, cx: float, cy: float, r: float) -> np.ndarray:
    """Signed field [h, w], positive inside the head: an upright ellipse of radius ~``r``."""
    y = (np.arange(h, dtype=np.float32)[:, None] - np.float32(cy)) / np.float32(1.08 * r)
    x = (np.arange(w, dtype=np.float32)[None, :] - np.float32(cx)) / np.float32(0.92 * r)
    return (1.0 - np.sqrt(x * x + y * y)).astype(np.float32)


def _figure_field(h: int, w: int, cx: float, cy: float, r: float) -> np.ndarray:
    """Signed field [h, w], positive inside the head, neck and shoulders (down to the frame)."""
    y = np.arange(h, dtype=np.float32)[:, None] - np.float32(cy)
    dx = np.abs(np.arange(w, dtype=np.float32)[None, :] - np.float32(cx))
    neck = np.where(y > 0, (0.45 * r - dx) / r, -1.0)
    # Shoulders: the upper half of an ellipse 2.6 r below the head, continued straight down.
    sy = np.minimum(y - np.float32(2.6 * r), 0.0) / np.float32(1.3 * r)
    shoulders = 1.0 - np.sqrt((dx / np.float32(2.3 * r)) ** 2 + sy * sy)
    return np.maximum(np.maximum(_head_field(h, w, cx, cy, r), neck), shoulders).astype(np.float32)


def _swayed(b: StrandBatch, phase: np.ndarray, amp: float, t: float, dx: float, dy: float) -> StrandBatch:
    """``b`` moved by (dx, dy) and swayed sideways at time ``t``: roots still, tips most (0.5 Hz)."""
    p = b.points.shape[1]
    u = (np.arange(p, dtype=np.float32) / np.float32(p - 1)) ** 2
    side = np.float32(amp) * np.sin(np.float32(2 * math.pi * 0.5 * t) + phase)[:, None] * u[None, :]
    pts = b.points + np.array([dx, dy], np.float32)
    pts[..., 0] += side
    return StrandBatch(pts, b.width, b.opacity, b.shade, b.taper)


# --------------------------------------------------------------------------- shot010


def make_shot010(
    out_dir: str | os.PathLike[str],
    frames: Iterable[int] = range(1001, 1025),
    width: int = 960,
    height: int = 540,
    colorspace: str = "acescg",
    seed: int = 10,
    progress: Progress | None = None,
    keyframes: Iterable[int] | None = None,
) -> ExampleShot:
    """Write the shot010 example plates, trimaps and true alphas under ``out_dir``.

    Args:
        out_dir: the shot folder (``plates/``, ``trimaps/`` and ``truth/`` are made in it).
        frames: frame numbers; motion is continuous in the frame number (24 fps).
        width, height: plate size (the hair scales with it).
        colorspace: the plates' colourspace, as a job names it (``acescg``, ``lin_rec709`` ...).
        seed: everything random derives from it.
        keyframes: write trimaps only on these frames (a subset of ``frames``), into
            ``keyframes/`` instead of ``trimaps/``; empty: the first and last frame; None: a
            trimap on every frame.

    Raises:
        InputError: no frames, a keyframe outside ``frames``, or a size too small to draw.
        ColorError, ImageWriteError: from the colour conversion or the writers.
    """
    frames = tuple(int(f) for f in frames)
    if not frames:
        raise InputError("shot010: no frames to generate")
    if width < 32 or height < 32:
        raise InputError(f"shot010: plate size {width}x{height} is too small (min 32x32)")
    keys = tuple(sorted({int(k) for k in keyframes})) if keyframes is not None else ()
    if keyframes is not None and not keys:
        keys = tuple(sorted({frames[0], frames[-1]}))
    if keyframes is not None and (not keys or not set(keys) <= set(frames)):
        raise InputError(f"shot010: keyframes {list(keys)} must be some of the frames generated")
    root = Path(out_dir)
    shot = ExampleShot(
        name="shot010",
        root=root,
        plates=str(root / "plates" / "shot010.####.exr"),
        trimaps=str(root / ("keyframes" if keys else "trimaps") / "shot010.####.png"),
        truth=str(root / "truth" / "shot010.####.exr"),
        frames=frames,
        colorspace=colorspace,
        keyframes=keys,
    )
    rng = np.random.default_rng(seed)
    pan = max(8, width // 6)  # the camera pans across a wider background
    background = _background(rng, height, width + pan)
    r = 0.17 * height  # head radius

    def figure_at(t: float) -> tuple[float, float]:
        """Head centre at time ``t`` (seconds): the figure drifts right and bobs."""
        return width * (0.36 + 0.2 * t), height * 0.55 + 0.015 * height * math.sin(2 * math.pi * 0.4 * t)

    # The hair is grown once, at the first frame's head position, with the training generator's
    # strand code; each frame moves it with the head and sways it.
    cx0, cy0 = figure_at(0.0)
    head0 = _head_field(height, width, cx0, cy0, r)
    hair_size = 8.0 * r  # locks 0.08-0.35 of it long: about 0.6-2.8 head radii
    flow = FlowField(rng, height, width, 0.3 * hair_size)
    batches = grow_hair(rng, Outline(head0), flow, hair_size, fur=False)
    phases = [rng.uniform(0.0, 2 * math.pi, len(b.points)).astype(np.float32) for b in batches]
    sway = [0.15 * r * (1.6 if i else 1.0) for i in range(len(batches))]  # flyaways sway more

    # Colour of the figure at the first frame (head: hair seen from behind; below: a coat),
    # moved with the head each frame.
    hair_rgb = np.array([0.16, 0.085, 0.04], np.float32)  # brunette, linear
    highlight = np.array([0.55, 0.40, 0.26], np.float32)
    coat_rgb = np.array([0.05, 0.07, 0.12], np.float32)
    streaks, streak_shade = mass_texture(rng, head0, flow, height, width)
    head_shade = (1.0 + streaks * (streak_shade - 1.0)) * (1.0 + 0.2 * value_noise(rng, height, width, max(4.0, r / 3)))
    coat_shade = 1.0 + 0.15 * value_noise(rng, height, width, max(4.0, r / 2))
    yy0 = (np.arange(height, dtype=np.float32)[:, None] - cy0) / r
    on_head = np.clip(4.0 * (1.0 - yy0), 0.0, 1.0)[..., None] * np.ones((1, width, 1), np.float32)
    figure_rgb0 = on_head * hair_rgb * head_shade[..., None] + (1 - on_head) * coat_rgb * coat_shade[..., None]

    to_plate = ColorConverter(None, "lin_rec709", colorspace)
    band = max(2, round(height / 54))
    plates, trimaps, truth = (FrameSequence(p) for p in (shot.plates, shot.trimaps, shot.truth))
    f0 = frames[0]
    for i, f in enumerate(frames):
        t = (f - f0) / 24.0
        cx, cy = figure_at(t)
        off = min(pan, pan * t)  # the camera pans the other way
        shift = np.float32([[1, 0, -off], [0, 1, 0]])
        bg = cv2.warpAffine(background, shift, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        move = np.float32([[1, 0, cx - cx0], [0, 1, cy - cy0]])
        figure_rgb = cv2.warpAffine(figure_rgb0, move, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        body_a = edge_alpha(_figure_field(height, width, cx, cy, r), 1.5)

        canvas = StrandCanvas(height, width, _SS)
        draw_strands(canvas, [_swayed(b, ph, a, t, cx - cx0, cy - cy0) for b, ph, a in zip(batches, phases, sway)])
        hair_a, strand_shade = canvas.resolve()
        yy = (np.arange(height, dtype=np.float32)[:, None] - cy) / r
        # Backlight: the strands above the head's centre catch the sky.
        backlit = (1.0 + 0.8 * np.clip(-yy, 0, 1))[..., None]
        strand_rgb = (hair_rgb * 1.1 * strand_shade[..., None] + 0.3 * highlight * np.clip(strand_shade - 1.0, 0, 1)[..., None]) * backlit

        fg, alpha = over((strand_rgb, hair_a), (figure_rgb, body_a))
        linear = alpha[..., None] * fg + (1 - alpha[..., None]) * bg
        # Film grain, stronger in the darks as on a real scan (frame-seeded: deterministic).
        grain = np.random.default_rng(seed * 100003 + f).standard_normal(linear.shape).astype(np.float32)
        linear = np.maximum(linear + 0.006 * np.sqrt(linear + 0.01) * grain, 0.0)

        plate = to_plate.apply(linear) if to_plate.src != to_plate.dst else linear
        meta = {"Copyright": "vfxmatte procedural example (CC0)", "vfxmatte:example": "shot010"}
        write_exr(
            plates.path(f),
            {"R": plate[..., 0], "G": plate[..., 1], "B": plate[..., 2]},
            compression="zip",
            metadata={**meta, "oiio:ColorSpace": to_plate.dst},
        )
        if not keys or f in keys:
            write_image(
                trimaps.path(f),
                tm.from_alpha(alpha, tolerance=_KNOWN_TOLERANCE, kernel=2 * band + 1),
                ["Y"],
                pixel_type="uint8",
            )
        write_exr(truth.path(f), {"A": alpha}, compression="zip", metadata=meta)
        if progress is not None:
            progress(i + 1, len(frames))
    return shot


#: Example name -> generator ``(out_dir, **options) -> ExampleShot``.
EXAMPLES: dict[str, Callable[..., ExampleShot]] = {"shot010": make_shot010}


def make_example(
    name: str, out_dir: str | os.PathLike[str], progress: Progress | None = None, **options
) -> ExampleShot:
    """Generate the example shot ``name`` into ``out_dir``.

    Args:
        options: passed to the generator (``frames``, ``width``, ``height``, ``colorspace``, ``seed``).

    Raises:
        InputError: no such example (the message lists them).
    """
    if name not in EXAMPLES:
        raise InputError(f"unknown example {name!r} (examples: {', '.join(EXAMPLES)})")
    return EXAMPLES[name](out_dir, progress=progress, **options)
