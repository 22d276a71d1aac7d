"""Procedural mattes: anti-aliased hair strands, smooth noise and silhouettes (numpy and cv2 only).

The one implementation of procedural hair in vfxmatte. The training generator
(``training/synthetic.py``) and the example shot (:mod:`vfxmatte.examples`) both draw their hair
with it, so the hair a user first mattes is made the way the network's training hair is made.

Hair gets its partial alpha the way a real matte does: strands are thin anti-aliased polylines
drawn on a canvas supersampled ``ss`` times and box-filtered down (:class:`StrandCanvas`), so a
strand a third of a pixel wide covers a third of a pixel rather than being a blurred ramp.
Strands clump into locks around guide curves that grow from a silhouette's outline
(:class:`Outline`) along a smooth flow field (:class:`FlowField`), bent by gravity and curl;
they taper toward the tip, and a few fly away (:func:`grow_hair`).

Conventions:

* points are ``(x, y)`` in output pixels, pixel centres at integer coordinates;
* every random draw comes from the ``numpy.random.Generator`` the caller passes in, in a fixed
  order, so a caller's output is a pure function of its seed. The training generator's data
  stream depends on that order: a change here that draws differently changes the training data
  for every seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

__all__ = [
    "FlowField",
    "Outline",
    "StrandBatch",
    "StrandCanvas",
    "draw_strands",
    "draw_tapered",
    "edge_alpha",
    "grow_curves",
    "grow_hair",
    "mass_texture",
    "normalise",
    "over",
    "rotate",
    "strands_from_locks",
    "value_noise",
]

#: Fixed-point fraction bits for cv2 drawing: 1/16-pixel positions on the supersampled canvas.
_SHIFT = 4
_ONE = 1 << _SHIFT


# --------------------------------------------------------------------------------------------
# Small numeric helpers
# --------------------------------------------------------------------------------------------


def value_noise(rng: np.random.Generator, h: int, w: int, scale: float, octaves: int = 1) -> np.ndarray:
    """Smooth value noise [h, w] float32, roughly N(0, 1), with features ``scale`` pixels across.

    Octaves halve the scale. The sum is built at a reduced resolution (at least ~4 px per
    feature of the finest octave) and upsampled once, which keeps large scales cheap.
    """
    finest = max(2.0, scale / 2 ** (octaves - 1))
    r = int(np.clip(finest // 4, 1, 16))
    hh, ww = -(-h // r), -(-w // r)
    out = np.zeros((hh, ww), np.float32)
    amp, total = 1.0, 0.0
    sc = scale / r
    for _ in range(octaves):
        sc = max(1.0, sc)
        gh, gw = int(hh / sc) + 3, int(ww / sc) + 3
        grid = rng.standard_normal((gh, gw)).astype(np.float32)
        bh, bw = max(hh + 1, int(gh * sc)), max(ww + 1, int(gw * sc))
        big = cv2.resize(grid, (bw, bh), interpolation=cv2.INTER_CUBIC)
        oy = int(rng.integers(0, bh - hh + 1))
        ox = int(rng.integers(0, bw - ww + 1))
        out += amp * big[oy : oy + hh, ox : ox + ww]
        total += amp * amp
        amp *= 0.5
        sc /= 2.0
    out /= np.float32(math.sqrt(total))
    if r > 1:
        out = cv2.resize(out, (ww * r, hh * r), interpolation=cv2.INTER_LINEAR)[:h, :w]
    return np.ascontiguousarray(out)


def gradient(field: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Central-difference-like gradient ``(d/dx, d/dy)`` of a float32 field, per pixel (3x3 Sobel / 8)."""
    return (cv2.Sobel(field, cv2.CV_32F, 1, 0, ksize=3) * 0.125,
            cv2.Sobel(field, cv2.CV_32F, 0, 1, ksize=3) * 0.125)


def edge_alpha(field: np.ndarray, softness: float) -> np.ndarray:
    """Anti-aliased inside-test of ``field > 0``: a ramp ``softness`` pixels wide across the edge.

    The field is divided by its gradient length, giving a signed distance near the edge, so any
    smooth field whose zero set is the silhouette gives the same edge profile.
    """
    gx, gy = gradient(field)
    g = np.sqrt(gx * gx + gy * gy) + 1e-6
    return np.clip(0.5 + field / (g * np.float32(softness)), 0.0, 1.0).astype(np.float32)


def over(top: tuple[np.ndarray, np.ndarray], bottom: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Porter-Duff "over" of two (F [h, w, 3], alpha [h, w]) layers with straight colour.

    Where both layers are transparent the colour is the top layer's (the ``eps`` terms), so F
    stays defined everywhere.
    """
    f1, a1 = top
    f0, a0 = bottom
    w0 = a0 * (1.0 - a1)
    a = a1 + w0
    eps = np.float32(1e-4)
    num = f1 * (a1 + eps)[..., None] + f0 * w0[..., None]
    f = num / (a + eps)[..., None]
    return f.astype(np.float32, copy=False), a.astype(np.float32, copy=False)


def rotate(v: np.ndarray, ang: np.ndarray) -> np.ndarray:
    """2D vectors ``v`` [..., 2] turned by ``ang`` radians (positive: x toward y)."""
    c, s = np.cos(ang), np.sin(ang)
    return np.stack([v[..., 0] * c - v[..., 1] * s, v[..., 0] * s + v[..., 1] * c], axis=-1)


def normalise(v: np.ndarray) -> np.ndarray:
    """2D vectors ``v`` [..., 2] scaled to unit length (zero vectors stay near zero)."""
    return v / (np.linalg.norm(v, axis=-1, keepdims=True) + 1e-6)


class FlowField:
    """A smooth 2D direction field (unit vectors) over an ``h`` x ``w`` frame, looked up at points.

    Directions turn over about ``scale`` pixels; points outside the frame take the nearest
    edge's direction.
    """

    def __init__(self, rng: np.random.Generator, h: int, w: int, scale: float) -> None:
        self.step = max(4, int(scale / 6))
        gh, gw = h // self.step + 2, w // self.step + 2
        ang = value_noise(rng, gh, gw, max(2.0, scale / self.step)) * np.float32(math.pi)
        self.vx = np.cos(ang).astype(np.float32)
        self.vy = np.sin(ang).astype(np.float32)

    def __call__(self, pts: np.ndarray) -> np.ndarray:
        """Unit directions [..., 2] at points ``pts`` [..., 2] (x, y)."""
        gy = np.clip((pts[..., 1] / self.step).astype(np.int64), 0, self.vx.shape[0] - 1)
        gx = np.clip((pts[..., 0] / self.step).astype(np.int64), 0, self.vx.shape[1] - 1)
        return np.stack([self.vx[gy, gx], self.vy[gy, gx]], axis=-1)


# --------------------------------------------------------------------------------------------
# The strand canvas
# --------------------------------------------------------------------------------------------


class StrandCanvas:
    """Supersampled canvas for thin anti-aliased curves, resolved to (alpha, shade).

    Channel 0 accumulates coverage x opacity, channel 1 the same times shade/2, so after the
    box-filter downsample ``shade = 2 * ch1 / ch0`` is the coverage-weighted strand shade.
    Strands are grouped into (opacity, shade, width) buckets so each bucket is one cv2 call,
    drawn faintest first. Opacity is quantised to 15 levels and shade (0..2) to 8.
    """

    def __init__(self, h: int, w: int, ss: int) -> None:
        self.h, self.w, self.ss = h, w, ss
        self.fine = np.zeros((h * ss, w * ss, 2), np.uint8)
        self.coarse = np.zeros((h, w, 2), np.uint8)
        self.empty = True

    def _to_fixed(self, pts: np.ndarray, scale: int) -> np.ndarray:
        # Output pixel centres are at integer coordinates; a pixel spans `scale` canvas pixels.
        return np.round(((pts + 0.5) * scale - 0.5) * _ONE).astype(np.int32)

    def draw(self, pts: np.ndarray, width: np.ndarray, opacity: np.ndarray, shade: np.ndarray) -> None:
        """Draw polylines ``pts`` [N, P, 2] (x, y in output pixels).

        ``width`` [N] in output pixels: below ~0.6 px the strand goes to the supersampled canvas
        (one canvas pixel wide, i.e. 1/ss px, with the remaining width folded into opacity);
        wider strands are drawn 1-4 px wide at output resolution.
        """
        if len(pts) == 0:
            return
        self.empty = False
        width = np.asarray(width, np.float32)
        opacity = np.asarray(opacity, np.float32)
        fine = width < 0.6
        # A fine strand w px wide covers w*ss canvas pixels; one canvas pixel drawn at opacity
        # o*w*ss/1 gives the same coverage after the downsample (capped at full opacity).
        op_fine = np.clip(opacity * np.maximum(width * self.ss, 1.0), 0.0, 1.0)
        ol = np.clip(np.round(np.where(fine, op_fine, opacity) * 15), 1, 15).astype(np.int64)
        sl = np.clip(np.round(np.asarray(shade) / 2.0 * 7), 0, 7).astype(np.int64)
        th = np.where(fine, 1, np.clip(np.round(width), 1, 4)).astype(np.int64)
        # Faintest first: a later, stronger strand wins where strands overlap.
        key = (ol * 8 + sl) * 8 + th
        for is_fine, target, scale in ((True, self.fine, self.ss), (False, self.coarse, 1)):
            sel = np.flatnonzero(fine == is_fine)
            if len(sel) == 0:
                continue
            fixed = self._to_fixed(pts[sel], scale)
            k_sel = key[sel]
            order = np.argsort(k_sel, kind="stable")
            bounds = np.flatnonzero(np.diff(k_sel[order])) + 1
            for grp in np.split(order, bounds):
                k = int(k_sel[grp[0]])
                t, sh, o = k & 7, (k >> 3) & 7, k >> 6
                val = 255.0 * o / 15.0
                cv2.polylines(target, list(fixed[grp]), False, (val, val * sh / 7.0), int(t), cv2.LINE_AA, _SHIFT)

    def fill(self, polys: list[np.ndarray], opacity: float, shade: float) -> None:
        """Filled anti-aliased polygons (leaves), at output resolution."""
        if not polys:
            return
        self.empty = False
        val = 255.0 * opacity
        fixed = [self._to_fixed(p, 1) for p in polys]
        cv2.fillPoly(self.coarse, fixed, (val, val * shade / 2.0), cv2.LINE_AA, _SHIFT)

    def resolve(self) -> tuple[np.ndarray, np.ndarray]:
        """(alpha [h, w], shade [h, w]) with partial coverage from the supersampled canvas.

        Shade is 1 where nothing was drawn.
        """
        fine = self.fine
        if self.ss > 1:
            fine = cv2.resize(fine, (self.w, self.h), interpolation=cv2.INTER_AREA)
        out_a, out_s = None, None
        for canvas in (fine, self.coarse):
            if not canvas[..., 0].any():
                continue
            c = canvas.astype(np.float32) * np.float32(1.0 / 255.0)
            a = c[..., 0]
            sh = 2.0 * c[..., 1] / np.maximum(a, np.float32(1e-3))
            if out_a is None:
                out_a, out_s = a, sh
            else:
                # Coarse strands sit over fine ones: union coverage, shade of the denser one.
                out_s = np.where(a >= out_a, sh, out_s)
                out_a = out_a + a - out_a * a
        if out_a is None:
            return np.zeros((self.h, self.w), np.float32), np.ones((self.h, self.w), np.float32)
        out_s = np.where(out_a > 0, out_s, np.float32(1.0))
        return out_a, out_s.astype(np.float32, copy=False)


# --------------------------------------------------------------------------------------------
# Silhouettes and strands
# --------------------------------------------------------------------------------------------


class Outline:
    """Points on the outline of ``field > 0`` with outward normals, for rooting hair and fur.

    ``field`` is a smooth signed field [h, w] (positive inside). Outline points within 2 px of
    the frame edge are left out: there the outline is the crop, not the silhouette.
    """

    def __init__(self, field: np.ndarray) -> None:
        h, w = field.shape
        mask = (field > 0).astype(np.uint8)
        cnts, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        pts = np.concatenate([c[:, 0, :] for c in cnts]).astype(np.int64) if cnts else np.zeros((0, 2), np.int64)
        # Outline points on the frame edge are a crop, not a silhouette: no hair grows there.
        inner = (pts[:, 0] > 1) & (pts[:, 0] < w - 2) & (pts[:, 1] > 1) & (pts[:, 1] < h - 2)
        pts = pts[inner]
        x, y = pts[:, 0], pts[:, 1]
        # The field is smooth, so its gradient at the outline is a clean normal.
        g = np.stack([field[y, x + 2] - field[y, x - 2], field[y + 2, x] - field[y - 2, x]], axis=-1)
        self.points = pts.astype(np.float32)
        self.normals = normalise(-g).astype(np.float32)
        self.length = float(len(pts))

    def sample(self, rng: np.random.Generator, n: int, up_bias: float) -> tuple[np.ndarray, np.ndarray]:
        """``n`` random outline points and their outward normals; ``up_bias`` favours the top."""
        if len(self.points) == 0 or n <= 0:
            return np.zeros((0, 2), np.float32), np.zeros((0, 2), np.float32)
        # Hair grows mostly from the top of a head: weight points by how much they face up.
        wgt = np.exp(up_bias * -self.normals[:, 1])
        idx = rng.choice(len(self.points), size=n, p=wgt / wgt.sum())
        return self.points[idx], self.normals[idx]


def grow_curves(
    roots: np.ndarray,
    dirs: np.ndarray,
    lengths: np.ndarray,
    n_pts: int,
    flow: FlowField,
    flow_w: float,
    gravity: np.ndarray,
    curl: np.ndarray,
    jitter: np.ndarray,
    rng: np.random.Generator,
    wave: np.ndarray | None = None,
) -> np.ndarray:
    """Integrate guide curves [M, n_pts, 2] from roots along a steered direction.

    Each step turns by ``curl`` (radians; times ``cos(phase + t * wave)`` when ``wave`` is given,
    which makes waves and ringlets instead of closed loops) plus ``jitter`` noise, then bends
    toward gravity (+y) and the flow field.
    """
    m = len(roots)
    phase = rng.uniform(0, 2 * math.pi, m).astype(np.float32) if wave is not None else None
    out = np.empty((m, n_pts, 2), np.float32)
    pos = roots.astype(np.float32).copy()
    d = dirs.astype(np.float32).copy()
    step = (lengths / (n_pts - 1)).astype(np.float32)[:, None]
    for t in range(n_pts):
        out[:, t] = pos
        bend = curl if wave is None else curl * np.cos(phase + t * wave)
        turn = bend + jitter * rng.standard_normal(m).astype(np.float32)
        d = rotate(d, turn)
        d = normalise(d + gravity[:, None] * np.array([0.0, 1.0], np.float32) + flow_w * flow(pos))
        pos = pos + d * step
    return out


def strands_from_locks(
    guides: np.ndarray,
    per_lock: np.ndarray,
    rng: np.random.Generator,
    spread_root: np.ndarray,
    spread_mid: np.ndarray,
    splay: np.ndarray,
    wave: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Strands [N, P, 2] clumped around lock guides; returns (strands, lock id, length fraction)."""
    m, p, _ = guides.shape
    lock = np.repeat(np.arange(m), per_lock)
    n = len(lock)
    tang = np.gradient(guides, axis=1)
    nrm = normalise(np.stack([-tang[..., 1], tang[..., 0]], axis=-1))
    # Each strand runs a fraction u of its lock, sampled at p points (short strands end early).
    u = np.clip(rng.beta(4.0, 1.3, n), 0.25, 1.0).astype(np.float32)
    t = np.linspace(0.0, 1.0, p, dtype=np.float32)
    s = t[None, :] * u[:, None] * (p - 1)
    i0 = np.clip(s.astype(np.int64), 0, p - 2)
    fr = (s - i0)[..., None]
    g = guides[lock[:, None], i0] * (1 - fr) + guides[lock[:, None], i0 + 1] * fr
    nv = nrm[lock[:, None], i0]
    off = rng.standard_normal(n).astype(np.float32)
    tt = t[None, :] * u[:, None]
    prof = (
        spread_root[lock, None] * (1.0 - tt) ** 2
        + spread_mid[lock, None]
        + splay[lock, None] * tt**2 * np.abs(rng.standard_normal(n)).astype(np.float32)[:, None]
    )
    amp = rng.uniform(0.0, wave, n).astype(np.float32)[:, None]
    freq = rng.uniform(0.5, 3.0, n).astype(np.float32)[:, None]
    ph = rng.uniform(0, 2 * math.pi, n).astype(np.float32)[:, None]
    lateral = off[:, None] * prof + amp * np.sin(2 * math.pi * freq * tt + ph) * tt
    return g + nv * lateral[..., None], lock, u


def draw_tapered(
    canvas: StrandCanvas,
    strands: np.ndarray,
    width: np.ndarray,
    opacity: np.ndarray,
    shade: np.ndarray,
    taper: float = 0.5,
) -> None:
    """Draw strands in three pieces (root, middle, tip), thinner and fainter toward the tip."""
    p = strands.shape[1]
    a, b = int(p * 0.55), int(p * 0.8)
    pieces = ((0, a + 1, 1.0), (a, b + 1, 1.0 - 0.5 * taper), (b, p, 1.0 - taper))
    for lo, hi, f in pieces:
        canvas.draw(strands[:, lo:hi], width * (0.4 + 0.6 * f), opacity * f, shade)


@dataclass(frozen=True)
class StrandBatch:
    """Strands that share a taper, ready for :func:`draw_tapered`.

    ``points`` [N, P, 2] (x, y in output pixels); ``width`` [N] in output pixels; ``opacity``
    [N] in 0..1; ``shade`` [N] in 0..2 (1 is the base colour).
    """

    points: np.ndarray
    width: np.ndarray
    opacity: np.ndarray
    shade: np.ndarray
    taper: float


def grow_hair(rng: np.random.Generator, outline: Outline, flow: FlowField, size: float, fur: bool) -> list[StrandBatch]:
    """Hair (long locks and flyaways) or fur (short dense tufts) growing out of ``outline``.

    ``size`` sets the scale (pixels): hair locks are 0.08-0.35 of it long, fur 0.012-0.05.
    Returns the locks' strands and, for hair, the flyaways: lone thin strands that leave their
    lock. Draw them with :func:`draw_strands`; the geometry can be moved between frames first.
    """
    perim = outline.length + 1.0
    if fur:
        m = int(np.clip(perim / rng.uniform(1.2, 3.0), 30, 1400))
        per_lock = rng.integers(2, 7, m)
        length = rng.uniform(0.012, 0.05) * size * rng.lognormal(0.0, 0.35, m)
        n_pts = 6
        up_bias = 0.0
        flow_w = rng.uniform(0.0, 0.4)
        gravity = np.full(m, rng.uniform(0.0, 0.1), np.float32)
        curl = rng.normal(0.0, 0.05, m).astype(np.float32)
        jitter = np.full(m, 0.08, np.float32)
        tilt = rng.normal(0.0, 0.35) + rng.normal(0.0, 0.3, m)
        wave = None
    else:
        m = int(np.clip(perim / rng.uniform(4.0, 14.0), 20, 320))
        per_lock = rng.integers(4, 26, m)
        length = rng.uniform(0.08, 0.35) * size * rng.lognormal(0.0, 0.3, m)
        n_pts = 20
        up_bias = rng.uniform(0.0, 3.0)
        flow_w = rng.uniform(0.05, 0.5)
        gravity = rng.uniform(0.0, 0.25) * rng.uniform(0.5, 1.0, m).astype(np.float32)
        curly = rng.random() < 0.3
        curl_amp = rng.uniform(0.2, 0.6) if curly else rng.uniform(0.0, 0.05)
        curl = (curl_amp * rng.choice([-1.0, 1.0], m) * rng.uniform(0.5, 1.0, m)).astype(np.float32)
        # Curly locks wave with a period of 4-10 steps; straight ones bend gently one way.
        wave = (2 * math.pi / rng.uniform(4.0, 10.0, m)).astype(np.float32) if curly else None
        jitter = np.full(m, rng.uniform(0.02, 0.12), np.float32)
        tilt = rng.normal(0.0, 0.45, m)
    roots, nrm = outline.sample(rng, m, up_bias)
    if len(roots) == 0:
        return []
    # Roots sit a little inside the silhouette so strands emerge from the mass, not its rim.
    inset = rng.uniform(0.0, 0.02 * size if not fur else 0.008 * size, m)[:, None]
    roots = roots - nrm * inset.astype(np.float32)
    dirs = rotate(nrm, tilt.astype(np.float32))
    guides = grow_curves(roots, dirs, length.astype(np.float32), n_pts, flow, flow_w, gravity.astype(np.float32), curl, jitter, rng, wave)
    spread_root = rng.uniform(0.5, 3.0, m).astype(np.float32) * (0.4 if fur else 1.0)
    spread_mid = rng.uniform(0.2, 1.5, m).astype(np.float32) * (0.4 if fur else 1.0)
    splay = rng.uniform(0.0, 0.06 * size if not fur else 0.01 * size, m).astype(np.float32)
    strands, lock, _ = strands_from_locks(guides, per_lock, rng, spread_root, spread_mid, splay, 1.5 if not fur else 0.4)
    n = len(strands)
    # Widths: mostly sub-pixel (true partial coverage), a few thick strands.
    width = (rng.lognormal(math.log(rng.uniform(0.25, 0.7)), 0.45, n)).astype(np.float32)
    opacity = np.clip(rng.beta(5.0, 1.4, n), 0.15, 1.0).astype(np.float32)
    lock_shade = rng.lognormal(0.0, 0.25, len(per_lock)).astype(np.float32)
    shade = np.clip(lock_shade[lock] * rng.lognormal(0.0, 0.15, n), 0.3, 1.9).astype(np.float32)
    batches = [StrandBatch(strands, width, opacity, shade, taper=rng.uniform(0.3, 0.8))]
    if not fur:
        # Flyaways: lone strands that leave their lock, thin and wandering.
        k = int(rng.integers(3, 30))
        fr, fn = outline.sample(rng, k, up_bias)
        if len(fr):
            fl = (rng.uniform(0.1, 0.4, k) * size).astype(np.float32)
            fg = grow_curves(fr, rotate(fn, rng.normal(0, 0.6, k).astype(np.float32)), fl, 24, flow, flow_w * 2, np.zeros(k, np.float32), rng.normal(0, 0.08, k).astype(np.float32), np.full(k, 0.1, np.float32), rng)
            batches.append(StrandBatch(fg, rng.uniform(0.15, 0.45, k), rng.uniform(0.3, 0.9, k), rng.uniform(0.8, 1.6, k), 0.7))
    return batches


def draw_strands(canvas: StrandCanvas, batches: list[StrandBatch]) -> None:
    """Draw strand batches on ``canvas`` in order, each with :func:`draw_tapered`."""
    for b in batches:
        draw_tapered(canvas, b.points, b.width, b.opacity, b.shade, b.taper)


def mass_texture(rng: np.random.Generator, field: np.ndarray, flow: FlowField, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Streaks inside a hair/fur mass (``field > 0``): strands along the flow field.

    Returns (coverage [h, w], shade [h, w]) as :meth:`StrandCanvas.resolve` does; the mass is
    opaque, so callers use them for colour only (``1 + coverage * (shade - 1)``).
    """
    size = math.sqrt(h * w)
    canvas = StrandCanvas(h, w, 1)
    # Dense and low-contrast: many faint overlapping strands read as hair texture, a few
    # strong ones as scribbles.
    m = int(rng.uniform(0.004, 0.012) * h * w / 4)
    pts = rng.uniform([0, 0], [w - 1, h - 1], (m * 3, 2)).astype(np.float32)
    inside = field[pts[:, 1].astype(int), pts[:, 0].astype(int)] > 0
    roots = pts[inside][:m]
    k = len(roots)
    if k:
        dirs = flow(roots)
        g = grow_curves(roots, dirs, (rng.uniform(0.04, 0.15, k) * size).astype(np.float32), 8, flow, 1.0, np.full(k, 0.05, np.float32), np.zeros(k, np.float32), np.full(k, 0.03, np.float32), rng)
        canvas.draw(g, np.full(k, 1.0, np.float32), rng.uniform(0.15, 0.5, k), np.clip(rng.lognormal(0, 0.3, k), 0.3, 1.9))
    return canvas.resolve()
