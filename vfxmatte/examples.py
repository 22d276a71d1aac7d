"""Procedural example shots, made offline and deterministically (no downloads, no repo files).

``shot010``: a head of hair seen from behind, drifting across an out-of-focus garden. Hundreds
of thin anti-aliased strands and flyaways over a soft head-and-shoulders body: the fine,
partially covering detail matting exists for. Written as the job ``jobs/shot010.yaml`` expects:

    DIR/plates/shot010.####.exr    half-float scene-linear RGB (ACEScg by default), 960x540
    DIR/trimaps/shot010.####.png   8-bit trimaps: 0 background, 128 unknown, 255 foreground
    DIR/truth/shot010.####.exr     the true alpha (half-float ``A``), for checking a matte

The plate is composited in linear light (``I = a F + (1 - a) B``) from the true alpha, so the
truth is exact. Everything comes from a seeded generator: the same call gives the same files.

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

from vfxmatte.color import ColorConverter
from vfxmatte.errors import InputError
from vfxmatte.io.image import write_exr, write_image
from vfxmatte.io.sequence import FrameSequence

__all__ = ["EXAMPLES", "ExampleShot", "make_example", "make_shot010"]

#: ``progress(done, total)`` after each frame.
Progress = Callable[[int, int], None]

# Supersampling of the hair strands: drawn 1 px wide at 3x, they land ~0.3-0.6 px wide and
# partially covering at 1x, like real hair at 2K.
_SS = 3


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
            "trimap": {"mode": "sequence", "path": str(Path(self.trimaps).absolute())},
            "model": {"checkpoint": str(checkpoint)},
            "output": {"path": str(Path(output).absolute())},
        }


# --------------------------------------------------------------------------- textures


def _fractal_noise(rng: np.random.Generator, h: int, w: int, base: float, octaves: int = 5) -> np.ndarray:
    """Smooth value noise in about [-1, 1]: octaves of bicubic-upsampled white noise.

    ``base`` is the feature size of the coarsest octave, in pixels.
    """
    out = np.zeros((h, w), np.float32)
    amp, total, scale = 1.0, 0.0, base
    for _ in range(octaves):
        gh, gw = max(2, int(h / scale) + 2), max(2, int(w / scale) + 2)
        grid = rng.standard_normal((gh, gw)).astype(np.float32)
        out += amp * cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
        total += amp
        amp *= 0.5
        scale /= 2.0
    return out / (total * 0.8)


def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """An out-of-focus garden in linear Rec.709: bright sky at the top, foliage below, bokeh."""
    y = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None]
    n1 = _fractal_noise(rng, h, w, base=w / 4)
    n2 = _fractal_noise(rng, h, w, base=w / 10)
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


@dataclass(frozen=True)
class _Strand:
    root_angle: float  # where on the scalp the strand grows (radians around the head centre)
    length: float  # in head radii
    curl: float  # curvature per unit length
    phase: float  # sway phase
    group: int  # opacity group
    flyaway: bool


def _strands(rng: np.random.Generator, count: int) -> list[_Strand]:
    out = []
    for i in range(count):
        flyaway = i % 9 == 0
        out.append(
            _Strand(
                root_angle=float(rng.uniform(-math.pi * 1.05, math.pi * 0.05)),
                length=float(rng.uniform(1.3, 2.4) if not flyaway else rng.uniform(0.6, 1.4)),
                curl=float(rng.normal(0.0, 0.6 if not flyaway else 1.6)),
                phase=float(rng.uniform(0, 2 * math.pi)),
                group=int(rng.integers(0, 4)),
                flyaway=flyaway,
            )
        )
    return out


def _hair_alpha(strands: list[_Strand], h: int, w: int, cx: float, cy: float, r: float, t: float) -> np.ndarray:
    """Coverage of the strands at frame time ``t`` (seconds), float32 [h, w] in 0..1."""
    H, W = h * _SS, w * _SS
    canvases = [np.zeros((H, W), np.uint8) for _ in range(4)]
    levels = (255, 215, 170, 120)  # strand opacity per group
    polys: list[list[np.ndarray]] = [[] for _ in range(4)]
    steps = 28
    for s in strands:
        # Roots on the upper scalp, growing outward then falling with gravity.
        x = cx + r * 0.92 * math.cos(s.root_angle)
        y = cy + r * 0.92 * math.sin(s.root_angle)
        ang = s.root_angle
        sway = 0.25 * math.sin(2 * math.pi * 0.5 * t + s.phase) * (1.6 if s.flyaway else 1.0)
        seg = s.length * r / steps
        pts = []
        for k in range(steps + 1):
            pts.append((x * _SS, y * _SS))
            u = k / steps
            # Bend towards "down" (pi/2) as the strand grows, plus curl and sway.
            down = math.atan2(math.sin(math.pi / 2 - ang), math.cos(math.pi / 2 - ang))
            ang += (0.10 if not s.flyaway else 0.03) * down + s.curl * seg / r + sway * 0.08 * u
            x += seg * math.cos(ang)
            y += seg * math.sin(ang)
        polys[s.group].append(np.round(np.array(pts) * 16).astype(np.int32))  # 4 fractional bits
    for g in range(4):
        if polys[g]:
            cv2.polylines(canvases[g], polys[g], False, levels[g], 1, cv2.LINE_AA, shift=4)
    merged = np.maximum.reduce(canvases).astype(np.float32) / 255.0
    return cv2.resize(merged, (w, h), interpolation=cv2.INTER_AREA)


def _body_alpha(h: int, w: int, cx: float, cy: float, r: float) -> np.ndarray:
    """A soft head-and-shoulders silhouette (slight defocus and motion blur at the edge)."""
    H, W = h * 2, w * 2
    m = np.zeros((H, W), np.uint8)
    c = (int(cx * 2), int(cy * 2))
    cv2.ellipse(m, c, (int(r * 2 * 0.92), int(r * 2 * 1.08)), 0, 0, 360, 255, -1, cv2.LINE_AA)
    # Neck and shoulders.
    cv2.rectangle(m, (int((cx - 0.45 * r) * 2), int(cy * 2)), (int((cx + 0.45 * r) * 2), int((cy + 1.6 * r) * 2)), 255, -1)
    cv2.ellipse(m, (c[0], int((cy + 2.6 * r) * 2)), (int(r * 2 * 2.3), int(r * 2 * 1.3)), 0, 180, 360, 255, -1, cv2.LINE_AA)
    cv2.rectangle(m, (int((cx - 2.3 * r) * 2), int((cy + 2.6 * r) * 2)), (int((cx + 2.3 * r) * 2), H), 255, -1)
    a = cv2.resize(m.astype(np.float32) / 255.0, (w, h), interpolation=cv2.INTER_AREA)
    return np.clip(cv2.GaussianBlur(a, (0, 0), 1.0), 0.0, 1.0)


def _trimap_from_alpha(alpha: np.ndarray, band: int) -> np.ndarray:
    """8-bit-ready trimap (0 / 0.5 / 1): unknown wherever alpha is partial, widened by ``band`` px."""
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * band + 1, 2 * band + 1))
    some = cv2.dilate((alpha > 0.005).astype(np.uint8), k)
    solid = cv2.erode((alpha > 0.995).astype(np.uint8), k)
    t = np.full(alpha.shape, 0.5, np.float32)
    t[some == 0] = 0.0
    t[solid > 0] = 1.0
    return t


# --------------------------------------------------------------------------- shot010


def make_shot010(
    out_dir: str | os.PathLike[str],
    frames: Iterable[int] = range(1001, 1025),
    width: int = 960,
    height: int = 540,
    colorspace: str = "acescg",
    seed: int = 10,
    progress: Progress | None = None,
) -> ExampleShot:
    """Write the shot010 example plates, trimaps and true alphas under ``out_dir``.

    Args:
        out_dir: the shot folder (``plates/``, ``trimaps/`` and ``truth/`` are made in it).
        frames: frame numbers; motion is continuous in the frame number (24 fps).
        width, height: plate size (the hair scales with it).
        colorspace: the plates' colourspace, as a job names it (``acescg``, ``lin_rec709`` ...).
        seed: everything random derives from it.

    Raises:
        InputError: no frames, or a size too small to draw.
        ColorError, ImageWriteError: from the colour conversion or the writers.
    """
    frames = tuple(int(f) for f in frames)
    if not frames:
        raise InputError("shot010: no frames to generate")
    if width < 32 or height < 32:
        raise InputError(f"shot010: plate size {width}x{height} is too small (min 32x32)")
    root = Path(out_dir)
    shot = ExampleShot(
        name="shot010",
        root=root,
        plates=str(root / "plates" / "shot010.####.exr"),
        trimaps=str(root / "trimaps" / "shot010.####.png"),
        truth=str(root / "truth" / "shot010.####.exr"),
        frames=frames,
        colorspace=colorspace,
    )
    rng = np.random.default_rng(seed)
    pan = max(8, width // 6)  # the camera pans across a wider background
    background = _background(rng, height, width + pan)
    r = 0.17 * height  # head radius
    strands = _strands(rng, count=int(900 * max(0.25, min(1.0, height / 540))))
    hair_tex = _fractal_noise(rng, height, width, base=max(4.0, r / 3))
    coat_tex = _fractal_noise(rng, height, width, base=max(4.0, r / 2))
    hair_rgb = np.array([0.16, 0.085, 0.04], np.float32)  # brunette, linear
    highlight = np.array([0.55, 0.40, 0.26], np.float32)
    coat_rgb = np.array([0.05, 0.07, 0.12], np.float32)
    to_plate = ColorConverter(None, "lin_rec709", colorspace)
    band = max(2, round(height / 54))
    plates, trimaps, truth = (FrameSequence(p) for p in (shot.plates, shot.trimaps, shot.truth))
    f0 = frames[0]
    for i, f in enumerate(frames):
        t = (f - f0) / 24.0
        # The figure drifts right and bobs; the camera pans the other way.
        cx = width * (0.36 + 0.2 * t)
        cy = height * 0.55 + 0.015 * height * math.sin(2 * math.pi * 0.4 * t)
        off = min(pan, pan * t)
        shift = np.float32([[1, 0, -off], [0, 1, 0]])
        bg = cv2.warpAffine(background, shift, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)

        body = _body_alpha(height, width, cx, cy, r)
        hair = _hair_alpha(strands, height, width, cx, cy, r, t)
        yy = (np.arange(height, dtype=np.float32)[:, None] - cy) / r
        # Head (hair-covered) above the neck, coat below.
        on_head = np.clip(4.0 * (1.0 - yy), 0.0, 1.0)[..., None] * np.ones((1, width, 1), np.float32)
        shade = 1.0 + 0.35 * hair_tex[..., None]
        body_rgb = on_head * hair_rgb * shade + (1 - on_head) * coat_rgb * (1.0 + 0.3 * coat_tex[..., None])
        strand_rgb = hair_rgb * 1.1 + 0.5 * highlight * np.clip(0.5 + 0.5 * hair_tex, 0, 1)[..., None] ** 3
        # Backlight: the rim of the hair catches the sky.
        strand_rgb = strand_rgb * (1.0 + 0.8 * np.clip(-yy, 0, 1)[..., None])

        a_body, a_hair = body[..., None], hair[..., None]
        under = a_body * body_rgb + (1 - a_body) * bg
        linear = a_hair * strand_rgb + (1 - a_hair) * under
        # Film grain, stronger in the darks as on a real scan (frame-seeded: deterministic).
        grain = np.random.default_rng(seed * 100003 + f).standard_normal(linear.shape).astype(np.float32)
        linear = np.maximum(linear + 0.006 * np.sqrt(linear + 0.01) * grain, 0.0)
        alpha = 1.0 - (1.0 - hair) * (1.0 - body)

        plate = to_plate.apply(linear) if to_plate.src != to_plate.dst else linear
        meta = {"Copyright": "vfxmatte procedural example (CC0)", "vfxmatte:example": "shot010"}
        write_exr(
            plates.path(f),
            {"R": plate[..., 0], "G": plate[..., 1], "B": plate[..., 2]},
            compression="zip",
            metadata={**meta, "oiio:ColorSpace": to_plate.dst},
        )
        write_image(
            trimaps.path(f),
            _trimap_from_alpha(alpha, band),
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
