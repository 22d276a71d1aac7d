"""Inference: run the matting network on frames of any size, on GPU or CPU.

Two layers, each the one place for its concern:

- :class:`Predictor` is the network as inference runs it, on batches of equal-size tensors:
  batch norm folded into the convs, weights and inputs cast to the numeric mode's dtype
  (:mod:`vfxmatte.devices`), channels_last, the mode's autocast, optional block-sparse
  forward and flip test-time augmentation, alpha in float32. The training package validates
  checkpoints through it, so validation scores what users run.
- :class:`MattingSession` mattes whole frames: it checks the inputs, plans tiles
  (:mod:`vfxmatte.tiling`), runs only the tiles that touch the trimap's unknown band through
  its predictor in batches, blends them, and copies the trimap's known pixels over the result.
  Cost follows the unknown region, not the frame. Peak memory is set by ``tile_size`` and
  ``batch_size``; the frame-sized buffers are the image, trimap and two float32 accumulators.
  With a ``memory_budget`` both shrink per frame to fit it (:func:`vfxmatte.memory.fit_tiling`).
"""

from __future__ import annotations

import os
from typing import Callable, Iterator, Literal, Sequence, get_args

import numpy as np
import torch

from vfxmatte import trimap as tm
from vfxmatte.checkpoint import Checkpoint, load_model
from vfxmatte.devices import FP32, DeviceName, NumericMode, Precision, autocast, resolve_precision, select_device
from vfxmatte.errors import InputError
from vfxmatte.memory import HELD_PIXEL_BYTES, Budget, weight_bytes
from vfxmatte.model import PathOutputs, TCPMatting
from vfxmatte.model.fuse import fold_batchnorm
from vfxmatte.tiling import (
    DEFAULT_OVERLAP,
    DEFAULT_TILE,
    Tile,
    axis_weight,
    crop_tile,
    padded_size,
    plan_tiles,
    tiles_needing_inference,
)

__all__ = ["TTA", "TTA_MODES", "MattingSession", "Predictor", "check_frame", "default_batch_size"]

Progress = Callable[[int, int], None]
#: Test-time augmentation: "none", or "flip" (also run each input mirrored left-right and
#: average the two alphas: twice the network time; its scores are in benchmarks/RESULTS.md).
TTA = Literal["none", "flip"]
TTA_MODES: tuple[str, ...] = get_args(TTA)


def default_batch_size(device: torch.device) -> int:
    """Tiles per forward pass when a session is given none: 1 on the CPU, 8 on GPUs."""
    return 1 if device.type == "cpu" else 8


def _check_tta(tta: str) -> None:
    if tta not in TTA_MODES:
        raise InputError(f"tta must be one of {', '.join(TTA_MODES)}, got {tta!r}")


# --------------------------------------------------------------------------- predictor


class Predictor:
    """The network as inference runs it, on batches of equal-size tensors.

    Args:
        model: the network. With ``fold_norms`` (the default) a copy with batch norm folded
            into the convs is run and ``model`` is left untouched; without, ``model`` itself is
            moved, cast and put in eval mode.
        device: where it runs.
        numeric: its arithmetic (:func:`vfxmatte.devices.resolve_precision`); the weights are
            cast to ``numeric.dtype`` once, inputs on every call.
        tta: ``"flip"`` averages the alpha with that of the left-right mirrored input,
            mirrored back (the network is not mirror-symmetric).
        sparse: run the full- and half-resolution layers only near the unknown band
            (:meth:`~vfxmatte.model.TCPMatting.forward_sparse`): alpha is then 0 outside the
            band, for callers that keep the trimap's known pixels.
        fold_norms: fold batch norm (inference only; same function to float rounding, one
            memory pass less per norm layer).

    Example:
        >>> p = Predictor(build_model("tiny"), torch.device("cpu"))  # doctest: +SKIP
        >>> alpha = p(image, trimap_onehot)  # [N, 1, H, W] float32  # doctest: +SKIP
    """

    def __init__(
        self,
        model: TCPMatting,
        device: torch.device,
        numeric: NumericMode = FP32,
        tta: TTA = "none",
        sparse: bool = False,
        fold_norms: bool = True,
    ) -> None:
        _check_tta(tta)
        self.device, self.numeric, self.tta, self.sparse = device, numeric, tta, bool(sparse)
        # channels_last: oneDNN's and cuDNN's fast conv layout.
        net = fold_batchnorm(model) if fold_norms else model
        net = net.to(device, dtype=numeric.dtype)
        self.model: TCPMatting = net.to(memory_format=torch.channels_last).eval()

    def _inputs(self, image: torch.Tensor, trimap: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = image.to(self.device, self.numeric.dtype).contiguous(memory_format=torch.channels_last)
        tr = trimap.to(self.device, self.numeric.dtype).contiguous(memory_format=torch.channels_last)
        return x, tr

    def _run(self, fn: Callable, x: torch.Tensor, tr: torch.Tensor):
        with autocast(self.device, self.numeric):
            return fn(x, tr)

    def _with_tta(self, alpha: torch.Tensor, fn: Callable, x: torch.Tensor, tr: torch.Tensor) -> torch.Tensor:
        if self.tta == "flip":
            mirrored = self._run(fn, x.flip(-1), tr.flip(-1)).float().flip(-1)
            alpha = (alpha + mirrored) * 0.5
        return alpha

    def __call__(self, image: torch.Tensor, trimap: torch.Tensor) -> torch.Tensor:
        """Alpha of a batch.

        Args:
            image: [N, 3, H, W] sRGB-encoded RGB in [0, 1], on any device.
            trimap: [N, 3, H, W] one-hot (bg, unknown, fg).

        Returns:
            [N, 1, H, W] float32 alpha on :attr:`device`: the network's raw prediction
            everywhere (0 outside the unknown band when ``sparse``).
        """
        x, tr = self._inputs(image, trimap)
        run = self.model.forward_sparse if self.sparse else self.model
        with torch.inference_mode():
            return self._with_tta(self._run(run, x, tr).float(), run, x, tr)

    def with_paths(self, image: torch.Tensor, trimap: torch.Tensor) -> tuple[torch.Tensor, PathOutputs]:
        """The alpha of :meth:`__call__` from the dense forward, and the plain view's path outputs.

        For diagnostics that need each path's logit (training validation); the dense forward
        equals the block-sparse one inside the band to float rounding.
        """
        x, tr = self._inputs(image, trimap)
        with torch.inference_mode():
            out = self._run(self.model.forward_paths, x, tr)
            return self._with_tta(out.alpha.float(), self.model, x, tr), out


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

    Tiles are laid by :func:`vfxmatte.tiling.plan_tiles` on the model's stride and run through
    one :class:`Predictor`. ``sparse=None`` means block-sparse inference on the CPU (faster
    there, benchmarks/RESULTS.md) and dense on GPUs.

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
        memory_budget: int | None = None,
        held_pixel_bytes: int = HELD_PIXEL_BYTES,
    ) -> None:
        _check_tta(tta)
        self.tta = tta
        self.device = select_device(device)
        self.numeric = resolve_precision(self.device, precision)
        self.sparse = self.device.type == "cpu" if sparse is None else bool(sparse)
        if tile_size < 0:
            raise InputError(f"tile_size must be >= 0 (0 = untiled), got {tile_size}")
        self.tile_size = int(tile_size)
        self.overlap = int(overlap) if tile_size else 0
        self.stride = model.stride
        plan_tiles(max(tile_size, 1), max(tile_size, 1), tile_size, self.overlap, self.stride)  # checks
        self.batch_size = batch_size or default_batch_size(self.device)
        if self.batch_size < 1:
            raise InputError(f"batch_size must be >= 1, got {batch_size}")
        self.checkpoint = checkpoint
        self.predictor = Predictor(model, self.device, self.numeric, tta, self.sparse, fold_norms)
        #: Bytes the whole process may hold while matting (None: no limit): tiles and batch
        #: shrink per frame to fit (:meth:`tiling_for`).
        self.memory_budget = memory_budget
        #: What the caller holds per frame pixel besides the engine (:func:`vfxmatte.memory.held_bytes`).
        self.held_pixel_bytes = int(held_pixel_bytes)
        self._budget: Budget | None = None
        if memory_budget is not None:  # the process and one smallest tile must fit at all
            self._budget = Budget(memory_budget, weight_bytes(self.model), self.held_pixel_bytes, self.model.config,
                                  self.numeric.dtype.itemsize)
            self._budget.check_floor(self.tile_size, self.overlap, self.batch_size)

    @classmethod
    def from_checkpoint(cls, name_or_path: str | os.PathLike[str] = "starter", **kwargs) -> "MattingSession":
        model, ckpt = load_model(name_or_path)
        return cls(model, checkpoint=ckpt, **kwargs)

    # -- what ran (provenance, vfxmatte.pipeline.Matter)
    @property
    def model(self) -> TCPMatting:
        """The network as it runs (folded, cast, on the device)."""
        return self.predictor.model

    @property
    def model_name(self) -> str:
        """The network's architecture name (its config's ``name``)."""
        return self.model.config.name

    @property
    def model_hash(self) -> str:
        """sha256 of the checkpoint file the weights came from; "" for an in-memory model."""
        return self.checkpoint.sha256 if self.checkpoint is not None else ""

    @property
    def precision(self) -> str:
        """The numeric mode the network runs in (``fp32``, ``bf16``, ``fp16-autocast``, ...)."""
        return self.numeric.name

    def tiling_for(self, height: int, width: int) -> tuple[int, int, int]:
        """``(tile_size, overlap, batch_size)`` a frame of this size runs with: the session's
        own, or under :attr:`memory_budget` the largest that fit (:func:`vfxmatte.memory.fit_tiling`;
        the same for every frame of a size, whatever the process's memory at the time).

        Raises:
            MemoryBudgetError: the budget is too small even for the smallest tiles.
        """
        if self._budget is None:
            return self.tile_size, self.overlap, self.batch_size
        return self._budget.tiling(height, width, self.tile_size, self.overlap, self.batch_size)

    # -- core
    def _run_batch(self, image: np.ndarray, trimap: np.ndarray, tiles: Sequence[Tile]) -> np.ndarray:
        """Network prediction for tiles of equal size -> [N, h, w] float32."""
        imgs = np.stack([crop_tile(image, t) for t in tiles])  # [N,h,w,3]
        tris = np.stack([tm.one_hot(crop_tile(trimap, t)) for t in tiles])  # [N,3,h,w]
        x = torch.from_numpy(imgs).permute(0, 3, 1, 2)  # [N,3,h,w]
        alpha = self.predictor(x, torch.from_numpy(tris))  # [N,1,h,w]
        return alpha[:, 0].cpu().numpy()

    @staticmethod
    def _batches(tiles: list[Tile], size: int) -> Iterator[list[Tile]]:
        for i in range(0, len(tiles), size):
            yield tiles[i : i + size]

    def predict(self, image: np.ndarray, trimap: np.ndarray, progress: Progress | None = None) -> np.ndarray:
        """Raw blended network prediction over the frame (0 where no tile ran).

        With ``sparse`` only the unknown band holds the network's prediction (0 elsewhere);
        :meth:`matte` keeps the trimap's known pixels either way.
        """
        h, w = trimap.shape
        hp, wp = padded_size(h, self.stride), padded_size(w, self.stride)
        tile, overlap, batch_size = self.tiling_for(h, w)
        unknown = tm.unknown_mask(trimap)
        tiles = plan_tiles(h, w, tile, overlap, self.stride)
        tiles = tiles_needing_inference(tiles, unknown, overlap, self.stride)
        # Tiles of a row (column) share their y (x) weights: compute each 1-D profile once.
        wy = {t.y: axis_weight(t.y, t.h, hp, overlap) for t in tiles}
        wx = {t.x: axis_weight(t.x, t.w, wp, overlap) for t in tiles}
        # Accumulators cover the stride-padded frame; the padding is cropped off at the end.
        acc = np.zeros((hp, wp), dtype=np.float32)
        wsum = np.zeros((hp, wp), dtype=np.float32)
        done = 0
        if progress:
            progress(0, len(tiles))
        for batch in self._batches(tiles, batch_size):
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
            name: names the frame in error messages.

        Returns:
            [H, W] float32 alpha: known fg/bg copied from the trimap, the network's prediction in
            the unknown band.
        """
        img, tri = check_frame(image, trimap, name)
        if not tm.unknown_mask(tri).any():
            return tm.composite_known(np.zeros(tri.shape, np.float32), tri)
        return tm.composite_known(self.predict(img, tri, progress), tri)
