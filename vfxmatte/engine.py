"""Tiled inference: run the matting network on frames of any size, on GPU or CPU.

Cost follows the unknown region, not the frame: the frame (padded by reflection to the
network's stride, as untiled inference pads it) is covered by a grid of overlapping square
tiles whose origins are multiples of the stride, and only tiles whose contributing area
touches the trimap's unknown band are computed. Tiles are blended with weights that are zero
in a dead margin at each inner tile edge and grow with the distance from it, so there are no
seams and each pixel is dominated by the tile that sees it with the most context. Peak memory
is set by ``tile_size`` and ``batch_size``; the frame-sized buffers are the image, trimap and
two float32 accumulators.
"""

from __future__ import annotations

import functools
import math
import os
from dataclasses import dataclass
from typing import Callable, Iterator, Literal, Sequence, get_args

import numpy as np
import torch

from vfxmatte import trimap as tm
from vfxmatte.checkpoint import Checkpoint, load_model
from vfxmatte.defaults import DEFAULT_OVERLAP, DEFAULT_TILE
from vfxmatte.errors import DeviceError, InputError
from vfxmatte.model import STRIDE, TCPMatting
from vfxmatte.model.fuse import fold_batchnorm

Progress = Callable[[int, int], None]
DeviceName = Literal["auto", "cpu", "cuda", "mps"] | str
Precision = Literal["auto", "fp32", "fp16", "bf16"]
#: Test-time augmentation: "none", or "flip" (also run each tile mirrored left-right and
#: average the two alphas: ~2x the time; on held-out synthetic composites SAD -4%, Grad -7%).
TTA = Literal["none", "flip"]
TTA_MODES: tuple[str, ...] = get_args(TTA)



# --------------------------------------------------------------------------- devices


def select_device(preference: DeviceName = "auto") -> torch.device:
    """Pick cuda, then mps, then cpu for "auto"; check that an explicit device exists."""
    pref = str(preference).lower()
    mps_ok = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if pref == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if mps_ok:
            return torch.device("mps")
        return torch.device("cpu")
    if pref.startswith("cuda"):
        if not torch.cuda.is_available():
            raise DeviceError(f"device '{preference}': CUDA is not available on this machine")
        return torch.device(pref)
    if pref == "mps":
        if not mps_ok:
            raise DeviceError("device 'mps': Apple Metal is not available on this machine")
        return torch.device("mps")
    if pref == "cpu":
        return torch.device("cpu")
    raise DeviceError(f"device '{preference}': choose auto, cpu, cuda, cuda:N or mps")


_BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


@functools.lru_cache(maxsize=1)
def cpu_has_native_bf16(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """True where the CPU has bf16 dot-product instructions (AVX512_BF16 or AMX-BF16).

    oneDNN runs bf16 convolutions on them ~2x faster than fp32 (measured on an AMD EPYC Zen 4
    with AVX512_BF16: 800 px photos 0.17 s against 0.35 s); without them bf16 is emulated and
    far slower than fp32. Read from ``/proc/cpuinfo`` (Linux); elsewhere False.
    """
    try:
        with open(cpuinfo, encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[-1].split())
                    return any(flag in flags for flag in _BF16_CPU_FLAGS)
    except OSError:
        pass
    return False


@dataclass(frozen=True)
class NumericMode:
    """How the network's arithmetic runs on a device.

    ``dtype``: what the weights and inputs are cast to; ``autocast``: the autocast dtype on top
    (GPUs), or None. The two paths' logits are always summed into alpha in float32.
    """

    name: str  # "fp32", "bf16" (CPU: bf16 weights), "fp16-autocast", "bf16-autocast"
    dtype: torch.dtype = torch.float32
    autocast: torch.dtype | None = None


FP32 = NumericMode("fp32")


def resolve_precision(
    device: torch.device, preference: Precision = "auto", native_bf16: bool | None = None
) -> NumericMode:
    """The arithmetic ``preference`` means on ``device``.

    GPUs get fp16 autocast by default (bf16 autocast on request). CPUs with native bf16
    instructions (:func:`cpu_has_native_bf16`; ``native_bf16`` overrides the check) run the
    whole network in bf16 by default: twice as fast, with held-out SAD and Gradient within
    0.6% of fp32 (benchmarks/results/heldout_v{9,10}_bf16.json). Other CPUs run fp32 and refuse
    bf16 (emulated, it is many times slower); fp16 is refused on every CPU. On a CPU the weights
    are cast once instead of autocasting every op.
    """
    pref = str(preference).lower()
    if pref not in ("auto", "fp32", "fp16", "bf16"):
        raise DeviceError(f"precision '{preference}': choose auto, fp32, fp16 or bf16")
    if pref == "fp32":
        return FP32
    if device.type == "cpu":
        native = cpu_has_native_bf16() if native_bf16 is None else native_bf16
        if pref == "auto":
            return NumericMode("bf16", torch.bfloat16) if native else FP32
        if pref == "bf16" and native:
            return NumericMode("bf16", torch.bfloat16)
        why = (
            "this CPU has no native bf16 instructions (AVX512_BF16 or AMX), so bf16 would run many times slower"
            if pref == "bf16"
            else "fp16 is many times slower than fp32 on CPUs"
        )
        raise DeviceError(f"precision '{preference}' on cpu: {why}; use fp32 or auto")
    if pref == "bf16":
        return NumericMode("bf16-autocast", autocast=torch.bfloat16)
    return NumericMode("fp16-autocast", autocast=torch.float16)


# --------------------------------------------------------------------------- tiling plan


@dataclass(frozen=True)
class Tile:
    y: int
    x: int
    h: int
    w: int


def axis_layout(length: int, tile: int, overlap: int, align: int = STRIDE) -> tuple[int, list[int]]:
    """Tile size and start offsets along one axis.

    ``tile`` is the largest tile allowed (memory): the axis gets the fewest tiles of at most that
    size whose neighbours overlap by at least ``overlap``, and the tiles are then shrunk to the
    smallest size that still keeps that overlap, so the network does not recompute pixels for
    nothing (a 2048 x 1088 frame with 1024-px tiles and 256 px overlap runs 6 tiles of
    864 x 672, 1.6x its pixels, instead of 6 of 1024 x 1024, 2.8x). Every start is a multiple of
    ``align`` (the network's stride): the network is not shift-equivariant for shifts that are not multiples of its stride,
    so an unaligned tile would see a differently sampled feature grid and disagree with untiled
    inference everywhere, not just near its edges. ``length`` and ``tile`` are multiples of
    ``align`` (the frame is padded to the stride first).
    """
    if length <= tile:
        return length, [0]
    n = max(math.ceil((length - overlap) / (tile - overlap)), 2)
    while True:
        size = min(tile, -(-(length + (n - 1) * overlap) // (n * align)) * align)
        while size <= tile:
            starts = [int(round(i * (length - size) / (n - 1) / align)) * align for i in range(n)]
            if all(b - a <= size - overlap for a, b in zip(starts, starts[1:])):
                return size, starts
            size += align
        n += 1


def axis_weight(start: int, size: int, length: int, overlap: int) -> np.ndarray:
    """1-D blending weight of a tile: zero in a dead margin at inner edges, then growing.

    The weight is ``max(d - margin, 0)^2`` where ``d`` is the distance to the nearest *inner*
    tile edge (edges on the frame border do not count: no neighbour covers them) and
    ``margin = overlap // 4``. Where tiles overlap by more than ``overlap`` (the grid spreads
    tiles evenly), a pixel is dominated by the tile that sees it from deepest inside, i.e. with
    the most context around it: the network's receptive field spans hundreds of pixels, so a
    plain cross-fade near each tile's own edge lets edge-starved predictions through.
    """
    i = np.arange(size, dtype=np.float64) + 0.5
    d = np.full(size, np.inf)
    if start > 0:
        d = np.minimum(d, i)
    if start + size < length:
        d = np.minimum(d, size - i)
    if not np.isfinite(d).all():
        return np.ones(size, dtype=np.float32)
    margin = overlap // 4
    w = np.maximum(d - margin, 0.0) / size
    return (w * w).astype(np.float32)


def padded_size(length: int, stride: int = STRIDE) -> int:
    """``length`` rounded up to a multiple of the network stride."""
    return -(-length // stride) * stride


def plan_tiles(height: int, width: int, tile: int, overlap: int, stride: int = STRIDE) -> list[Tile]:
    """All tiles of the grid covering a frame padded to the stride.

    ``height`` and ``width`` are the frame's own size; tiles are laid over the frame padded to
    a multiple of ``stride`` (the model's :attr:`~vfxmatte.model.TCPMatting.stride`; reflection
    padding, as untiled inference pads), so a tile may reach up to ``stride - 1`` pixels past the
    bottom or right edge. ``tile = 0`` means one tile.
    """
    hp, wp = padded_size(height, stride), padded_size(width, stride)
    if tile <= 0:
        return [Tile(0, 0, hp, wp)]
    if tile % stride:
        raise InputError(f"tile_size must be a multiple of {stride} (the network stride), got {tile}")
    if overlap < 0 or overlap >= tile // 2:
        raise InputError(f"overlap must be in [0, tile_size/2), got {overlap} for tile_size {tile}")
    th, ys = axis_layout(hp, tile, overlap, stride)
    tw, xs = axis_layout(wp, tile, overlap, stride)
    return [Tile(y, x, th, tw) for y in ys for x in xs]


def _reflect_indices(start: int, size: int, length: int) -> np.ndarray | slice:
    """Indices of ``start .. start+size`` into an axis of ``length``, reflected past the end."""
    if start + size <= length:
        return slice(start, start + size)
    i = np.arange(start, start + size)
    i = np.where(i >= length, 2 * (length - 1) - i, i)  # numpy/torch 'reflect' padding
    return np.clip(i, 0, length - 1)  # 'edge' where the frame is shorter than the padding


def crop_tile(array: np.ndarray, t: Tile) -> np.ndarray:
    """The tile's window of a frame-sized array, reflection-padded past the bottom/right edge."""
    iy = _reflect_indices(t.y, t.h, array.shape[0])
    ix = _reflect_indices(t.x, t.w, array.shape[1])
    if isinstance(iy, slice) and isinstance(ix, slice):
        return array[iy, ix]
    iy = np.arange(array.shape[0])[iy] if isinstance(iy, slice) else iy
    ix = np.arange(array.shape[1])[ix] if isinstance(ix, slice) else ix
    return array[np.ix_(iy, ix)]


def tile_weight(t: Tile, height: int, width: int, overlap: int) -> np.ndarray:
    """[h, w] blending weight of a tile within the frame."""
    wy = axis_weight(t.y, t.h, height, overlap)
    wx = axis_weight(t.x, t.w, width, overlap)
    return wy[:, None] * wx[None, :]


def tiles_needing_inference(
    tiles: Sequence[Tile], unknown: np.ndarray, overlap: int, stride: int = STRIDE
) -> list[Tile]:
    """Tiles whose positive-weight area holds at least one unknown pixel.

    Every unknown pixel gets positive weight from at least one tile of the full grid, and that
    tile then holds an unknown pixel in its positive-weight area, so the selection covers the
    whole unknown band.
    """
    h, w = unknown.shape
    hp, wp = padded_size(h, stride), padded_size(w, stride)
    keep = []
    for t in tiles:
        sub = unknown[t.y : t.y + t.h, t.x : t.x + t.w]  # the part inside the frame
        if not sub.any():
            continue
        wt = tile_weight(t, hp, wp, overlap)[: sub.shape[0], : sub.shape[1]]
        if (sub & (wt > 0)).any():
            keep.append(t)
    return keep


# --------------------------------------------------------------------------- inputs


def check_frame(image: np.ndarray, trimap: np.ndarray, name: str = "frame") -> tuple[np.ndarray, np.ndarray]:
    """Validate an [H, W, 3] working-encoded image and its canonical trimap.

    Returns float32 copies-or-views; image values are clipped to [0, 1].

    Raises:
        InputError: wrong shape or channel count, non-finite pixels.
        TrimapError: trimap shape or palette errors.
    """
    img = np.asarray(image)
    if img.ndim != 3 or img.shape[2] != 3:
        raise InputError(f"{name}: expected an [H, W, 3] RGB image, got shape {img.shape}")
    if not np.issubdtype(img.dtype, np.floating):
        raise InputError(f"{name}: expected a float image in [0, 1], got dtype {img.dtype}")
    img = img.astype(np.float32, copy=False)
    if not np.isfinite(img).all():
        raise InputError(f"{name}: image holds NaN or Inf values")
    tri = tm.validate(trimap, name=f"{name} trimap")
    if tri.shape != img.shape[:2]:
        raise InputError(f"{name}: trimap shape {tri.shape} does not match image {img.shape[:2]}")
    return np.clip(img, 0.0, 1.0), tri


# --------------------------------------------------------------------------- session


class MattingSession:
    """A model loaded on a device, ready to matte frames.

    Example:
        >>> s = MattingSession.from_checkpoint("starter", device="cpu")  # doctest: +SKIP
        >>> alpha = s.matte(image, trimap)  # [H, W] float32  # doctest: +SKIP
    """

    def __init__(
        self,
        model: TCPMatting,
        device: DeviceName = "auto",
        precision: Precision = "auto",
        tile_size: int = DEFAULT_TILE,
        overlap: int = DEFAULT_OVERLAP,
        batch_size: int | None = None,
        checkpoint: Checkpoint | None = None,
        fold_norms: bool = True,
        tta: TTA = "none",
        sparse: bool | None = None,
    ) -> None:
        if tta not in TTA_MODES:
            raise InputError(f"tta must be one of {', '.join(TTA_MODES)}, got {tta!r}")
        self.tta = tta
        self.device = select_device(device)
        self.numeric = resolve_precision(self.device, precision)
        # Block-sparse inference (vfxmatte.model.sparse): the full- and half-resolution layers
        # run only near the unknown band, which is all that matte() keeps. None = on for the
        # CPU, where it was measured faster; off on GPUs until it is measured there.
        self.sparse = self.device.type == "cpu" if sparse is None else bool(sparse)
        if tile_size < 0:
            raise InputError(f"tile_size must be >= 0 (0 = untiled), got {tile_size}")
        self.tile_size = int(tile_size)
        self.overlap = int(overlap) if tile_size else 0
        self.stride = model.stride
        plan_tiles(max(tile_size, 1), max(tile_size, 1), tile_size, self.overlap, self.stride)  # checks
        self.batch_size = batch_size or (1 if self.device.type == "cpu" else 8)
        if self.batch_size < 1:
            raise InputError(f"batch_size must be >= 1, got {batch_size}")
        self.checkpoint = checkpoint
        # channels_last: oneDNN's and cuDNN's fast conv layout (NCHW is ~1.5x slower here).
        # Folding batch norm into the convs removes a memory pass per norm layer (inference only;
        # the caller's model is not modified).
        # bf16 on the CPU casts the (folded) weights once; alpha is still formed in float32.
        net = fold_batchnorm(model) if fold_norms else model
        net = net.to(self.device, dtype=self.numeric.dtype)
        self.model = net.to(memory_format=torch.channels_last).eval()

    @classmethod
    def from_checkpoint(cls, name_or_path: str | os.PathLike[str] = "starter", **kwargs) -> "MattingSession":
        model, ckpt = load_model(name_or_path)
        return cls(model, checkpoint=ckpt, **kwargs)

    @property
    def model_name(self) -> str:
        return self.model.config.name

    # -- core
    def _run_batch(self, image: np.ndarray, trimap: np.ndarray, tiles: Sequence[Tile]) -> np.ndarray:
        """Network prediction for tiles of equal size -> [N, h, w] float32."""
        imgs = np.stack([crop_tile(image, t) for t in tiles])  # [N,h,w,3]
        tris = np.stack([tm.one_hot(crop_tile(trimap, t)) for t in tiles])  # [N,3,h,w]
        dtype = self.numeric.dtype
        x = torch.from_numpy(imgs).permute(0, 3, 1, 2).to(self.device, dtype)  # [N,3,h,w]
        tr = torch.from_numpy(tris).to(self.device, dtype)  # [N,3,h,w]
        x = x.contiguous(memory_format=torch.channels_last)
        tr = tr.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            alpha = self._forward(x, tr).float()
            if self.tta == "flip":  # the network is not mirror-symmetric: average both views
                mirrored = self._forward(x.flip(-1), tr.flip(-1)).float().flip(-1)
                alpha = (alpha + mirrored) * 0.5
        return alpha[:, 0].cpu().numpy()

    def _forward(self, x: torch.Tensor, tr: torch.Tensor) -> torch.Tensor:
        run = self.model.forward_sparse if self.sparse else self.model
        if self.numeric.autocast is not None:
            with torch.autocast(self.device.type, dtype=self.numeric.autocast):
                return run(x, tr)
        return run(x, tr)

    def _batches(self, tiles: list[Tile]) -> Iterator[list[Tile]]:
        for i in range(0, len(tiles), self.batch_size):
            yield tiles[i : i + self.batch_size]

    def predict(self, image: np.ndarray, trimap: np.ndarray, progress: Progress | None = None) -> np.ndarray:
        """Raw blended network prediction over the frame (0 where no tile ran).

        With ``sparse`` only the unknown band holds the network's prediction (0 elsewhere);
        :meth:`matte` keeps the trimap's known pixels either way.
        """
        h, w = trimap.shape
        hp, wp = padded_size(h, self.stride), padded_size(w, self.stride)
        unknown = tm.unknown_mask(trimap)
        tiles = plan_tiles(h, w, self.tile_size, self.overlap, self.stride)
        tiles = tiles_needing_inference(tiles, unknown, self.overlap, self.stride)
        # Tiles of a row (column) share their y (x) weights: compute each 1-D profile once.
        wy = {t.y: axis_weight(t.y, t.h, hp, self.overlap) for t in tiles}
        wx = {t.x: axis_weight(t.x, t.w, wp, self.overlap) for t in tiles}
        # Accumulators cover the stride-padded frame; the padding is cropped off at the end.
        acc = np.zeros((hp, wp), dtype=np.float32)
        wsum = np.zeros((hp, wp), dtype=np.float32)
        done = 0
        if progress:
            progress(0, len(tiles))
        for batch in self._batches(tiles):
            preds = self._run_batch(image, trimap, batch)
            for t, p in zip(batch, preds):
                wt = wy[t.y][:, None] * wx[t.x][None, :]  # == tile_weight(t, hp, wp, overlap)
                acc[t.y : t.y + t.h, t.x : t.x + t.w] += p * wt
                wsum[t.y : t.y + t.h, t.x : t.x + t.w] += wt
            done += len(batch)
            if progress:
                progress(done, len(tiles))
        np.divide(acc, wsum, out=acc, where=wsum > 0)
        return acc[:h, :w]

    def matte(self, image: np.ndarray, trimap: np.ndarray, progress: Progress | None = None, name: str = "frame") -> np.ndarray:
        """Alpha for one frame.

        Args:
            image: [H, W, 3] float RGB in the network's working encoding (sRGB-encoded, 0..1).
            trimap: [H, W] canonical trimap (0 bg, 0.5 unknown, 1 fg).
            progress: called with (tiles_done, tiles_total).

        Returns:
            [H, W] float32 alpha: known fg/bg copied from the trimap, the network's prediction in
            the unknown band.
        """
        img, tri = check_frame(image, trimap, name)
        if not tm.unknown_mask(tri).any():
            return tm.composite_known(np.zeros(tri.shape, np.float32), tri)
        return tm.composite_known(self.predict(img, tri, progress), tri)
