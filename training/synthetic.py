"""Procedural foregrounds and mattes for training without studio data.

What the network learns on real plates depends on how much these mattes look like real ones,
so every fine structure is built the way real mattes get their partial values:

* **hair** is thousands of thin strands, clumped into locks whose guide curves follow a smooth
  flow field (outward normal, gravity, curl, noise). Strands taper (thinner and fainter toward
  the tip), splay at the tips, and a few fly away. They are drawn anti-aliased on a canvas
  supersampled ``ss`` times and box-filtered down, so a strand a third of a pixel wide gives
  true partial coverage rather than a blurred ramp. The strand code is the core's
  :mod:`vfxmatte.procedural`, which the README's example shot draws its hair with too;
* **fur** is dense short tufts along a silhouette;
* **plants** are branching twigs with needles and leaves; **shrubs** (off in the default mix)
  are leafy crowns, opaque but for many small gaps between overlapping leaves;
* **nets and lace** are warped periodic or Voronoi thread meshes and cut-work patterns, so the
  background shows through holes;
* **smoke and glass/plastic** are smooth low-frequency alpha in 0.1-0.8 with rims and
  highlights;
* **fabric** (off by default) is woven cloth with a photo texture and a frayed, fringed, pile or
  sheer edge; **refractive** glass (off by default) bends the background seen through it;
* **solid bodies** (thresholded smooth noise or regions cut from photos) with a 1-2 px
  anti-aliased edge, sometimes motion-blurred or defocused (alpha and premultiplied colour
  blurred together).

Colour never is flat: foreground colour comes from crops of the real photos given as
``backgrounds`` (recoloured toward hair tones for hair), and every strand carries its own shade.

Working space: 0..1 sRGB-encoded values, like the photos themselves (the Deep Image Matting
convention; see ``training/DATA.md``).

Every sample is a pure function of ``(seed, index)``: the random stream comes from
``numpy.random.SeedSequence([seed, index])``; the photo cache holds decoded files only.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np

from vfxmatte.color import WORKING, ColorConverter
from vfxmatte.errors import DataError
from vfxmatte.io import read_photo, write_exr, write_image
from vfxmatte.io.atomic import atomic_write
from vfxmatte.procedural import (
    FlowField,
    Outline,
    StrandCanvas,
    draw_strands,
    draw_tapered,
    edge_alpha,
    gradient,
    grow_curves,
    grow_hair,
    mass_texture,
    normalise,
    over,
    rotate,
    strands_from_locks,
    value_noise,
)

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp"})

#: Hair base colours, sRGB-encoded (black, dark brown, brown, auburn, dark blond, blond,
#: platinum, grey): measured by eye from portraits, the point is a realistic spread.
_HAIR_COLOURS = np.array(
    [
        [0.06, 0.05, 0.05],
        [0.17, 0.11, 0.08],
        [0.32, 0.21, 0.13],
        [0.45, 0.20, 0.10],
        [0.55, 0.42, 0.27],
        [0.78, 0.64, 0.42],
        [0.88, 0.84, 0.74],
        [0.55, 0.54, 0.52],
    ],
    dtype=np.float32,
)


def list_images(root: Path | str | Sequence[Path | str]) -> list[Path]:
    """Image files under a folder (recursive) or from a list of files/folders, sorted.

    Raises:
        DataError: a path does not exist, or nothing usable was found.
    """
    roots = [root] if isinstance(root, (str, Path)) else list(root)
    found: list[Path] = []
    for r in roots:
        p = Path(r)
        if p.is_dir():
            found.extend(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
        elif p.is_file():
            found.append(p)
        else:
            raise DataError(f"{p}: background image or folder does not exist")
    found = sorted(set(found))
    if not found:
        raise DataError(f"{', '.join(str(r) for r in roots)}: no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    return found


def split_holdout(paths: Sequence[Path], holdout: Sequence[str] = ("bsds500/test",)) -> tuple[list[Path], list[Path]]:
    """Split photo paths into (train, held-out) by path fragments, e.g. BSDS500's test split.

    Validation composites built from the held-out photos never share a photo with training.
    """
    frags = [h.replace("\\", "/") for h in holdout]
    held = [p for p in paths if any(f in p.as_posix() for f in frags)]
    train = [p for p in paths if p not in set(held)]
    return train, held


class PhotoLibrary:
    """Real photos used for backgrounds and foreground colour, decoded once and cached.

    Photos are read by :func:`vfxmatte.io.read_photo` and kept as uint8 RGB with the long side
    capped at ``max_side`` (at most ``3 * max_side**2`` bytes each). Decoding is lazy, so a
    DataLoader worker holds only what it touched.
    """

    def __init__(self, paths: Sequence[Path | str] | Path | str, max_side: int = 1024) -> None:
        self.paths = list_images(paths)
        self.max_side = int(max_side)
        self._cache: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.paths)

    def __getstate__(self) -> dict[str, Any]:
        # Workers started with "spawn" rebuild their own cache instead of pickling pixels.
        state = self.__dict__.copy()
        state["_cache"] = {}
        return state

    def preload(self) -> "PhotoLibrary":
        """Decode every photo now. Call before DataLoader workers fork: they then share the
        decoded pixels (copy-on-write) instead of each decoding the whole set again."""
        for i in range(len(self)):
            self.get(i)
        return self

    def get(self, i: int) -> np.ndarray:
        """Photo ``i`` as uint8 RGB [h, w, 3], upright (:func:`vfxmatte.io.read_photo`)."""
        img = self._cache.get(i)
        if img is None:
            img = read_photo(self.paths[i])
            h, w = img.shape[:2]
            s = self.max_side / max(h, w)
            if s < 1.0:
                img = cv2.resize(img, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
            self._cache[i] = img
        return img

    def crop(
        self,
        rng: np.random.Generator,
        h: int,
        w: int,
        zoom: tuple[float, float] = (0.6, 1.6),
        index: int | None = None,
    ) -> np.ndarray:
        """A random crop of a random photo, resized to float32 [h, w, 3] in 0..1.

        ``zoom`` > 1 magnifies (fewer source pixels per output pixel); the crop is always
        covered by the photo, so small photos get magnified as needed. Random horizontal flip.
        """
        i = int(rng.integers(len(self))) if index is None else index
        img = self.get(i)
        ph, pw = img.shape[:2]
        z = max(float(rng.uniform(*zoom)), h / ph, w / pw)
        sh, sw = min(ph, max(1, round(h / z))), min(pw, max(1, round(w / z)))
        y0 = int(rng.integers(0, ph - sh + 1))
        x0 = int(rng.integers(0, pw - sw + 1))
        patch = img[y0 : y0 + sh, x0 : x0 + sw]
        interp = cv2.INTER_AREA if sh > h else cv2.INTER_LINEAR
        out = cv2.resize(patch, (w, h), interpolation=interp)
        if rng.random() < 0.5:
            out = out[:, ::-1]
        return out.astype(np.float32) * np.float32(1.0 / 255.0)


# --------------------------------------------------------------------------------------------
# Small numeric helpers
# --------------------------------------------------------------------------------------------


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def _luma(rgb: np.ndarray) -> np.ndarray:
    return rgb @ np.array([0.2126, 0.7152, 0.0722], np.float32)


def _tinted(tex: np.ndarray, tint: np.ndarray, mix: float) -> np.ndarray:
    """``tex`` pulled toward a plant colour ``tint`` by ``mix``, keeping its light and shade."""
    return np.clip((1 - mix) * tex + mix * tint * (0.5 + _luma(tex)[..., None]), 0, 1)


# --------------------------------------------------------------------------------------------
# Shapes
# --------------------------------------------------------------------------------------------


def _body_field(rng: np.random.Generator, h: int, w: int, photos: PhotoLibrary) -> np.ndarray:
    """Signed field whose positive part is an organic silhouette (person, animal, rock, plant).

    Built at quarter resolution (it is smooth) and upsampled; :func:`edge_alpha` gives the
    anti-aliased edge at full resolution.
    """
    q = 4
    hq, wq = max(4, h // q), max(4, w // q)
    yy, xx = np.mgrid[0:hq, 0:wq].astype(np.float32)
    yy *= h / hq
    xx *= w / wq
    cx = rng.uniform(0.25, 0.75) * w
    cy = rng.uniform(0.3, 1.0) * h
    rx = rng.uniform(0.18, 0.45) * w
    ry = rng.uniform(0.2, 0.55) * h
    ang = rng.uniform(-0.6, 0.6)
    c, s = math.cos(ang), math.sin(ang)
    dx, dy = xx - cx, yy - cy
    u, v = (c * dx + s * dy) / rx, (-s * dx + c * dy) / ry
    field = 1.0 - np.sqrt(u * u + v * v)
    if rng.random() < 0.4:
        # A second lobe: head on shoulders, an animal's body and head.
        cx2 = cx + rng.uniform(-0.5, 0.5) * rx
        cy2 = cy - rng.uniform(0.6, 1.3) * ry
        r2 = rng.uniform(0.4, 0.8) * min(rx, ry)
        f2 = 1.0 - np.sqrt((xx - cx2) ** 2 + (yy - cy2) ** 2) / r2
        field = np.maximum(field, f2)
    if rng.random() < 0.3:
        # Silhouette cut from a photo: smoothed luminance, kept near the blob.
        lum = _luma(photos.crop(rng, hq, wq))
        lum = cv2.GaussianBlur(lum, (0, 0), rng.uniform(1.0, 2.5))
        lum = (lum - lum.mean()) / (lum.std() + 1e-3)
        field = field + 0.15 * lum * rng.choice([-1.0, 1.0])
    field = field + rng.uniform(0.05, 0.25) * value_noise(rng, hq, wq, rng.uniform(40, 160) / q, octaves=3)
    return cv2.resize(field.astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)


# --------------------------------------------------------------------------------------------
# Hair and fur
# --------------------------------------------------------------------------------------------


def _hair_colour(rng: np.random.Generator, photos: PhotoLibrary, h: int, w: int, natural: bool) -> np.ndarray:
    """Foreground colour for hair/fur: a real photo texture, optionally recoloured to a hair tone.

    The crop is magnified (zoom > 1), which softens it like a blur at no extra cost.
    """
    tex = photos.crop(rng, h, w, zoom=(1.5, 4.0) if natural else (0.8, 2.0))
    if not natural:
        return tex
    base = _HAIR_COLOURS[int(rng.integers(len(_HAIR_COLOURS)))] * rng.uniform(0.8, 1.2, 3).astype(np.float32)
    lum = _luma(tex)
    mod = np.clip(1.0 + 0.5 * (lum / (lum.mean() + 1e-3) - 1.0), 0.6, 1.4)[..., None]
    mix = rng.uniform(0.0, 0.35)
    return np.clip((1 - mix) * base * mod + mix * tex, 0.0, 1.0).astype(np.float32)


# --------------------------------------------------------------------------------------------
# Layers: each returns (F [h, w, 3], alpha [h, w])
# --------------------------------------------------------------------------------------------

Layer = tuple[np.ndarray, np.ndarray]


def _solid_layer(rng: np.random.Generator, photos: PhotoLibrary, h: int, w: int, field: np.ndarray | None = None) -> Layer:
    if field is None:
        field = _body_field(rng, h, w, photos)
    a = edge_alpha(field, rng.uniform(0.7, 2.2))
    f = photos.crop(rng, h, w)
    # Simple shading across the object so the foreground is not a flat photo.
    g = value_noise(rng, h, w, 0.6 * max(h, w))[..., None]
    f = np.clip(f * (1.0 + 0.2 * g), 0, 1).astype(np.float32)
    return f, a


def _hairy_layer(rng: np.random.Generator, photos: PhotoLibrary, h: int, w: int, ss: int, fur: bool) -> Layer:
    """A body with hair or fur: the most important case (portraits, animals)."""
    size = math.sqrt(h * w)
    field = _body_field(rng, h, w, photos)
    body_a = edge_alpha(field, rng.uniform(0.7, 1.8))
    outline = Outline(field)
    flow = FlowField(rng, h, w, rng.uniform(0.15, 0.5) * size)
    natural = (not fur and rng.random() < 0.9) or (fur and rng.random() < 0.4)
    colour = _hair_colour(rng, photos, h, w, natural)
    canvas = StrandCanvas(h, w, ss)
    draw_strands(canvas, grow_hair(rng, outline, flow, size, fur))
    a_h, shade = canvas.resolve()
    a_i, shade_i = mass_texture(rng, field, flow, h, w)
    body_shade = 1.0 + a_i * (shade_i - 1.0)
    f_body = np.clip(colour * body_shade[..., None], 0, 1)
    f_hair = np.clip(colour * shade[..., None], 0, 1)
    return over((f_hair, a_h), (f_body, body_a))


def _branches(
    rng: np.random.Generator,
    flow: FlowField,
    h: int,
    w: int,
    trunks: tuple[int, int],
    depths: tuple[int, int],
    children: tuple[int, int],
    max_segments: int,
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """A branching skeleton grown from the bottom edge, one generation at a time.

    Returns per generation the segments [k, 12, 2] (x, y) and their widths [k] in pixels: each
    child starts on its parent, turned 0.3-1 rad off it, at half to 0.7 of its width and length.
    """
    size = math.sqrt(h * w)
    k0 = int(rng.integers(*trunks))
    p0 = np.stack([rng.uniform(0.15, 0.85, k0) * w, np.full(k0, h + 2.0)], axis=-1).astype(np.float32)
    d0 = normalise(np.stack([rng.normal(0, 0.3, k0), -np.ones(k0)], axis=-1)).astype(np.float32)
    wd = rng.uniform(1.5, 5.0, k0).astype(np.float32)
    ln = (rng.uniform(0.35, 0.7, k0) * size).astype(np.float32)
    segs_l: list[np.ndarray] = []
    width_l: list[np.ndarray] = []
    for _depth in range(int(rng.integers(*depths)) + 1):
        k = len(p0)
        g = grow_curves(p0, d0, ln, 12, flow, 0.2, np.full(k, -0.03, np.float32), rng.normal(0, 0.04, k).astype(np.float32), np.full(k, 0.05, np.float32), rng)
        segs_l.append(g)
        width_l.append(wd)
        n_child = rng.integers(*children, k)
        n_child[wd < 0.35] = 0
        if n_child.sum() == 0 or sum(len(x) for x in segs_l) > max_segments:
            break
        parent = np.repeat(np.arange(k), n_child)
        j = rng.integers(3, 12, len(parent))
        tang = normalise(g[parent, j] - g[parent, j - 1])
        p0 = g[parent, j]
        d0 = rotate(tang, (rng.choice([-1.0, 1.0], len(parent)) * rng.uniform(0.3, 1.0, len(parent))).astype(np.float32))
        wd = (wd[parent] * rng.uniform(0.45, 0.7, len(parent))).astype(np.float32)
        ln = (ln[parent] * rng.uniform(0.4, 0.7, len(parent))).astype(np.float32)
    return segs_l, width_l


def _plant_layer(rng: np.random.Generator, photos: PhotoLibrary, h: int, w: int, ss: int) -> Layer:
    """Branching twigs with needles or leaves, or a grass tuft."""
    size = math.sqrt(h * w)
    canvas = StrandCanvas(h, w, ss)
    flow = FlowField(rng, h, w, 0.4 * size)
    if rng.random() < 0.35:
        # Grass / seed heads: long thin blades from the bottom edge.
        m = int(rng.integers(20, 120))
        roots = np.stack([rng.uniform(0, w, m), np.full(m, h + 2.0)], axis=-1).astype(np.float32)
        dirs = rotate(np.tile(np.array([[0.0, -1.0]], np.float32), (m, 1)), rng.normal(0, 0.3, m).astype(np.float32))
        lengths = (rng.uniform(0.3, 0.95, m) * h).astype(np.float32)
        g = grow_curves(roots, dirs, lengths, 24, flow, 0.15, np.full(m, -0.02, np.float32), rng.normal(0, 0.02, m).astype(np.float32), np.full(m, 0.02, np.float32), rng)
        strands, lock, _ = strands_from_locks(g, rng.integers(1, 4, m), rng, np.full(m, 2.0, np.float32), np.full(m, 0.5, np.float32), np.full(m, 6.0, np.float32), 1.0)
        n = len(strands)
        draw_tapered(canvas, strands, rng.uniform(0.3, 2.5, n), rng.uniform(0.6, 1.0, n), rng.uniform(0.6, 1.4, n), 0.8)
    else:
        segs_l, width_l = _branches(rng, flow, h, w, (1, 4), (3, 6), (2, 5), 500)
        g = segs_l[-1]
        segs_a = np.concatenate(segs_l)
        widths = np.concatenate(width_l)
        tips = [g.reshape(-1, 2)]
        draw_tapered(canvas, segs_a, widths, np.ones(len(segs_a), np.float32), rng.uniform(0.6, 1.3, len(segs_a)).astype(np.float32), 0.3)
        if tips and rng.random() < 0.6:
            # Needles: short straight strands around the last twigs.
            tp = np.concatenate(tips)
            k = min(3000, len(tp) * int(rng.integers(2, 6)))
            base = tp[rng.integers(0, len(tp), k)]
            ang = rng.uniform(0, 2 * math.pi, k)
            ln = rng.uniform(0.01, 0.04, k) * size
            d = np.stack([np.cos(ang), np.sin(ang)], -1)
            needles = np.stack([base, base + d * ln[:, None]], axis=1).astype(np.float32)
            canvas.draw(needles, rng.uniform(0.3, 1.2, k), rng.uniform(0.7, 1.0, k), rng.uniform(0.6, 1.4, k))
        elif tips:
            # Leaves: small ellipses at twig ends.
            tp = np.concatenate(tips)[:: int(rng.integers(2, 5))]
            polys = []
            for c in tp[:300]:
                ax = rng.uniform(0.008, 0.03) * size
                polys.append(cv2.ellipse2Poly((0, 0), (100, int(100 * rng.uniform(0.25, 0.6))), int(rng.uniform(0, 360)), 0, 360, 20).astype(np.float32) * (ax / 100.0) + c)
            canvas.fill(polys, 1.0, rng.uniform(0.7, 1.2))
    a, shade = canvas.resolve()
    tex = photos.crop(rng, h, w)
    if rng.random() < 0.5:
        tint = np.array([rng.uniform(0.15, 0.5), rng.uniform(0.3, 0.6), rng.uniform(0.05, 0.3)], np.float32)
        tex = _tinted(tex, tint, 0.5)
    f = np.clip(tex * shade[..., None], 0, 1).astype(np.float32)
    return f, a


def _leaf_polygon(rng: np.random.Generator, centre: np.ndarray, length: float, angle: float) -> np.ndarray:
    """One leaf outline [P, 2]: an ellipse, pointed or rounded, its rim jittered (curl, bites)."""
    aspect = rng.uniform(0.2, 0.65)
    t = np.linspace(0, 2 * math.pi, 24, endpoint=False, dtype=np.float32)
    x, y = np.cos(t), np.sin(t) * aspect
    y = y * (1.0 - rng.uniform(0.0, 0.6) * np.abs(x) ** 2)  # pointed tips
    r = 1.0 + rng.uniform(0.0, 0.18) * rng.standard_normal(24).astype(np.float32)
    ca, sa = math.cos(angle), math.sin(angle)
    xs, ys = x * r * 0.5 * length, y * r * 0.5 * length
    return np.stack([xs * ca - ys * sa, xs * sa + ys * ca], axis=-1).astype(np.float32) + centre


def _shrub_layer(rng: np.random.Generator, photos: PhotoLibrary, h: int, w: int, ss: int) -> Layer:
    """A leafy shrub or potted plant: a crown of hundreds of overlapping opaque leaves on twigs.

    Unlike :func:`_plant_layer`'s sparse twigs, the crown is mostly opaque, and the background
    shows only through many small gaps between leaves and twigs, scattered over a wide unknown
    band: the net must find each gap from its colour alone rather than fill the crown with
    grey (alphamatting.com's bush, GT26, is this case). Leaves come in depth groups, the far
    ones darker, and a few thin bare twigs stick out of the crown.
    """
    size = math.sqrt(h * w)
    canvas = StrandCanvas(h, w, ss)
    flow = FlowField(rng, h, w, 0.4 * size)
    segs_l, width_l = _branches(rng, flow, h, w, (1, 3), (3, 6), (2, 5), 900)
    segs_a, widths = np.concatenate(segs_l), np.concatenate(width_l)
    draw_tapered(canvas, segs_a, widths * rng.uniform(0.8, 2.0), np.ones(len(segs_a), np.float32), rng.uniform(0.5, 1.1, len(segs_a)).astype(np.float32), 0.3)
    # The crown: a ragged blob (an ellipse bent by smooth noise) that leaves fill at random,
    # so their overlaps leave gaps of every size; sparser toward the rim.
    cy, cx = rng.uniform(0.2, 0.6) * h, rng.uniform(0.25, 0.75) * w
    ry, rx = rng.uniform(0.18, 0.45) * h, rng.uniform(0.2, 0.5) * w
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    field = 1.0 - np.hypot((yy - cy) / ry, (xx - cx) / rx) + 0.3 * value_noise(rng, h, w, 0.15 * size)
    leaf_max = rng.uniform(0.03, 0.08)
    leaf_len = np.exp(rng.uniform(math.log(0.012), math.log(leaf_max), 20000)).astype(np.float32) * size
    coverage = rng.uniform(0.7, 2.0)  # leaf area per crown area: 1 - exp(-c) of it covered
    crown_area = float((field > 0).sum())
    n = int(min(20000, coverage * crown_area / max(float((0.35 * leaf_len**2).mean()), 1.0)))
    cand = rng.uniform([0, 0], [w - 1, h - 1], (4 * n + 16, 2)).astype(np.float32)
    fv = field[cand[:, 1].astype(int), cand[:, 0].astype(int)]
    keep = fv > rng.uniform(-0.15, 0.35, len(cand))
    centres = cand[keep][:n]
    n = len(centres)
    leaf_len = leaf_len[:n]
    angle = rng.uniform(0, 2 * math.pi, n)
    # Far leaves first and darker; near leaves last and lighter (one cv2 call per group).
    groups = int(rng.integers(3, 7))
    depth = rng.integers(0, groups, n)
    for gi in range(groups):
        sel = np.flatnonzero(depth == gi)
        polys = [_leaf_polygon(rng, centres[i], float(leaf_len[i]), float(angle[i])) for i in sel]
        canvas.fill(polys, 1.0, float(np.clip(0.45 + 0.9 * (gi + rng.uniform(0, 1)) / groups, 0.3, 1.6)))
    a, shade = canvas.resolve()
    tex = photos.crop(rng, h, w, zoom=(0.5, 1.5))
    # Green foliage mostly, sometimes dry (brown, yellow) or left in the photo's own colours.
    pick_tint = rng.random()
    if pick_tint < 0.8:
        if pick_tint < 0.6:
            tint = np.array([rng.uniform(0.12, 0.45), rng.uniform(0.3, 0.6), rng.uniform(0.05, 0.25)], np.float32)
        else:
            tint = np.array([rng.uniform(0.4, 0.7), rng.uniform(0.3, 0.55), rng.uniform(0.1, 0.25)], np.float32)
        tex = _tinted(tex, tint, rng.uniform(0.4, 0.8))
    f = np.clip(tex * shade[..., None], 0, 1).astype(np.float32)
    return f, a


def _net_layer(rng: np.random.Generator, photos: PhotoLibrary, h: int, w: int, ss: int) -> Layer:
    """Periodic or irregular nets and lace, over a cloth-shaped region."""
    size = math.sqrt(h * w)
    kind = rng.random()
    warp_amp = rng.uniform(0.0, 0.02) * size
    warp_x = value_noise(rng, h, w, 0.3 * size) * warp_amp
    warp_y = value_noise(rng, h, w, 0.3 * size) * warp_amp
    if kind < 0.45:
        canvas = StrandCanvas(h, w, ss)
        spacing = rng.uniform(0.01, 0.05) * size
        theta = rng.uniform(0, math.pi)
        fams = [theta, theta + rng.choice([math.pi / 2, math.pi / 3, rng.uniform(0.5, 1.2)])]
        if rng.random() < 0.3:
            fams.append(theta + 2 * math.pi / 3)
        diag = math.hypot(h, w)
        lines = []
        for th in fams:
            d = np.array([math.cos(th), math.sin(th)], np.float32)
            nvec = np.array([-d[1], d[0]], np.float32)
            offs = np.arange(-diag / 2, diag / 2, spacing, dtype=np.float32)
            ts = np.arange(-diag / 2, diag / 2 + 8, 8, dtype=np.float32)
            c = np.array([w / 2, h / 2], np.float32)
            lines.append(c + offs[:, None, None] * nvec + ts[None, :, None] * d)
        pts = np.concatenate(lines)
        ix = np.clip(pts[..., 0], 0, w - 1).astype(int)
        iy = np.clip(pts[..., 1], 0, h - 1).astype(int)
        pts = pts + np.stack([warp_x[iy, ix], warp_y[iy, ix]], -1)
        n = len(pts)
        tw = rng.uniform(0.25, 2.0)
        canvas.draw(pts, np.full(n, tw, np.float32) * rng.uniform(0.8, 1.2, n), np.full(n, rng.uniform(0.7, 1.0), np.float32), rng.uniform(0.8, 1.2, n))
        a, shade = canvas.resolve()
    elif kind < 0.7:
        canvas = StrandCanvas(h, w, ss)
        k = int(rng.uniform(0.0005, 0.004) * h * w / 4)
        sub = cv2.Subdiv2D((-20, -20, w + 40, h + 40))
        for p in rng.uniform([-10, -10], [w + 10, h + 10], (max(k, 8), 2)):
            sub.insert((float(p[0]), float(p[1])))
        facets, _ = sub.getVoronoiFacetList([])
        polys = [np.concatenate([f, f[:1]]).astype(np.float32) for f in facets]
        # Resample each cell outline to a fixed count so they batch into one array.
        res = []
        for poly in polys:
            seg = np.linspace(0, len(poly) - 1, 24)
            i0 = np.clip(seg.astype(int), 0, len(poly) - 2)
            fr = (seg - i0)[:, None]
            res.append(poly[i0] * (1 - fr) + poly[i0 + 1] * fr)
        pts = np.stack(res).astype(np.float32)
        n = len(pts)
        canvas.draw(pts, np.full(n, rng.uniform(0.25, 1.8), np.float32), np.full(n, rng.uniform(0.7, 1.0), np.float32), rng.uniform(0.8, 1.2, n))
        a, shade = canvas.resolve()
    else:
        # Cut-work lace: a warped periodic pattern thresholded, anti-aliased by construction.
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        xx = xx + warp_x * 2
        yy = yy + warp_y * 2
        p1 = rng.uniform(0.015, 0.06) * size
        p2 = p1 * rng.uniform(0.7, 1.5)
        th = rng.uniform(0, math.pi)
        u = (math.cos(th) * xx + math.sin(th) * yy) * (2 * math.pi / p1)
        v = (-math.sin(th) * xx + math.cos(th) * yy) * (2 * math.pi / p2)
        pat = np.cos(u) * np.cos(v) + rng.uniform(0.0, 0.6) * np.cos(u * 2 + v) + 0.3 * value_noise(rng, h, w, p1 * 3)
        a = edge_alpha((pat - rng.uniform(-0.2, 0.5)).astype(np.float32), rng.uniform(0.8, 1.6))
        shade = np.ones((h, w), np.float32)
    # Optional veil (tulle) between threads, then cut the cloth region.
    veil = rng.uniform(0.0, 0.35) if rng.random() < 0.4 else 0.0
    a = 1.0 - (1.0 - a) * (1.0 - veil)
    region = edge_alpha(_body_field(rng, h, w, photos) + 0.3, rng.uniform(0.7, 1.5)) if rng.random() < 0.7 else 1.0
    a = (a * region).astype(np.float32)
    tex = photos.crop(rng, h, w)
    tone = rng.random()
    if tone < 0.35:
        tex = 0.75 + 0.25 * tex  # white lace
    elif tone < 0.6:
        tex = 0.2 * tex  # black net
    f = np.clip(tex * shade[..., None], 0, 1).astype(np.float32)
    return f, a


# --------------------------------------------------------------------------------------------
# Real texture: regions cut from photos along their own structure, rigid meshes
# --------------------------------------------------------------------------------------------


def _two_tone_score(feature: np.ndarray) -> tuple[float, float, float]:
    """(Otsu threshold, separability eta, share above it) of a feature map in 0..1.

    ``eta`` is the between-class share of the variance (1 = two flat tones, 0 = no split): a
    crop of branches against sky or a dark figure against a bright wall scores high.
    """
    q = np.clip(feature * 255.0, 0, 255).astype(np.uint8)
    t, _ = cv2.threshold(q, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
    above = feature > t / 255.0
    share = float(above.mean())
    var = float(feature.var())
    if var < 1e-6 or share in (0.0, 1.0):
        return t / 255.0, 0.0, share
    m1, m0 = float(feature[above].mean()), float(feature[~above].mean())
    return t / 255.0, share * (1.0 - share) * (m1 - m0) ** 2 / var, share


def _fill_small(mask: np.ndarray, min_area: int) -> np.ndarray:
    """``mask`` with holes and islands smaller than ``min_area`` pixels removed (filled or cleared)."""
    out = mask.copy()
    for value in (False, True):  # first fill small holes, then clear small islands
        comp = (out == value).astype(np.uint8)
        n, labels, stats, _ = cv2.connectedComponentsWithStats(comp, connectivity=8)
        small = np.flatnonzero(stats[:, cv2.CC_STAT_AREA] < min_area)
        small = small[small > 0]
        if len(small):
            out[np.isin(labels, small)] = not value
    return out


def _decontaminate(tex: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Foreground colour for a matte cut from ``tex`` itself: the photo where alpha is ~1, and
    the colour of the nearby opaque pixels spread into the soft edge (normalised blur at two
    scales), so the edge does not carry the source photo's own background."""
    solid = (alpha > 0.98).astype(np.float32)
    out = tex.copy()
    band = alpha <= 0.98
    if not solid.any() or not band.any():
        return out
    fill = None
    for sigma in (3.0, 12.0):
        wsum = cv2.GaussianBlur(solid, (0, 0), sigma)
        csum = cv2.GaussianBlur(tex * solid[..., None], (0, 0), sigma)
        est = csum / np.maximum(wsum, 1e-4)[..., None]
        ok = wsum > 0.02
        fill = np.where(ok[..., None], est, fill if fill is not None else tex)
    out[band] = fill[band]
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def _textured_layer(rng: np.random.Generator, photos: PhotoLibrary, h: int, w: int) -> Layer:
    """An opaque foreground with a real photo's texture, cut from that photo along its own edges.

    Of four crops of real photos the most two-toned in one feature (luminance, a random colour
    axis, or blue-vs-rest, the sky) is kept; one tone becomes the foreground: dense foliage
    and branches against the sky, a dark trunk against a bright wall, a rock against water.
    The region is the feature, lightly smoothed, thresholded at Otsu's level, without islands
    and holes smaller than a leaf, with an edge 1-3 px soft; its interior keeps all of the
    photo's texture, so what is opaque and what is background differ only in which photo they
    come from (the dataset composites over another photo). Most of the time, thin structures
    of the same tone next to the region (twigs, a leaf's serrated rim) add partial alpha from
    the unsmoothed feature. The colour in the soft edge is the nearby opaque colour
    (:func:`_decontaminate`), not the source's own mixed pixel.

    The alpha is an exact matte of the composite by construction, but it is not a real
    photo's matte: the cut follows the chosen feature's level set, so a boundary the feature
    does not see (a leaf as bright as the sky) is cut wrong, and soft edges are a ramp rather
    than measured coverage.
    """
    best: tuple[float, np.ndarray, np.ndarray, float, float] | None = None
    for _ in range(4):
        tex = photos.crop(rng, h, w, zoom=(0.7, 2.0))
        pick = rng.random()
        if pick < 0.45:
            feat = _luma(tex)
        elif pick < 0.7:
            feat = np.clip(0.5 + tex[..., 2] - 0.5 * (tex[..., 0] + tex[..., 1]), 0, 1)  # sky
        else:
            axis = rng.normal(0, 1, 3).astype(np.float32)
            axis /= np.abs(axis).sum() + 1e-6
            feat = np.clip(0.5 + (tex - tex.reshape(-1, 3).mean(0)) @ axis, 0, 1)
        t, eta, share = _two_tone_score(feat)
        score = eta * (1.0 if 0.15 < share < 0.85 else 0.3)
        if best is None or score > best[0]:
            best = (score, tex, feat.astype(np.float32), t, share)
    assert best is not None
    _, tex, feat, t, share = best
    # Either tone is the foreground (even odds): dark branches on sky, or the sky-lit side.
    sign = 1.0 if rng.random() < 0.5 else -1.0
    raw = sign * (feat - np.float32(t))
    smooth = cv2.GaussianBlur(raw, (0, 0), rng.uniform(0.8, 3.0))
    size = math.sqrt(h * w)
    mask = _fill_small(smooth > 0, int(rng.uniform(0.0003, 0.003) * h * w) + 4)
    # Signed field whose zero set follows the smoothed feature, with the small pieces fixed.
    field = np.where(mask, np.abs(smooth), -np.abs(smooth)).astype(np.float32)
    field = cv2.GaussianBlur(field, (0, 0), 0.7)
    a = edge_alpha(field, rng.uniform(1.0, 3.0))
    if rng.random() < 0.65:
        # Thin same-tone structure in a ring around the region gets partial alpha.
        contrast = float(np.abs(raw).mean()) + 1e-3
        fine = np.clip(0.5 + raw / np.float32(rng.uniform(0.5, 1.5) * contrast), 0.0, 1.0)
        k = int(rng.uniform(0.005, 0.02) * size) * 2 + 1
        ring = cv2.dilate((a > 0.5).astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
        a = np.maximum(a, fine * ring.astype(np.float32))
    a = a.astype(np.float32)
    return _decontaminate(tex, a), a


def _periodic_distance(u: np.ndarray, period: float, phase: float) -> np.ndarray:
    """Distance from coordinate ``u`` to the nearest of the lines ``phase + k * period``."""
    r = np.mod(u - np.float32(phase), np.float32(period))
    return np.minimum(r, np.float32(period) - r)


def _mesh_layer(rng: np.random.Generator, photos: PhotoLibrary, h: int, w: int, ss: int) -> Layer:
    """Rigid see-through structure: wire mesh and chain-link fences, lattices, perforated sheet.

    Unlike :func:`_net_layer`'s soft threads and lace, these are regular, opaque wires (0.6-5
    px), slats (a fifth to two fifths of the period) or a sheet with round holes, so the
    background shows through a grid of holes of one size; they are seen in perspective (a
    random homography: holes shrink with depth) and often fill the whole frame, as a fence
    in front of a scene does. Coverage is exact: the signed distance field of the structure
    is evaluated on a canvas ``ss`` times finer, anti-aliased by :func:`edge_alpha` and box-
    filtered down. Colour is a real photo's texture, half the time galvanised grey or painted,
    with a highlight along each wire.
    """
    size = math.sqrt(h * w)
    hs, ws = h * ss, w * ss
    # Plane coordinates of each canvas pixel (output-pixel units): a homography from a
    # jittered quadrilateral, plus a slight sag.
    j = rng.uniform(0.0, 0.25) * size if rng.random() < 0.7 else 0.0
    src = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)
    dst = (src + rng.uniform(-j, j, (4, 2))).astype(np.float32)
    hm = cv2.getPerspectiveTransform(dst, src).astype(np.float64)
    yy, xx = np.mgrid[0:hs, 0:ws].astype(np.float32)
    xx = (xx + 0.5) / ss - 0.5
    yy = (yy + 0.5) / ss - 0.5
    den = hm[2, 0] * xx + hm[2, 1] * yy + hm[2, 2]
    px = ((hm[0, 0] * xx + hm[0, 1] * yy + hm[0, 2]) / den).astype(np.float32)
    py = ((hm[1, 0] * xx + hm[1, 1] * yy + hm[1, 2]) / den).astype(np.float32)
    del xx, yy, den
    if rng.random() < 0.4:
        sag = cv2.resize(value_noise(rng, h, w, 0.5 * size), (ws, hs), interpolation=cv2.INTER_LINEAR)
        py = py + sag * np.float32(rng.uniform(0.0, 0.02) * size)
    theta = rng.uniform(0, math.pi)
    kind = rng.random()
    if kind < 0.55:
        # Welded square mesh (90 degrees) or chain link (diamonds, 55-80 degrees).
        period = rng.uniform(0.012, 0.07) * size
        width = min(rng.uniform(0.6, 5.0), 0.4 * period)
        angles = [theta, theta + (math.pi / 2 if rng.random() < 0.5 else rng.uniform(0.95, 1.4))]
        halfw = [0.5 * width] * 2
    elif kind < 0.8:
        # Lattice / trellis / grille: wide slats, two families or one (louvres, railings).
        period = rng.uniform(0.04, 0.16) * size
        width = rng.uniform(0.2, 0.4) * period
        angles = [theta, theta + rng.choice([math.pi / 2, math.pi / 4 + math.pi / 2])]
        if rng.random() < 0.3:
            angles = angles[:1]
        halfw = [0.5 * width * rng.uniform(0.8, 1.2) for _ in angles]
    else:
        angles, halfw = [], []
        period = rng.uniform(0.02, 0.08) * size
    dist_fields = []
    for th in angles:
        u = np.float32(math.cos(th)) * px + np.float32(math.sin(th)) * py
        dist_fields.append(_periodic_distance(u, period, rng.uniform(0, period)))
    if angles:
        parts = [np.float32(hw) - d for hw, d in zip(halfw, dist_fields)]
        field = np.maximum.reduce(parts) if len(parts) > 1 else parts[0]
        # Highlight across a wire: bright at its centre line (the nearest family's).
        near = np.minimum.reduce(dist_fields) if len(dist_fields) > 1 else dist_fields[0]
        across = np.clip(near / np.float32(max(halfw)), 0, 1)
        shade = 1.0 + np.float32(rng.uniform(0.1, 0.5)) * (1.0 - across * across) - np.float32(0.15)
    else:
        # Perforated sheet: round holes on a square or staggered grid.
        c, s = np.float32(math.cos(theta)), np.float32(math.sin(theta))
        u, v = c * px + s * py, -s * px + c * py
        stagger = rng.random() < 0.5
        row = np.floor(v / np.float32(period))
        u = u + (np.float32(0.5 * period) * np.mod(row, 2) if stagger else 0)
        du, dv = _periodic_distance(u, period, 0.0), _periodic_distance(v, period, 0.0)
        radius = rng.uniform(0.25, 0.45) * period
        field = np.sqrt(du * du + dv * dv) - np.float32(radius)
        shade = np.ones_like(field)
    # Where the structure ends: the whole frame (a fence in front of everything), a straight
    # panel edge in the plane, or a cloth-like region.
    pick = rng.random()
    if pick < 0.45:
        region = None
    elif pick < 0.8:
        ang = rng.uniform(0, 2 * math.pi)
        off = rng.uniform(0.2, 0.6) * size
        region = (np.float32(math.cos(ang)) * (px - w / 2) + np.float32(math.sin(ang)) * (py - h / 2)) + np.float32(off - 0.5 * size)
        region = -region
    else:
        body = _body_field(rng, h, w, photos) + 0.3
        region = cv2.resize(body, (ws, hs), interpolation=cv2.INTER_LINEAR) * np.float32(0.25 * size)
    if region is not None:
        field = np.minimum(field, region.astype(np.float32))
    a_fine = edge_alpha(field.astype(np.float32), 1.0)
    a = cv2.resize(a_fine, (w, h), interpolation=cv2.INTER_AREA) if ss > 1 else a_fine
    shade_w = cv2.resize((shade * a_fine).astype(np.float32), (w, h), interpolation=cv2.INTER_AREA) if ss > 1 else shade * a_fine
    shade = np.where(a > 1e-3, shade_w / np.maximum(a, 1e-3), 1.0).astype(np.float32)
    tex = photos.crop(rng, h, w, zoom=(0.8, 2.5))
    tone = rng.random()
    if tone < 0.3:
        grey = _luma(tex)[..., None]
        tex = np.clip(0.25 + 0.6 * grey + 0.1 * (tex - grey), 0, 1)  # galvanised steel
    elif tone < 0.5:
        paint = rng.uniform(0.03, 0.95, 3).astype(np.float32)
        tex = _tinted(tex, paint, rng.uniform(0.5, 0.9))
    f = np.clip(tex * shade[..., None], 0, 1).astype(np.float32)
    return f, np.clip(a, 0, 1).astype(np.float32)


def _ribbons(pts: np.ndarray, width: np.ndarray) -> np.ndarray:
    """Outline polygons [N, 2P, 2] of polylines ``pts`` [N, P, 2] thickened to ``width`` [N] px."""
    tang = normalise(np.gradient(pts, axis=1))
    nrm = np.stack([-tang[..., 1], tang[..., 0]], axis=-1) * (0.5 * width)[:, None, None]
    return np.concatenate([pts + nrm, (pts - nrm)[:, ::-1]], axis=1).astype(np.float32)


def _draw_yarn(canvas: StrandCanvas, rng: np.random.Generator, curves: np.ndarray, width: np.ndarray, fuzz: float) -> None:
    """Twisted yarn or rope along ``curves`` [N, P, 2], ``width`` [N] px thick.

    Each strand is an opaque body, a lighter narrower ridge (its roundness) and dark grooves
    slanted across it every ply (the twist), then ``fuzz`` fibres per px of length standing
    off its surface, sub-pixel thin (partial coverage). Strands are filled one polygon at a
    time: OpenCV fills a list of polygons even-odd, which would open holes where they overlap.
    """
    n, p = curves.shape[:2]
    shade = rng.uniform(0.6, 1.0, n).astype(np.float32)
    bodies, ridges = _ribbons(curves, width), _ribbons(curves, 0.45 * width)
    for i in range(n):
        canvas.fill([bodies[i]], 1.0, 0.8 * float(shade[i]))
        canvas.fill([ridges[i]], 1.0, 1.15 * float(shade[i]))
    tang = normalise(np.gradient(curves, axis=1))
    nrm = np.stack([-tang[..., 1], tang[..., 0]], axis=-1)
    seg = np.linalg.norm(np.diff(curves, axis=1), axis=-1)
    arc = np.concatenate([np.zeros((n, 1), np.float32), np.cumsum(seg, axis=1)], axis=1)
    # Grooves: a slanted dash across the strand every ply period along it.
    pitch = width * rng.uniform(0.5, 1.2)
    slant = rng.uniform(0.3, 1.0) * rng.choice([-1.0, 1.0])
    grooves = []
    gw = []
    for i in range(n):
        at = np.arange(rng.uniform(0, pitch[i]), arc[i, -1], pitch[i], dtype=np.float32)
        if len(at) == 0:
            continue
        j = np.clip(np.searchsorted(arc[i], at), 0, p - 1)
        c, t, nv = curves[i, j], tang[i, j], nrm[i, j]
        half = 0.45 * width[i]
        grooves.append(np.stack([c - nv * half - t * half * slant, c + nv * half + t * half * slant], axis=1))
        gw.append(np.full(len(at), max(0.4, 0.12 * float(width[i])), np.float32))
    if grooves:
        g = np.concatenate(grooves).astype(np.float32)
        canvas.draw(g, np.concatenate(gw), np.ones(len(g), np.float32), np.full(len(g), 0.45, np.float32))
    k = int(fuzz * float(arc[:, -1].sum()))
    if k:
        si = rng.integers(0, n, k)
        pj = rng.integers(0, p, k)
        side = rng.choice([-1.0, 1.0], k).astype(np.float32)[:, None]
        out = nrm[si, pj] * side
        start = curves[si, pj] + out * (0.4 * width[si])[:, None]
        d = rotate(out, rng.normal(0, 0.7, k).astype(np.float32))
        length = rng.uniform(1.0, 1.0, k).astype(np.float32) * (1.0 + rng.uniform(0, 1.2, k) * width[si])
        mid = start + d * (0.5 * length)[:, None] + rng.normal(0, 0.3, (k, 2)).astype(np.float32)
        fibres = np.stack([start, mid, start + d * length[:, None]], axis=1).astype(np.float32)
        canvas.draw(fibres, rng.uniform(0.1, 0.45, k), rng.uniform(0.5, 1.0, k), rng.uniform(0.7, 1.3, k))


def _yarn_layer(rng: np.random.Generator, photos: PhotoLibrary, h: int, w: int, ss: int) -> Layer:
    """Yarn, rope and wool with real colour texture: loose strands, or knitted fabric.

    Loose: 1-12 twisted strands 3-24 px thick wander across the frame (rope, a skein, a
    tassel). Knitted: rows of V-shaped stitches of twisted yarn packed edge to edge, over the
    frame or a body (a sweater's edge of whole stitches), opaque but for the small gaps between stitches,
    so a textured opaque region sits inside the band with real holes in it. Both have
    sub-pixel fibres standing off every strand (the fuzz of wool), and the colour is a real
    photo's texture, usually dyed toward one yarn colour.
    """
    size = math.sqrt(h * w)
    canvas = StrandCanvas(h, w, ss)
    fuzz = rng.uniform(0.1, 1.5) if rng.random() < 0.8 else 0.0
    if rng.random() < 0.5:
        flow = FlowField(rng, h, w, rng.uniform(0.2, 0.6) * size)
        m = int(rng.integers(1, 13))
        roots = rng.uniform([-0.1 * w, -0.1 * h], [1.1 * w, 1.1 * h], (m, 2)).astype(np.float32)
        dirs = normalise(rng.normal(0, 1, (m, 2))).astype(np.float32)
        lengths = (rng.uniform(0.6, 1.6, m) * size).astype(np.float32)
        curves = grow_curves(roots, dirs, lengths, 96, flow, 0.3, np.zeros(m, np.float32),
                             rng.normal(0, 0.02, m).astype(np.float32), np.full(m, 0.01, np.float32), rng)
        _draw_yarn(canvas, rng, curves, rng.uniform(3.0, 24.0, m).astype(np.float32), fuzz)
    else:
        sx = rng.uniform(0.02, 0.045) * size
        sy = sx * rng.uniform(0.6, 1.0)
        warp = rng.uniform(0.0, 0.03) * size
        wx = value_noise(rng, h, w, 0.3 * size) * warp
        wy = value_noise(rng, h, w, 0.3 * size) * warp
        yc, xc = np.meshgrid(np.arange(-sy, h + 2 * sy, sy), np.arange(-sx, w + 2 * sx, sx), indexing="ij")
        xc = xc + rng.uniform(-0.1, 0.1, (yc.shape[0], 1)) * sx  # rows drift a little
        yc, xc = yc.ravel().astype(np.float32), xc.ravel().astype(np.float32)
        iy, ix = np.clip(yc, 0, h - 1).astype(int), np.clip(xc, 0, w - 1).astype(int)
        yc, xc = yc + wy[iy, ix], xc + wx[iy, ix]
        if rng.random() < 0.7:
            # A garment's edge: the stitches whose centre lies in a body, so the edge is made of
            # stitches and their fuzz, not cut by a smooth curve.
            inside = _body_field(rng, h, w, photos)[iy, ix] > 0
            yc, xc = yc[inside], xc[inside]
        t = np.linspace(0.0, 1.0, 8, dtype=np.float32)
        legs = []
        for side in (-1.0, 1.0):  # the two legs of each V
            x = xc[:, None] + side * 0.5 * sx * (1 - t) + side * 0.15 * sx * np.sin(math.pi * t)
            y = yc[:, None] - 0.6 * sy + 1.1 * sy * t
            legs.append(np.stack([x, y], axis=-1))
        curves = np.concatenate(legs).astype(np.float32)
        width = (sx * rng.uniform(0.4, 0.6) * rng.uniform(0.9, 1.1, len(curves))).astype(np.float32)
        _draw_yarn(canvas, rng, curves, width, fuzz * 0.5)
    a, shade = canvas.resolve()
    tex = photos.crop(rng, h, w, zoom=(0.6, 2.0))
    if rng.random() < 0.7:
        dye = rng.uniform(0.03, 0.95, 3).astype(np.float32)
        tex = _tinted(tex, dye, rng.uniform(0.5, 0.9))
    f = np.clip(tex * shade[..., None], 0, 1).astype(np.float32)
    return f, a


def _weave(rng: np.random.Generator, h: int, w: int, ss: int, period: float, thread: float, angle: float, drape: float) -> np.ndarray:
    """Coverage [h, w] of a plain weave: two families of threads ``thread`` px wide every
    ``period`` px, crossing at right angles at ``angle``, displaced by up to ``drape`` px of smooth
    noise (folds), drawn ``ss`` times supersampled and box-filtered, so gaps finer than a pixel
    give partial coverage, as sheer cloth does on camera."""
    hs, ws = h * ss, w * ss
    yy, xx = np.mgrid[0:hs, 0:ws].astype(np.float32)
    xx = (xx + 0.5) / ss - 0.5
    yy = (yy + 0.5) / ss - 0.5
    size = math.sqrt(h * w)
    du = cv2.resize(value_noise(rng, h, w, 0.3 * size), (ws, hs)) * np.float32(drape)
    dv = cv2.resize(value_noise(rng, h, w, 0.3 * size), (ws, hs)) * np.float32(drape)
    c, s = math.cos(angle), math.sin(angle)
    cov = None
    for u, ph in ((c * xx + s * yy + du, rng.uniform(0, period)), (-s * xx + c * yy + dv, rng.uniform(0, period))):
        d = _periodic_distance(u, period, ph)
        k = np.clip((0.5 * thread - d) * ss + 0.5, 0.0, 1.0)
        cov = k if cov is None else 1.0 - (1.0 - cov) * (1.0 - k)
    return cv2.resize(cov, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32)


def _fabric_layer(rng: np.random.Generator, photos: PhotoLibrary, h: int, w: int, ss: int) -> Layer:
    """Woven cloth with a textured edge: frayed threads, a fringe of tassels, a pile, or sheer cloth.

    The cloth is a body whose colour is a real photo's texture (often dyed) shaded by its weave.
    Its edge is cut at thread scale and, by kind: *frayed*, loose threads 0.5-3 px wide standing
    out of the cut; *fringe*, tassels of threads hanging from the lower edge; *pile*, dense short
    sub-pixel fibres (fleece, velvet, towelling); *sheer*, the whole cloth see-through
    (:func:`_weave` coverage, partial where the gaps are under a pixel) with an opaque hem. All
    threads are drawn supersampled, so their alpha is coverage.
    """
    size = math.sqrt(h * w)
    period = rng.uniform(1.2, 5.0)
    field = _body_field(rng, h, w, photos)
    field = field + 0.01 * value_noise(rng, h, w, 2.0 * period)  # the cut is ragged at thread scale
    body_a = edge_alpha(field, rng.uniform(0.6, 1.2))
    angle = rng.uniform(0, math.pi)
    kind = ("frayed", "fringe", "pile", "sheer")[int(rng.integers(4))]
    tex = photos.crop(rng, h, w, zoom=(0.6, 2.0))
    if rng.random() < 0.6:
        tex = _tinted(tex, rng.uniform(0.03, 0.95, 3).astype(np.float32), rng.uniform(0.4, 0.9))
    # Sheer cloth: threads a fifth to three fifths of the period (36-84% coverage); else dense.
    thread = period * (rng.uniform(0.2, 0.6) if kind == "sheer" else rng.uniform(0.5, 0.9))
    weave = _weave(rng, h, w, min(ss, 3), period, thread, angle, rng.uniform(0.0, 0.01) * size)
    if kind == "sheer":
        density = rng.uniform(0.5, 1.0)
        dist = cv2.distanceTransform((field > 0).astype(np.uint8), cv2.DIST_L2, 3)
        hem = (dist < rng.uniform(2.0, 0.03 * size)).astype(np.float32) if rng.random() < 0.6 else 0.0
        a = body_a * np.maximum(weave * density, hem)
        return np.clip(tex * (0.9 + 0.2 * weave)[..., None], 0, 1).astype(np.float32), a.astype(np.float32)
    f_body = np.clip(tex * (0.8 + 0.3 * weave)[..., None], 0, 1).astype(np.float32)
    outline = Outline(field)
    flow = FlowField(rng, h, w, rng.uniform(0.1, 0.4) * size)
    canvas = StrandCanvas(h, w, ss)
    if kind == "fringe":
        # Tassels hang from the downward-facing edge: a few to a dozen threads from one root.
        n_t = max(1, int(outline.length / rng.uniform(6.0, 30.0)))
        roots, nrm = outline.sample(rng, n_t, -3.0)
        k = rng.integers(3, 13, n_t)
        tang = np.stack([-nrm[:, 1], nrm[:, 0]], axis=-1)
        spread = rng.uniform(0.5, 2.0) * period
        idx = np.repeat(np.arange(n_t), k)
        m = len(idx)
        start = roots[idx] - 2.0 * nrm[idx] + tang[idx] * rng.uniform(-spread, spread, m)[:, None]
        dirs = normalise(nrm[idx] + rng.normal(0, 0.15, (m, 2))).astype(np.float32)
        length = (rng.uniform(0.04, 0.2) * size * rng.uniform(0.85, 1.15, m)).astype(np.float32)
        width = np.full(m, rng.uniform(0.4, 2.0), np.float32) * rng.uniform(0.8, 1.2, m).astype(np.float32)
        gravity = np.full(m, rng.uniform(0.05, 0.3), np.float32)
    else:
        frayed = kind == "frayed"
        m = int(outline.length * (rng.uniform(0.2, 0.8) / period if frayed else rng.uniform(1.0, 4.0)))
        start, nrm = outline.sample(rng, m, 0.0)
        start = start - rng.uniform(0.5, 2.0) * nrm
        dirs = rotate(nrm, rng.normal(0, 0.35 if frayed else 0.8, len(start)).astype(np.float32))
        mean = rng.uniform(2.0, 8.0) if frayed else rng.uniform(1.0, 5.0)
        length = np.minimum(1.0 + rng.exponential(mean, len(start)), 0.06 * size).astype(np.float32)
        width = (period * rng.uniform(0.3, 0.6) * rng.uniform(0.7, 1.3, len(start)) if frayed
                 else rng.uniform(0.15, 0.5, len(start))).astype(np.float32)
        gravity = rng.uniform(0.0, 0.05, len(start)).astype(np.float32)
    if len(start):
        n = len(start)
        # Threads are stiffer than hair: a little curl and jitter, no waves.
        curves = grow_curves(start.astype(np.float32), dirs, length, 12, flow, 0.1, gravity,
                             rng.normal(0, 0.02, n).astype(np.float32), np.full(n, 0.03, np.float32), rng)
        canvas.draw(curves, width, rng.uniform(0.6, 1.0, n), rng.uniform(0.7, 1.2, n))
    a_t, shade = canvas.resolve()
    f_thr = np.clip(tex * shade[..., None], 0, 1).astype(np.float32)
    return over((f_thr, a_t), (f_body, body_a))


def _transparent_layer(rng: np.random.Generator, photos: PhotoLibrary, h: int, w: int) -> Layer:
    """Smoke (low-frequency alpha) or glass / plastic (faint body, rim and highlights)."""
    size = math.sqrt(h * w)
    if rng.random() < 0.5:
        n = value_noise(rng, h, w, rng.uniform(0.15, 0.5) * size, octaves=4)
        # Smooth density reaching 0.1-0.8 (a thin wisp to thick smoke), never a hard edge.
        amax = rng.uniform(0.3, 0.8)
        a = _smoothstep((n - rng.uniform(-1.0, 0.3)) / rng.uniform(0.8, 2.0)) * amax
        region = cv2.GaussianBlur(edge_alpha(_body_field(rng, h, w, photos) + 0.2, 1.0), (0, 0), 0.05 * size)
        a = (a * region).astype(np.float32)
        grey = rng.uniform(0.45, 1.0)
        tint = np.clip(grey + rng.normal(0, 0.04, 3), 0, 1).astype(np.float32)
        f = np.clip(tint * (1 + 0.15 * value_noise(rng, h, w, 0.3 * size))[..., None], 0, 1).astype(np.float32)
        return f, a
    field = _body_field(rng, h, w, photos)
    inside = edge_alpha(field, rng.uniform(0.8, 2.0))
    dist = cv2.distanceTransform((field > 0).astype(np.uint8), cv2.DIST_L2, 3)
    rim = np.exp(-dist / rng.uniform(1.5, 6.0)).astype(np.float32) * rng.uniform(0.2, 0.7)
    ridge = 1.0 - np.abs(value_noise(rng, h, w, rng.uniform(0.05, 0.2) * size, octaves=2))
    hl = np.clip((ridge - rng.uniform(0.75, 0.92)) * 8.0, 0, 1) * rng.uniform(0.4, 0.9)
    base = rng.uniform(0.05, 0.3)
    a = np.clip(base + rim + hl, 0, 1) * inside
    tint = np.clip(rng.uniform(0.75, 1.0) + rng.normal(0, 0.05, 3), 0, 1).astype(np.float32)
    tex = photos.crop(rng, h, w)
    f = np.clip(tint * (0.85 + 0.15 * tex) + hl[..., None] * 0.3, 0, 1).astype(np.float32)
    return f, a.astype(np.float32)


def _refractive_layer(rng: np.random.Generator, photos: PhotoLibrary, h: int, w: int) -> tuple[Layer, np.ndarray]:
    """A clear glass or plastic body that bends the background seen through it.

    Returns the layer and its refraction: a displacement field float32 [h, w, 2] (x, y) in pixels,
    zero outside the glass, such that the plate is ``alpha * F + (1 - alpha) * B(p + d(p))``
    (:func:`training.data.refract`). Alpha is what a compositor's matte of glass holds: low in
    the body (absorption), high along the rim (Fresnel reflection, the dark or bright edge of a
    glass) and at specular highlights; F is the environment the glass reflects. The background
    seen through the body is displaced by the gradient of a lens-like thickness profile, steepest
    near the rim, so inside the band the network sees a warped copy of the background it must
    still call background.
    """
    size = math.sqrt(h * w)
    field = _body_field(rng, h, w, photos)
    inside = edge_alpha(field, rng.uniform(0.8, 2.0))
    dist = cv2.distanceTransform((field > 0).astype(np.uint8), cv2.DIST_L2, 3)
    # Thickness: a dome (a lens, a bottle's wall) over the body's depth, plus moulding ripples.
    depth = max(float(dist.max()), 1.0) * rng.uniform(0.3, 1.0)
    d = np.minimum(dist / depth, 1.0)
    thick = np.sqrt(np.clip(1.0 - (1.0 - d) ** 2, 0.0, 1.0)).astype(np.float32)
    thick += rng.uniform(0.0, 0.3) * value_noise(rng, h, w, rng.uniform(0.05, 0.25) * size, octaves=2)
    thick = cv2.GaussianBlur(thick, (0, 0), max(1.0, 0.01 * size))
    g = np.stack(gradient(thick), axis=-1) * inside[..., None]
    peak = float(np.abs(g).max())
    # The largest shift: 1-6% of the frame; the sign is a converging or a diverging lens.
    shift = rng.uniform(0.01, 0.06) * size * rng.choice([-1.0, 1.0])
    disp = (g * np.float32(shift / peak) if peak > 1e-8 else np.zeros_like(g)).astype(np.float32)

    rim = np.exp(-dist / rng.uniform(1.0, 4.0)).astype(np.float32) * rng.uniform(0.3, 0.85)
    ridge = 1.0 - np.abs(value_noise(rng, h, w, rng.uniform(0.05, 0.2) * size, octaves=2))
    hl = np.clip((ridge - rng.uniform(0.8, 0.95)) * 8.0, 0, 1) * rng.uniform(0.4, 0.9)
    base = rng.uniform(0.02, 0.15)  # above 8-bit zero: the body stays in the matte (and the band)
    a = (np.clip(base + rim + hl, 0, 1) * inside).astype(np.float32)
    # Reflected environment: a soft photo crop, dark at the rim for thick glass, white highlights.
    env = cv2.GaussianBlur(photos.crop(rng, h, w, zoom=(1.0, 3.0)), (0, 0), max(1.0, 0.01 * size))
    rim_shade = rng.uniform(0.2, 1.0)
    f = env * (rim_shade + (1 - rim_shade) * (1 - np.exp(-dist / 3.0)))[..., None] + hl[..., None]
    return (np.clip(f, 0, 1).astype(np.float32), a), disp


def _blur_layer(rng: np.random.Generator, layer: Layer, size: float) -> Layer:
    """Motion blur or defocus of a layer: premultiplied colour and alpha blurred together."""
    f, a = layer
    h, w = a.shape
    pm = np.concatenate([f * a[..., None], a[..., None]], axis=-1)
    if rng.random() < 0.5:
        length = int(rng.uniform(0.01, 0.06) * size) | 1
        ang = rng.uniform(0, 180)
        rot = cv2.getRotationMatrix2D((w / 2, h / 2), ang, 1.0)
        inv = cv2.invertAffineTransform(rot)
        r = cv2.warpAffine(pm, rot, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        r = cv2.blur(r, (length, 1))
        out = cv2.warpAffine(r, inv, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    else:
        # Defocus: three box passes approximate a soft disc without a large 2D convolution.
        k = int(rng.uniform(0.003, 0.015) * size) * 2 + 1
        out = cv2.blur(cv2.blur(cv2.blur(pm, (k, k)), (k, k)), (k, k))
    a2 = np.clip(out[..., 3], 0, 1)
    f2 = np.where(a2[..., None] > 1e-4, out[..., :3] / np.maximum(a2[..., None], 1e-4), f)
    return np.clip(f2, 0, 1).astype(np.float32), a2.astype(np.float32)


# --------------------------------------------------------------------------------------------
# The generator
# --------------------------------------------------------------------------------------------

#: Scene recipes and their odds. Hair and fur on a body come first: alphamatting.com-style
#: plates are mostly hair, fur, plants, nets and transparent objects.
RECIPES: dict[str, float] = {
    "hair": 0.34,
    "fur": 0.2,
    "plant": 0.12,
    "net": 0.1,
    "transparent": 0.1,
    "solid_blur": 0.14,
    # Off by default so the streams the shipped weights were trained on stay reproducible;
    # configs turn it on with data.synthetic.recipes.
    "shrub": 0.0,
    # Off by default for the same reason (issue 20: real texture): opaque foregrounds cut from
    # real photos along their own edges, rigid see-through meshes, twisted yarn and knits.
    "textured": 0.0,
    "mesh": 0.0,
    "yarn": 0.0,
    # Off by default for the same reason: glass that bends the background seen through it; its
    # samples carry a displacement field that training.data applies to the background.
    "refractive": 0.0,
    # Off by default as well: woven cloth with frayed, fringed, pile or sheer edges.
    "fabric": 0.0,
}


def recipe_odds_problem(recipes: dict[str, float]) -> str | None:
    """What is wrong with a recipe-odds mapping (unknown names, negative or all-zero odds), or None."""
    unknown = sorted(set(recipes) - set(RECIPES))
    if unknown:
        return f"unknown recipe(s) {', '.join(unknown)} (known: {', '.join(sorted(RECIPES))})"
    if any(x < 0 for x in recipes.values()) or sum(recipes.values()) <= 0:
        return "odds must be >= 0 and sum to a positive number"
    return None


def held_object(
    rng: np.random.Generator, photos: PhotoLibrary, h: int, w: int, centre: tuple[float, float], side: float
) -> Layer:
    """An opaque held or attached object on an ``h`` x ``w`` canvas: a flag, board, bag or ball.

    ``side`` pixels across, centred at ``centre`` (y, x), textured from its own photo crop, so
    it does not look like the body it is attached to; half the time darkened, and a third of
    the time recoloured toward a second photo's mean, so colour alone cannot tell it from the
    background. Half are warped quadrilaterals (flags and boards: straight edges, a wave
    across), half organic blobs. The edge is anti-aliased like :func:`_solid_layer`'s.

    For the case that alphamatting.com's GT16 shows (a flag held by a toy, wholly inside a
    hand-drawn unknown band, whose dark field the network called background):
    :class:`training.data.MattingDataset` pastes one over the foreground's edge and marks it
    all unknown (``held_object_prob``).
    """
    cy, cx = float(centre[0]), float(centre[1])
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    ang = rng.uniform(0.0, math.pi)
    c, s = math.cos(ang), math.sin(ang)
    u0 = ((xx - cx) * c + (yy - cy) * s) / np.float32(0.5 * side)
    v0 = (-(xx - cx) * s + (yy - cy) * c) / np.float32(0.5 * side)
    if rng.random() < 0.5:
        # Quadrilateral with a travelling wave along one axis (a flag, a sign, a board).
        aspect = rng.uniform(0.35, 1.0)
        amp, freq, phase = rng.uniform(0.0, 0.12), rng.uniform(1.0, 4.0), rng.uniform(0.0, 2 * math.pi)
        v = v0 / np.float32(aspect) + np.float32(amp) * np.sin(np.float32(freq) * u0 + np.float32(phase))
        field = 1.0 - np.maximum(np.abs(u0), np.abs(v))
    else:
        rx, ry = rng.uniform(0.6, 1.0), rng.uniform(0.5, 1.0)
        field = 1.0 - np.sqrt((u0 / np.float32(rx)) ** 2 + (v0 / np.float32(ry)) ** 2)
        field = field + rng.uniform(0.03, 0.15) * value_noise(rng, h, w, rng.uniform(0.2, 0.6) * side)
    a = edge_alpha(field.astype(np.float32), rng.uniform(0.7, 2.0))
    f = photos.crop(rng, h, w)
    if rng.random() < 0.33:
        # Toward another photo's mean colour (often the background's palette).
        target = photos.crop(rng, 8, 8).reshape(-1, 3).mean(0)
        f = f * (target / (f.reshape(-1, 3).mean(0) + 1e-3))[None, None, :]
    if rng.random() < 0.5:
        f = f * np.float32(rng.uniform(0.15, 0.6))
    g = value_noise(rng, h, w, max(8.0, 0.6 * side))[..., None]
    f = np.clip(f * (1.0 + 0.15 * g), 0.0, 1.0).astype(np.float32)
    return f, a


class SyntheticGenerator:
    """Procedural (foreground, alpha) pairs textured from real photos.

    Args:
        backgrounds: photo files or folders (searched recursively) used for colour/texture.
        seed: base seed; sample ``i`` is a pure function of ``(seed, i)``.
        size: (H, W) of every sample.
        supersample: supersampling factor of the strand canvas (2-4; 3 by default).
        recipes: odds per scene recipe (see :data:`RECIPES`), to bias the mix.

    Example:
        >>> gen = SyntheticGenerator(Path("/data/backgrounds"), seed=1, size=(640, 640))
        >>> fg, alpha = gen.sample(0)   # fg [640, 640, 3], alpha [640, 640], float32 0..1
    """

    def __init__(
        self,
        backgrounds: Sequence[Path] | Path | str,
        seed: int,
        size: tuple[int, int] = (640, 640),
        supersample: int = 3,
        recipes: dict[str, float] | None = None,
        photos: PhotoLibrary | None = None,
    ) -> None:
        self.photos = photos if photos is not None else PhotoLibrary(backgrounds)
        self.seed = int(seed)
        self.size = (int(size[0]), int(size[1]))
        if min(self.size) < 16:
            raise DataError(f"synthetic size must be at least 16x16, got {size}")
        self.ss = int(supersample)
        if not 1 <= self.ss <= 6:
            raise DataError(f"supersample must be in 1..6, got {supersample}")
        rec = dict(RECIPES if recipes is None else recipes)
        problem = recipe_odds_problem(rec)
        if problem:
            raise DataError(f"synthetic recipes: {problem}")
        total = sum(rec.values())
        self.recipe_names = list(rec)
        self.recipe_p = np.array([rec[k] / total for k in self.recipe_names])

    def rng(self, index: int) -> np.random.Generator:
        """The random stream of sample ``index``."""
        return np.random.default_rng(np.random.SeedSequence([self.seed, int(index)]))

    def sample(self, index: int, out: dict[str, Any] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Sample ``index``: (fg float32 [H, W, 3] sRGB-encoded 0..1, alpha float32 [H, W]).

        ``out``, if given, receives ``out["recipe"]`` (and ``"extra"`` for a second layer), and
        for the ``refractive`` recipe ``out["refraction"]``: the displacement float32 [H, W, 2]
        (x, y, pixels) that :func:`training.data.refract` applies to the background. Such a sample
        is not a plain (F, alpha) pair: compose it through :class:`training.data.MattingDataset`.
        """
        rng = self.rng(index)
        h, w = self.size
        for _ in range(4):
            fg, alpha, info = self._scene(rng, h, w)
            partial = np.count_nonzero((alpha > 0) & (alpha < 1))
            if partial >= 0.002 * h * w:
                break
        if out is not None:
            out.update(info)
        return fg, alpha

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Stream samples 0, 1, 2, ... forever."""
        i = 0
        while True:
            yield self.sample(i)
            i += 1

    def _layer(self, name: str, rng: np.random.Generator, h: int, w: int) -> Layer:
        p, ss = self.photos, self.ss
        if name == "hair":
            return _hairy_layer(rng, p, h, w, ss, fur=False)
        if name == "fur":
            return _hairy_layer(rng, p, h, w, ss, fur=True)
        if name == "plant":
            return _plant_layer(rng, p, h, w, ss)
        if name == "shrub":
            return _shrub_layer(rng, p, h, w, ss)
        if name == "net":
            return _net_layer(rng, p, h, w, ss)
        if name == "textured":
            return _textured_layer(rng, p, h, w)
        if name == "mesh":
            return _mesh_layer(rng, p, h, w, ss)
        if name == "yarn":
            return _yarn_layer(rng, p, h, w, ss)
        if name == "transparent":
            return _transparent_layer(rng, p, h, w)
        if name == "fabric":
            return _fabric_layer(rng, p, h, w, ss)
        layer = _solid_layer(rng, p, h, w)
        return _blur_layer(rng, layer, math.sqrt(h * w))

    def _scene(self, rng: np.random.Generator, h: int, w: int) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        name = self.recipe_names[int(rng.choice(len(self.recipe_names), p=self.recipe_p))]
        info: dict[str, Any] = {"recipe": name}
        if name == "refractive":
            # No body behind it: that body would have to be refracted too.
            layer, info["refraction"] = _refractive_layer(rng, self.photos, h, w)
        else:
            layer = self._layer(name, rng, h, w)
        if name in ("plant", "shrub", "net", "transparent", "mesh", "fabric") and rng.random() < 0.35:
            # Something solid behind a fine or transparent layer: a body in the frame.
            layer = over(layer, _solid_layer(rng, self.photos, h, w))
            info["extra"] = "solid"
        elif rng.random() < 0.12:
            extra = "transparent" if rng.random() < 0.5 else "net"
            layer = over(self._layer(extra, rng, h, w), layer)
            info["extra"] = extra
        if name in ("hair", "fur") and rng.random() < 0.15:
            layer = _blur_layer(rng, layer, 0.3 * math.sqrt(h * w))
            info["blurred"] = True
        f, a = layer
        # Real mattes are stored at 8-16 bits: values within half an 8-bit step of 0 or 1 are
        # exactly 0 or 1, so Eq. 2's known regions exist (paper §3.3).
        a = np.where(a < 0.5 / 255, 0.0, np.where(a > 1 - 0.5 / 255, 1.0, a)).astype(np.float32)
        if "refraction" in info:  # invariant: the background moves only where the matte is non-zero
            info["refraction"] = info["refraction"] * (a > 0)[..., None]
        f = np.clip(f, 0.0, 1.0, out=np.ascontiguousarray(f, dtype=np.float32))
        return f, a, info


def write_dataset(
    out_dir: Path | str,
    n: int,
    seed: int,
    backgrounds: Sequence[Path] | Path | str,
    size: tuple[int, int] = (640, 640),
    alpha_bits: int = 16,
    fg_format: str = "png",
    start: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Write ``n`` synthetic samples in the studio layout (``training/DATA.md``).

    Files: ``out_dir/fg/synth_{index:07d}.png`` (8-bit sRGB) or ``.exr`` (half, scene-linear
    Rec.709, converted from the sRGB working space by :mod:`vfxmatte.color`, the inverse of what
    :func:`training.data.read_rgb` applies), ``out_dir/alpha/synth_{index:07d}.png`` (8- or
    16-bit grey), and ``out_dir/synthetic_{start:07d}.json`` recording seed, size, range and
    photos, so the set can be regenerated. Indices ``start .. start+n-1`` allow writing in
    parallel shards. Every file is written through :mod:`vfxmatte.io` (atomically).

    Raises:
        DataError: bad format/bit depth, or the record cannot be written.
        ImageWriteError: an image cannot be written (names the file).
        ColorError: the OCIO config lacks the EXR colourspace (``fg_format="exr"``).
    """
    if alpha_bits not in (8, 16):
        raise DataError(f"alpha_bits must be 8 or 16, got {alpha_bits}")
    if fg_format not in ("png", "exr"):
        raise DataError(f"fg_format must be 'png' or 'exr', got {fg_format!r}")
    root = Path(out_dir)
    (root / "fg").mkdir(parents=True, exist_ok=True)
    (root / "alpha").mkdir(parents=True, exist_ok=True)
    from training.data import EXR_COLORSPACE

    gen = SyntheticGenerator(backgrounds, seed=seed, size=size)
    to_linear = ColorConverter(None, WORKING, EXR_COLORSPACE) if fg_format == "exr" else None
    scale, codes = (255, np.uint8) if alpha_bits == 8 else (65535, np.uint16)
    for k, i in enumerate(range(start, start + n)):
        fg, alpha = gen.sample(i)
        stem = f"synth_{i:07d}"
        if to_linear is None:
            write_image(root / "fg" / f"{stem}.png", np.round(fg * 255).astype(np.uint8), ["R", "G", "B"])
        else:
            linear = to_linear.apply(fg)
            write_exr(root / "fg" / f"{stem}.exr", {c: linear[..., j] for j, c in enumerate("RGB")}, compression="zip")
        write_image(root / "alpha" / f"{stem}.png", np.round(alpha * scale).astype(codes), ["Y"])
        if progress is not None:
            progress(k + 1, n)
    meta = {"seed": seed, "size": list(size), "start": start, "n": n, "backgrounds": [str(p) for p in gen.photos.paths]}
    with atomic_write(root / f"synthetic_{start:07d}.json", error=DataError, what="data-set record") as tmp:
        tmp.write_text(json.dumps(meta, indent=1))
    return root
