"""Training data: the studio folder layout and on-the-fly composition (Deep Image Matting style).

A training item is made from a foreground and its matte (from a studio folder or the
:class:`~training.synthetic.SyntheticGenerator`) composited over a random crop of a real photo:

    I = alpha * F + (1 - alpha) * B        (0..1 sRGB-encoded values, see training/DATA.md)

(for a refractive synthetic sample, B is the background as the glass bends it: :func:`refract`)

then cropped around the unknown band, resized, flipped and colour-jittered, with the dual trimaps
of paper §3.3 (:mod:`training.trimaps`). Pre-composited studio plates (``image/`` + ``alpha/``)
are cropped and augmented without re-composition.

Determinism: item ``index`` of epoch ``epoch`` is a pure function of ``(seed, epoch, index)``
(its random stream is ``SeedSequence([seed, epoch, index])``), so batches are the same whatever
the number of DataLoader workers. Call :meth:`MattingDataset.set_epoch` before each epoch, with
``persistent_workers=False`` so the workers see it. The items are already random per index: use
a sequential sampler (``shuffle=False``) so consecutive indices land in one worker and
``synthetic_reuse`` can share a generated foreground between them.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from training.synthetic import PhotoLibrary, SyntheticGenerator, held_object
from training.trimaps import ROUGH_KERNEL, rough_trimap, semantic_trimap, tcp_trimap
from vfxmatte.color import to_working
from vfxmatte.errors import DataError
from vfxmatte.flow import pixel_grid
from vfxmatte.io import read_image, read_mask
from vfxmatte.procedural import over
from vfxmatte.trimap import UNKNOWN, ellipse_kernel, one_hot

#: Suffixes accepted for foregrounds and mattes; pre-composited images may also be JPEG.
MATTE_SUFFIXES = (".png", ".tif", ".tiff", ".exr")
IMAGE_SUFFIXES = MATTE_SUFFIXES + (".jpg", ".jpeg")
#: Files that may sit in the data folders without being data.
_IGNORED_SUFFIXES = (".md", ".txt", ".json", ".yaml", ".yml")


# --------------------------------------------------------------------------------------------
# Reading images
# --------------------------------------------------------------------------------------------


#: Colourspace of EXR training images: scene-linear Rec.709 (``training/DATA.md``). Every other
#: file is sRGB-encoded, the network's working encoding.
EXR_COLORSPACE = "lin_rec709"


def colorspace_of(path: Path) -> str:
    """The colourspace a training image file is taken to be in, by its type (``training/DATA.md``)."""
    return EXR_COLORSPACE if Path(path).suffix.lower() == ".exr" else "srgb"


def read_rgb(path: Path) -> np.ndarray:
    """An image as float32 [H, W, 3] in the 0..1 sRGB-encoded working space.

    Read by :func:`vfxmatte.io.read_image` (R, G, B chosen by name, grey replicated, colour
    kept as stored beside unassociated alpha) and converted by :func:`vfxmatte.color.to_working`
    from :func:`colorspace_of` the file, the conversion inference applies to a plate: an EXR
    gives the network the same input here as it does as a ``lin_rec709`` plate of a job.

    Raises:
        ImageReadError: the file is missing, unreadable, or has no R, G, B (or Y) channels.
        ColorError: the OCIO config has no such colourspace.
    """
    rgb, _ = read_image(path, unassociated=True)
    return to_working(rgb, colorspace_of(path))


def read_alpha(path: Path) -> np.ndarray:
    """A matte as float32 [H, W] in 0..1: :func:`vfxmatte.io.read_mask` (A, else the first channel), clipped.

    Raises:
        ImageReadError: the file is missing or unreadable.
    """
    return np.clip(read_mask(path), 0.0, 1.0)


# --------------------------------------------------------------------------------------------
# The studio layout
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StudioItem:
    """One foreground (or pre-composited image) and its matte."""

    name: str
    alpha: Path
    fg: Path | None = None
    image: Path | None = None


def _index_folder(folder: Path, suffixes: Sequence[str]) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for f in sorted(folder.iterdir()):
        if f.name.startswith(".") or f.is_dir() or f.suffix.lower() in _IGNORED_SUFFIXES:
            continue
        if f.suffix.lower() not in suffixes:
            raise DataError(f"{f}: unsupported file type (expected {', '.join(suffixes)})")
        if f.stem in found:
            raise DataError(f"{f}: two files share the name '{f.stem}' ({found[f.stem].name} and {f.name})")
        found[f.stem] = f
    return found


class StudioSet:
    """A validated studio data folder (layout in ``training/DATA.md``).

    ``ROOT/fg/NAME.*`` + ``ROOT/alpha/NAME.*`` pairs are composited over backgrounds;
    ``ROOT/image/NAME.*`` + ``ROOT/alpha/NAME.*`` pairs are used as they are. Both kinds may
    live in one root. ``ROOT/bg/`` (any images, recursive), if present, are its backgrounds.

    Raises:
        DataError: the root or ``alpha/`` is missing, a file has no partner, a name is used
        twice, or a file type is unsupported. The message names the file.
    """

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise DataError(f"{self.root}: studio data folder does not exist")
        alpha_dir = self.root / "alpha"
        if not alpha_dir.is_dir():
            raise DataError(f"{alpha_dir}: missing the alpha/ folder of mattes")
        fg_dir, img_dir = self.root / "fg", self.root / "image"
        if not fg_dir.is_dir() and not img_dir.is_dir():
            raise DataError(f"{self.root}: needs fg/ (foregrounds to composite) or image/ (composited plates)")
        alphas = _index_folder(alpha_dir, MATTE_SUFFIXES)
        fgs = _index_folder(fg_dir, MATTE_SUFFIXES) if fg_dir.is_dir() else {}
        imgs = _index_folder(img_dir, IMAGE_SUFFIXES) if img_dir.is_dir() else {}
        for stem in sorted(set(fgs) & set(imgs)):
            raise DataError(f"{fgs[stem]} and {imgs[stem]}: one name in both fg/ and image/")
        items: list[StudioItem] = []
        for stem, f in fgs.items():
            if stem not in alphas:
                raise DataError(f"{f}: no matching matte alpha/{stem}.* (expected one of {', '.join(MATTE_SUFFIXES)})")
            items.append(StudioItem(stem, alphas[stem], fg=f))
        for stem, f in imgs.items():
            if stem not in alphas:
                raise DataError(f"{f}: no matching matte alpha/{stem}.* (expected one of {', '.join(MATTE_SUFFIXES)})")
            items.append(StudioItem(stem, alphas[stem], image=f))
        for stem, a in alphas.items():
            if stem not in fgs and stem not in imgs:
                raise DataError(f"{a}: matte without a foreground fg/{stem}.* or image image/{stem}.*")
        if not items:
            raise DataError(f"{self.root}: no fg/alpha or image/alpha pairs found")
        self.items = sorted(items, key=lambda it: it.name)
        bg_dir = self.root / "bg"
        self.backgrounds: list[Path] = []
        if bg_dir.is_dir():
            from training.synthetic import list_images

            self.backgrounds = list_images(bg_dir)

    def __len__(self) -> int:
        return len(self.items)

    @property
    def needs_backgrounds(self) -> bool:
        return any(it.fg is not None for it in self.items)

    def load(self, i: int) -> tuple[np.ndarray, np.ndarray, bool]:
        """(rgb [H, W, 3], alpha [H, W], composited) of item ``i``; rgb is F, or I if composited.

        Raises:
            DataError: the files disagree in size.
            ImageReadError: a file cannot be read (names it).
        """
        it = self.items[i]
        rgb_path = it.fg if it.fg is not None else it.image
        assert rgb_path is not None
        rgb = read_rgb(rgb_path)
        alpha = read_alpha(it.alpha)
        if rgb.shape[:2] != alpha.shape:
            raise DataError(f"{it.alpha}: matte is {alpha.shape[1]}x{alpha.shape[0]} but {rgb_path.name} is {rgb.shape[1]}x{rgb.shape[0]}")
        return rgb, alpha, it.image is not None


# --------------------------------------------------------------------------------------------
# Augmentation helpers (pure, rng-driven)
# --------------------------------------------------------------------------------------------


def _resize(img: np.ndarray, size: int) -> np.ndarray:
    interp = cv2.INTER_AREA if img.shape[0] > size else cv2.INTER_LINEAR
    return cv2.resize(img, (size, size), interpolation=interp)


def refract(bg: np.ndarray, disp: np.ndarray) -> np.ndarray:
    """The background seen through glass: ``B(p + d(p))``, bilinear, mirrored at the borders.

    ``disp`` is float32 [H, W, 2] (x, y) in pixels of ``bg`` [H, W, C]; zero displacement returns
    ``bg`` unchanged (to float rounding), so only the glass's footprint is touched.
    """
    xs, ys = pixel_grid(disp.shape[:2])
    return cv2.remap(bg, xs + disp[..., 0], ys + disp[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def _resize_displacement(disp: np.ndarray, size: int, flip: bool) -> np.ndarray:
    """A square crop's displacement field resized to ``size`` (vectors scaled with the pixels),
    mirrored left-right when the item is (the x component changes sign)."""
    out = _resize(disp, size) * np.float32(size / disp.shape[0])
    if flip:
        out = cv2.flip(out, 1)
        out[..., 0] *= -1.0
    return np.ascontiguousarray(out, dtype=np.float32)


def _crop_box(alpha: np.ndarray, rng: np.random.Generator, side: int, centre_on_unknown: float) -> tuple[int, int]:
    """Top-left of a ``side`` square, centred on a random unknown pixel (0 < alpha < 1) when possible."""
    h, w = alpha.shape
    # Look for unknown pixels on a coarse grid: 2K plates would make a full scan slow.
    stride = max(1, min(h, w) // 256)
    cy = cx = None
    if rng.random() < centre_on_unknown:
        sub = alpha[::stride, ::stride]
        ys, xs = np.nonzero((sub > 0) & (sub < 1))
        if len(ys):
            k = int(rng.integers(len(ys)))
            cy, cx = int(ys[k]) * stride, int(xs[k]) * stride
    if cy is None:
        cy, cx = int(rng.integers(h)), int(rng.integers(w))
    y0 = int(np.clip(cy - side // 2, 0, h - side))
    x0 = int(np.clip(cx - side // 2, 0, w - side))
    return y0, x0


def _jitter_colour(rgb: np.ndarray, rng: np.random.Generator, hue: float, sat: float, val: float) -> np.ndarray:
    """Random hue rotation (degrees), saturation and brightness gains as one 3x3 colour matrix.

    Hue turns about the grey axis, saturation scales the distance from Rec.709 luma, brightness
    is a gain: the HSV-style jitter of DIM without an HSV round trip (one ``cv2.transform``).
    """
    th = math.radians(rng.uniform(-hue, hue))
    c, s3 = math.cos(th), math.sin(th) / math.sqrt(3.0)
    k = (1.0 - c) / 3.0
    m_hue = np.array([[c + k, k - s3, k + s3], [k + s3, c + k, k - s3], [k - s3, k + s3, c + k]], np.float32)
    sg = rng.uniform(1 - sat, 1 + sat)
    luma = np.array([0.2126, 0.7152, 0.0722], np.float32)
    m_sat = sg * np.eye(3, dtype=np.float32) + (1 - sg) * np.tile(luma, (3, 1))
    m = (rng.uniform(1 - val, 1 + val) * m_sat @ m_hue).astype(np.float32)
    out = cv2.transform(np.ascontiguousarray(rgb, np.float32), m)
    return np.clip(out, 0.0, 1.0, out=out)


def _add_held_object(
    f: np.ndarray, a: np.ndarray, photos: PhotoLibrary, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Paste a :func:`~training.synthetic.held_object` over the foreground's edge.

    Returns the new (F, alpha) and the object's coverage as uint8 (1 where its alpha > 0).
    Centred on a random pixel of the foreground's outline (anywhere if there is none), so the
    object overlaps both the foreground and the background.
    """
    S = a.shape[0]
    solid = (a > 0.5).astype(np.uint8)
    edge = cv2.morphologyEx(solid, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8))
    ys, xs = np.nonzero(edge)
    if len(ys):
        i = int(rng.integers(len(ys)))
        centre = (float(ys[i]), float(xs[i]))
    else:
        centre = (rng.uniform(0, S), rng.uniform(0, S))
    side = rng.uniform(0.2, 0.5) * S
    obj = held_object(rng, photos, S, S, centre, side)
    f2, a2 = over(obj, (f, a))
    return f2, a2, (obj[1] > 0).astype(np.uint8)


def _chw(x: np.ndarray) -> torch.Tensor:
    if x.ndim == 2:
        x = x[None]
    else:
        x = x.transpose(2, 0, 1)
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))


def worker_init_fn(worker_id: int) -> None:
    """DataLoader worker setup: one OpenCV and one torch thread per worker (no oversubscription)."""
    cv2.setNumThreads(1)
    torch.set_num_threads(1)


# --------------------------------------------------------------------------------------------
# The dataset
# --------------------------------------------------------------------------------------------


class MattingDataset(Dataset):
    """Composited training items with the dual trimaps of paper §3.3.

    Args:
        studio: a :class:`StudioSet` or its root folder.
        synthetic: a :class:`SyntheticGenerator`; its sample ids run on across epochs, so each
            epoch sees new foregrounds.
        length: items per epoch (default: the studio item count, required for synthetic-only).
        backgrounds: photos to composite over (files, folders, or a :class:`PhotoLibrary`);
            default: the studio's ``bg/``, else the generator's photos.
        out_size: side S of every item.
        crop_sizes: crop sides (source pixels) before resizing to S, paper-style 320/480/640.
        fg_scale: random factor on the crop side ("fg rescaling"); crops never exceed the image.
        bg_zoom: random magnification range of the background crop ("bg rescaling").
        synthetic_fraction: share of synthetic items when both sources are given.
        synthetic_reuse: consecutive items sharing one generated foreground (composited over
            different backgrounds, crops and jitter), to amortise generation.
        augment: flips and colour jitter on; off for validation.
        centre_on_unknown: probability a crop is centred on an unknown pixel.
        rough_trimap_prob: share of items whose trimaps start from a rough trimap (the paper's
            SP trimap with its band dilated by :func:`training.trimaps.rough_trimap`); 0 keeps
            the paper's stream exactly (no extra random draws).
        rough_trimap_kernel: kernel side range of that dilation, in ``out_size`` pixels.
        held_object_prob: share of composited items that get a held object
            (:func:`training.synthetic.held_object`, 20-50% of ``out_size`` across, its own
            texture) pasted over the foreground's edge and marked all unknown in the trimaps,
            like a flag in a toy's paw inside a hand-drawn band; 0 (the default) keeps the
            stream exactly (no extra random draws).
        seed: base seed.

    Item: dict of float32 tensors, S = ``out_size``:
        ``image`` [3, S, S] 0..1; ``alpha`` [1, S, S]; ``trimap_sp`` and ``trimap_tcp``
        [3, S, S] one-hot (bg, unknown, fg); ``fg`` and ``bg`` [3, S, S]; ``has_fg_bg`` []
        (0 for pre-composited plates, whose ``fg`` and ``bg`` are copies of ``image``).

    Raises:
        DataError: no source, no length for a synthetic-only set, or no backgrounds for
        foregrounds that need them.
    """

    def __init__(
        self,
        studio: StudioSet | Path | str | None = None,
        synthetic: SyntheticGenerator | None = None,
        length: int | None = None,
        backgrounds: PhotoLibrary | Sequence[Path] | Path | str | None = None,
        out_size: int = 512,
        crop_sizes: Sequence[int] = (320, 480, 640),
        fg_scale: tuple[float, float] = (0.8, 1.25),
        bg_zoom: tuple[float, float] = (0.6, 1.6),
        synthetic_fraction: float = 0.5,
        synthetic_reuse: int = 1,
        augment: bool = True,
        centre_on_unknown: float = 0.9,
        rough_trimap_prob: float = 0.0,
        rough_trimap_kernel: tuple[int, int] = ROUGH_KERNEL,
        held_object_prob: float = 0.0,
        seed: int = 0,
    ) -> None:
        self.studio = StudioSet(studio) if isinstance(studio, (str, Path)) else studio
        self.synthetic = synthetic
        if self.studio is None and self.synthetic is None:
            raise DataError("MattingDataset needs a studio folder, a synthetic generator, or both")
        if length is None:
            if self.studio is None:
                raise DataError("MattingDataset: a synthetic-only data set needs an explicit length")
            length = len(self.studio)
        if length <= 0:
            raise DataError(f"MattingDataset: length must be positive, got {length}")
        self.length = int(length)
        if isinstance(backgrounds, PhotoLibrary):
            self.backgrounds = backgrounds
        elif backgrounds is not None:
            self.backgrounds = PhotoLibrary(backgrounds)
        elif self.studio is not None and self.studio.backgrounds:
            self.backgrounds = PhotoLibrary(self.studio.backgrounds)
        elif self.synthetic is not None:
            self.backgrounds = self.synthetic.photos
        elif self.studio is not None and not self.studio.needs_backgrounds:
            self.backgrounds = None
        else:
            raise DataError(f"{self.studio.root if self.studio else ''}: foregrounds need backgrounds: add bg/ or pass backgrounds=")
        if not crop_sizes or min(crop_sizes) < 8:
            raise DataError(f"crop_sizes must be a non-empty list of sides >= 8, got {crop_sizes}")
        self.out_size = int(out_size)
        self.crop_sizes = tuple(int(c) for c in crop_sizes)
        self.fg_scale = fg_scale
        self.bg_zoom = bg_zoom
        self.synthetic_fraction = float(synthetic_fraction) if self.studio is not None and self.synthetic is not None else (1.0 if self.studio is None else 0.0)
        self.synthetic_reuse = max(1, int(synthetic_reuse))
        self.augment = augment
        self.centre_on_unknown = centre_on_unknown
        if not 0.0 <= rough_trimap_prob <= 1.0:
            raise DataError(f"rough_trimap_prob must be in [0, 1], got {rough_trimap_prob}")
        self.rough_trimap_prob = float(rough_trimap_prob)
        self.rough_trimap_kernel = (int(rough_trimap_kernel[0]), int(rough_trimap_kernel[1]))
        if not 0.0 <= held_object_prob <= 1.0:
            raise DataError(f"held_object_prob must be in [0, 1], got {held_object_prob}")
        self.held_object_prob = float(held_object_prob)
        self.seed = int(seed)
        self.epoch = 0
        self._fg_cache: OrderedDict[int, tuple[np.ndarray, np.ndarray, np.ndarray | None]] = OrderedDict()

    def __len__(self) -> int:
        return self.length

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_fg_cache"] = OrderedDict()
        return state

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch: items of a new epoch use fresh random draws and synthetic samples."""
        self.epoch = int(epoch)

    def rng(self, index: int) -> np.random.Generator:
        return np.random.default_rng(np.random.SeedSequence([self.seed, self.epoch, int(index)]))

    def _synthetic_sample(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """(F, alpha, refraction or None) of the generated foreground that item ``index`` uses."""
        assert self.synthetic is not None
        sid = (self.epoch * self.length + index) // self.synthetic_reuse
        hit = self._fg_cache.get(sid)
        if hit is None:
            info: dict[str, Any] = {}
            f, a = self.synthetic.sample(sid, out=info)
            hit = (f, a, info.get("refraction"))
            self._fg_cache[sid] = hit
            while len(self._fg_cache) > 4:
                self._fg_cache.popitem(last=False)
        return hit

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if not 0 <= index < self.length:
            raise IndexError(f"index {index} out of range 0..{self.length - 1}")
        rng = self.rng(index)
        S = self.out_size
        composited = False
        held: np.ndarray | None = None
        disp: np.ndarray | None = None
        if self.synthetic is not None and rng.random() < self.synthetic_fraction:
            rgb, alpha, disp = self._synthetic_sample(index)
        else:
            assert self.studio is not None
            n = len(self.studio)
            # Every studio item once per `n` indices, in a per-epoch order.
            k = int(np.random.default_rng(np.random.SeedSequence([self.seed, self.epoch, 0xD1A])).permutation(n)[index % n]) if self.synthetic is None else int(rng.integers(n))
            rgb, alpha, composited = self.studio.load(k)

        # Crop around the unknown band, then resize to S (DIM-style 320/480/640 crops).
        h, w = alpha.shape
        side = float(self.crop_sizes[int(rng.integers(len(self.crop_sizes)))]) * rng.uniform(*self.fg_scale)
        side_i = int(max(8, min(round(side), h, w)))
        y0, x0 = _crop_box(alpha, rng, side_i, self.centre_on_unknown)
        a = _resize(np.ascontiguousarray(alpha[y0 : y0 + side_i, x0 : x0 + side_i]), S)
        f = _resize(np.ascontiguousarray(rgb[y0 : y0 + side_i, x0 : x0 + side_i]), S)
        a = np.clip(a, 0.0, 1.0)
        # Refraction draws nothing from rng: items without it stay as they were before it existed.
        flip = self.augment and rng.random() < 0.5
        if flip:
            a, f = cv2.flip(a, 1), cv2.flip(f, 1)
        if disp is not None:
            disp = _resize_displacement(np.ascontiguousarray(disp[y0 : y0 + side_i, x0 : x0 + side_i]), S, flip)

        if composited:
            img = f
            if self.augment and rng.random() < 0.5:
                img = _jitter_colour(img, rng, 8.0, 0.2, 0.2)
            img_t = _chw(np.clip(img, 0.0, 1.0))
            fg_t, bg_t = img_t.clone(), img_t.clone()
        else:
            assert self.backgrounds is not None
            bg = self.backgrounds.crop(rng, S, S, zoom=self.bg_zoom)
            if disp is not None:
                bg = refract(bg, disp)  # B is what the camera sees behind the glass: the loss's B too
            if self.held_object_prob > 0.0 and rng.random() < self.held_object_prob:
                f, a, held = _add_held_object(f, a, self.backgrounds, rng)
            fg = f
            if self.augment:
                # Foreground and background jittered separately, so colour alone never tells them apart.
                if rng.random() < 0.5:
                    fg = _jitter_colour(fg, rng, 10.0, 0.3, 0.3)
                if rng.random() < 0.5:
                    bg = _jitter_colour(bg, rng, 15.0, 0.4, 0.4)
            fg_t, bg_t = _chw(fg), _chw(bg)
            # I = alpha * F + (1 - alpha) * B, in the sRGB-encoded working space (DATA.md).
            img_t = torch.lerp(bg_t, fg_t, torch.from_numpy(a)[None]).clamp_(0.0, 1.0)

        sp = semantic_trimap(a, rng)
        if self.rough_trimap_prob > 0.0 and rng.random() < self.rough_trimap_prob:
            sp = rough_trimap(sp, rng, self.rough_trimap_kernel)
        if held is not None:  # the whole held object (and a margin) is left for the network
            k = int(rng.integers(3, 26))
            margin = cv2.dilate(held, ellipse_kernel(k))
            sp[margin > 0] = UNKNOWN
        tcp = tcp_trimap(sp, rng)
        return {
            "image": img_t,
            "alpha": _chw(a),
            "trimap_sp": torch.from_numpy(one_hot(sp)),
            "trimap_tcp": torch.from_numpy(one_hot(tcp)),
            "fg": fg_t,
            "bg": bg_t,
            "has_fg_bg": torch.tensor(0.0 if composited else 1.0),
        }


def build_validation_set(
    generator_or_root: SyntheticGenerator | StudioSet | Path | str,
    n: int,
    seed: int,
    size: int = 512,
    backgrounds: PhotoLibrary | Sequence[Path] | Path | str | None = None,
    crop_sizes: Sequence[int] = (480, 640),
    rough_trimap_prob: float = 0.0,
    rough_trimap_kernel: tuple[int, int] = ROUGH_KERNEL,
    held_object_prob: float = 0.0,
) -> list[dict[str, torch.Tensor]]:
    """A fixed list of ``n`` validation items (no flips or jitter), reproducible from ``seed``.

    Build the generator (or studio folder) on photos held out from training, e.g. with
    :func:`training.synthetic.split_holdout`, so the set measures transfer to unseen images.
    Never point this at alphamatting.com data: that is the benchmark.
    """
    source = {"synthetic" if isinstance(generator_or_root, SyntheticGenerator) else "studio": generator_or_root}
    ds = MattingDataset(**source, length=n, backgrounds=backgrounds, out_size=size, crop_sizes=crop_sizes,
                        augment=False, seed=seed, rough_trimap_prob=rough_trimap_prob,
                        rough_trimap_kernel=rough_trimap_kernel, held_object_prob=held_object_prob)
    return [ds[i] for i in range(n)]
